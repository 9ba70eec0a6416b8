"""Settings for two operators that buy from each other (mirror bilaterals), shared by tests of several areas."""

from __future__ import annotations

from collections.abc import Callable

from sonata_dlt.settings import BilateralConfig, Role, Settings, TokenGrant


def mirror_token(who: str, role: Role) -> str:
    return f"token-{who}-{role.value}-0000000"


def mirror_settings(make_settings: Callable[..., Settings], prefix: str = "OP") -> Settings:
    """Operators ``{prefix}-A`` and ``{prefix}-B``, each with a buyer and a seller token (``mirror_token``), and
    both bilaterals between them."""
    tokens = [
        TokenGrant(token=mirror_token(who, role), party_id=f"{prefix}-{who}", role=role)
        for who in "AB"
        for role in Role
    ]
    bilaterals = [
        BilateralConfig(buyer_id=f"{prefix}-A", seller_id=f"{prefix}-B"),
        BilateralConfig(buyer_id=f"{prefix}-B", seller_id=f"{prefix}-A"),
    ]
    return make_settings(demo=False, tokens=tokens, bilaterals=bilaterals)
