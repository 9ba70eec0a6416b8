"""Building a process's ``Runtime`` from the settings: the one place that knows every domain's collaborators."""

from __future__ import annotations

from sonata_dlt.bilateral.reports.report_files import release_shared_database
from sonata_dlt.core.parties import PartyDirectory, ensure_bilaterals
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.settings import Settings
from sonata_dlt.sonata.product_schemas import PRODUCT_SCHEMAS, ProductSchemaRegistry
from sonata_dlt.storage.db import Database
from sonata_dlt.storage.migrate import upgrade
from sonata_dlt.verifiable_log.anchoring import LEDGER, open_ledger
from sonata_dlt.verifiable_log.keyring import KEYRING, Keyring
from sonata_dlt.verifiable_log.recording import switch_recording_off


def start_runtime(settings: Settings, *, create_schema: bool = True) -> Runtime:
    """The server's runtime: storage (its schema upgraded to the newest Alembic revision unless told not to), the
    hosted bilaterals, the product schemas, the host keyring and the ledger backend."""
    db = Database(settings.database_url)
    if create_schema:
        upgrade(db)
    parties = PartyDirectory.from_settings(settings)
    with db.write() as session:
        ensure_bilaterals(session, parties)
    if not settings.record_log:
        switch_recording_off(db)
    runtime = Runtime(settings=settings, db=db, parties=parties)
    runtime.components[PRODUCT_SCHEMAS] = product_schemas(settings)
    keyring = Keyring.open(settings)  # the host key signs checkpoints and the local ledger journal
    runtime.components[KEYRING] = keyring
    runtime.components[LEDGER] = open_ledger(settings, keyring)
    runtime.close_hooks.append(release_shared_database)
    return runtime


def writer_runtime(settings: Settings) -> Runtime:
    """What the writer process (``startup.writer_process``) needs: the database, whose schema the server has
    upgraded and whose WAL the server checkpoints, the parties and the product schemas."""
    db = Database(settings.database_url, checkpoint_wal=False)
    if not settings.record_log:
        switch_recording_off(db)
    runtime = Runtime(settings=settings, db=db, parties=PartyDirectory.from_settings(settings))
    runtime.components[PRODUCT_SCHEMAS] = product_schemas(settings)
    runtime.close_hooks.append(release_shared_database)
    return runtime


def product_schemas(settings: Settings) -> ProductSchemaRegistry:
    return ProductSchemaRegistry.from_directory(
        settings.product_schema_dir, accept_unknown=settings.accept_unknown_product_types
    )
