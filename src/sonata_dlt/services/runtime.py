"""What every service call needs, built once per process from the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sonata_dlt.services.anchoring import open_ledger
from sonata_dlt.services.keyring import Keyring
from sonata_dlt.services.parties import PartyDirectory, ensure_bilaterals
from sonata_dlt.services.product_schemas import COMPONENT_KEY as SCHEMAS_KEY
from sonata_dlt.services.product_schemas import ProductSchemaRegistry
from sonata_dlt.services.report_files import release_shared_database
from sonata_dlt.settings import Settings
from sonata_dlt.storage.db import Database
from sonata_dlt.storage.migrate import upgrade


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
        schemas = ProductSchemaRegistry.from_directory(
            settings.product_schema_dir, accept_unknown=settings.accept_unknown_product_types
        )
        keyring = Keyring.open(settings)  # the host key signs checkpoints and the local ledger journal
        components = {SCHEMAS_KEY: schemas, "keyring": keyring, "ledger": open_ledger(settings, keyring)}
        return cls(settings=settings, db=db, parties=parties, components=components)

    def close(self) -> None:
        self.db.dispose()
        release_shared_database()
