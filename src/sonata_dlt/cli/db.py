"""``sonata-dlt db``: schema management."""

from __future__ import annotations

import argparse

from sonata_dlt.cli.serve import add_settings_arguments, settings_from


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("db", help="database schema management (Alembic)")
    actions = parser.add_subparsers(dest="db_command", required=True)
    upgrade = actions.add_parser("upgrade", help="upgrade the schema to the newest version")
    add_settings_arguments(upgrade)
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(handler=run_upgrade)
    current = actions.add_parser("current", help="print the schema version of the database")
    add_settings_arguments(current)
    current.set_defaults(handler=run_current)


def run_upgrade(args: argparse.Namespace) -> int:
    from sonata_dlt.storage.db import Database
    from sonata_dlt.storage.migrate import current_revision, upgrade

    database = Database(settings_from(args).database_url)
    upgrade(database, args.revision)
    print(f"schema at {current_revision(database)}")
    return 0


def run_current(args: argparse.Namespace) -> int:
    from sonata_dlt.storage.db import Database
    from sonata_dlt.storage.migrate import current_revision, head_revision

    database = Database(settings_from(args).database_url)
    print(f"current {current_revision(database)} head {head_revision(database)}")
    return 0
