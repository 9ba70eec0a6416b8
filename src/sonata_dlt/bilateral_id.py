"""A bilateral's id, derived from its two parties' ids: the same on the server and in every party's software."""

from __future__ import annotations

import hashlib


def bilateral_id_for(buyer_id: str, seller_id: str) -> str:
    return hashlib.sha256(f"{buyer_id}\n{seller_id}".encode()).hexdigest()[:24]
