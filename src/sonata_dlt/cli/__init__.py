"""The ``sonata-dlt`` command line.

Each command group lives in its own module of this package and exposes ``register(subparsers)``, which adds its
parser and sets ``handler`` (a callable taking the parsed ``argparse.Namespace`` and returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules of this package that register a command group, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "serve",
    "db",
    "keys",
    "anchors",
    "verify",
    "bundle",
    "sandbox",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sonata-dlt", description="Smart Bilateral server for MEF LSO Sonata.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # command group not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    exit_code: int = args.handler(args)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
