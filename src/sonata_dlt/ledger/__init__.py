"""Anchoring backends behind one Protocol, found by entry point.

- ``base``      :class:`LedgerBackend` (the Protocol) and :class:`AnchorReceipt`
- ``local``     the default: an embedded, signed, hash-chained JSON-lines journal; offline receipt check
- ``ethereum``  any EVM chain over JSON-RPC, through the event-only ``AnchorLog`` contract in ``anchors/``

Backends register under the entry-point group ``sonata_dlt.ledger_backends`` (ours too, in pyproject.toml), so a
third-party package adds one without touching this code. Backend modules are imported only when opened: the
``ethereum`` one pulls in web3, which a deployment using ``local`` never needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from sonata_dlt.errors import ConfigurationError
from sonata_dlt.ledger.base import AnchorReceipt, LedgerBackend

ENTRY_POINT_GROUP = "sonata_dlt.ledger_backends"

__all__ = ["ENTRY_POINT_GROUP", "AnchorReceipt", "LedgerBackend", "available_backends", "open_backend"]


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_backends() -> list[str]:
    """Names of the installed backends, sorted."""
    return sorted(_entry_points())


def open_backend(name: str, options: Mapping[str, Any]) -> LedgerBackend:
    """Load backend ``name`` and build it from ``options``. An unknown name raises ``ConfigurationError``."""
    found = _entry_points()
    if name not in found:
        available = ", ".join(sorted(found)) or "none installed"
        raise ConfigurationError(f"unknown ledger backend {name!r}; available: {available}")
    backend_class = found[name].load()
    if not isinstance(backend_class, type) or not hasattr(backend_class, "from_options"):
        raise ConfigurationError(f"entry point {name!r} in {ENTRY_POINT_GROUP} does not name a backend class")
    backend: LedgerBackend = backend_class.from_options(options)
    return backend
