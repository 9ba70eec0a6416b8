"""Imports every table module so that ``SQLModel.metadata`` (and Alembic) sees the whole schema.

Add the module to this import when a new storage module defines tables.
"""

from sonata_dlt.storage import (  # noqa: F401
    billing,
    billing_inputs,
    checkpoints,
    hub,
    inventory,
    log,
    ordering,
)
