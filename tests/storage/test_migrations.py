"""Alembic owns the schema: upgrading an empty database to head gives exactly the tables the models declare."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from sonata_dlt.storage import tables  # noqa: F401 - registers every table on the metadata
from sonata_dlt.storage.db import Database
from sonata_dlt.storage.migrate import current_revision, head_revision, upgrade


def test_upgrade_to_head_matches_the_models(database_url: str) -> None:
    database = Database(database_url)
    try:
        upgrade(database)
        assert current_revision(database) == head_revision(database)
        with database.write_engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
        # A difference means a model changed without a migration: run `alembic revision --autogenerate`.
        assert differences == []
    finally:
        database.dispose()


def test_upgrade_is_idempotent(database_url: str) -> None:
    database = Database(database_url)
    try:
        upgrade(database)
        upgrade(database)
        assert current_revision(database) == head_revision(database)
    finally:
        database.dispose()
