"""``sonata-dlt serve``: run the Sonata server."""

from __future__ import annotations

import argparse
import ipaddress
import logging
from pathlib import Path
from typing import Any

from sonata_dlt.errors import ConfigurationError
from sonata_dlt.logs import configure_logging
from sonata_dlt.settings import Settings
from sonata_dlt.startup.wiring import start_runtime

log = logging.getLogger("sonata_dlt.serve")


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that opens the server's storage."""
    parser.add_argument("--config", type=Path, help="TOML settings file (SONATA_DLT_* variables also apply)")
    parser.add_argument("--database-url", help="SQLAlchemy URL; default sqlite:///var/sonata-dlt.sqlite")
    parser.add_argument("--data-dir", type=Path, help="directory for keys, the local ledger and the SQLite file")


def settings_from(args: argparse.Namespace, **extra: Any) -> Settings:
    return Settings.load(
        args.config or Settings.config_file_from_environment(),
        database_url=args.database_url,
        data_dir=args.data_dir,
        **extra,
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("serve", help="run the Sonata server")
    add_settings_arguments(parser)
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (default 8080)")
    parser.add_argument(
        "--demo",
        action="store_true",
        default=None,
        help="create BUYER-1 / SELLER-1 with tokens demo-buyer-token / demo-seller-token (loopback only)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes (use PostgreSQL for more than one: SQLite serialises writers)",
    )
    parser.add_argument("--auto-fulfil", action="store_true", default=None, help="the server plays the seller's OSS")
    parser.set_defaults(handler=run)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from sonata_dlt.api.app import create_app

    extra: dict[str, Any] = {"host": args.host, "port": args.port, "demo": args.demo}
    if args.auto_fulfil:
        extra["fulfilment"] = {"auto": True}
    try:
        settings = settings_from(args, **extra)
    except ConfigurationError as exc:
        print(f"sonata-dlt: {exc}")
        return 2
    configure_logging(settings.log_format, settings.log_level)
    if settings.demo and not is_loopback(settings.host):
        print(f"sonata-dlt: --demo uses well-known tokens and refuses to bind to {settings.host}; use 127.0.0.1")
        return 2
    log.info(
        "serving",
        extra={
            "host": settings.host,
            "port": settings.port,
            "database": settings.database_url,
            "workers": args.workers,
        },
    )
    if args.workers > 1:
        import os

        # Upgrade the schema and create the host key once, here, so worker processes never race to do it;
        # each then rebuilds its app from the same settings and finds both in place.
        start_runtime(settings).close()
        os.environ.update(settings.to_environment())
        uvicorn.run(
            "sonata_dlt.api.app:app_from_environment",
            factory=True,
            workers=args.workers,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
        )
        return 0
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)
    return 0
