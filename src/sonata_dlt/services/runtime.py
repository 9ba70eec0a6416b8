"""What every service call needs, built once per process from the settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from sonata_dlt.services.anchoring import open_ledger
from sonata_dlt.services.keyring import Keyring
from sonata_dlt.services.parties import PartyDirectory, ensure_bilaterals
from sonata_dlt.services.product_schemas import COMPONENT_KEY as SCHEMAS_KEY
from sonata_dlt.services.product_schemas import ProductSchemaRegistry
from sonata_dlt.services.report_files import release_shared_database
from sonata_dlt.settings import Settings
from sonata_dlt.storage.db import Database
from sonata_dlt.storage.migrate import upgrade

T = TypeVar("T")
WRITER_KEY = "writer_process"  # components: the services.writer_process.WriterProcess, while one runs


@dataclass
class Runtime:
    settings: Settings
    db: Database
    parties: PartyDirectory
    # Optional components that later layers attach (ledger backend, host key, product schema registry...).
    components: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(cls, settings: Settings, *, create_schema: bool = True) -> Runtime:
        """Open storage (upgrading its schema to the newest Alembic revision unless told not to) and components."""
        db = Database(settings.database_url)
        if create_schema:
            upgrade(db)
        parties = PartyDirectory.from_settings(settings)
        with db.write() as session:
            ensure_bilaterals(session, parties)
        schemas = _product_schemas(settings)
        keyring = Keyring.open(settings)  # the host key signs checkpoints and the local ledger journal
        components = {SCHEMAS_KEY: schemas, "keyring": keyring, "ledger": open_ledger(settings, keyring)}
        return cls(settings=settings, db=db, parties=parties, components=components)

    @classmethod
    def for_writer(cls, settings: Settings) -> Runtime:
        """What the writer process (``services.writer_process``) needs: the database, whose schema the server has
        upgraded and whose WAL the server checkpoints, the parties and the product schemas."""
        db = Database(settings.database_url, checkpoint_wal=False)
        components = {SCHEMAS_KEY: _product_schemas(settings)}
        return cls(settings=settings, db=db, parties=PartyDirectory.from_settings(settings), components=components)

    async def run_grouped(self, function: Callable[..., T], *args: Any) -> T:
        """``function(self, *args, session)`` as a group-commit job (``storage.group_commit``): in the writer process
        while one runs, else on this process's writer thread. ``function`` must be importable by name."""
        writer = self.components.get(WRITER_KEY)
        if writer is not None and writer.alive:
            result: T = await writer.run(function, *args)
            return result
        return await self.db.run_grouped(partial(function, self, *args))

    def close(self) -> None:
        self.db.dispose()
        release_shared_database()


def _product_schemas(settings: Settings) -> ProductSchemaRegistry:
    return ProductSchemaRegistry.from_directory(
        settings.product_schema_dir, accept_unknown=settings.accept_unknown_product_types
    )
