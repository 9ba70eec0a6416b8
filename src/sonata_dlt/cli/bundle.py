"""``sonata-dlt bundle``: export a resource's audit bundle, and verify one with no server.

::

    sonata-dlt bundle export --url URL --token T [--buyer-id B | --seller-id S]
                             --resource-type productOrder|customerBill|... --id ID --out FILE
    sonata-dlt bundle verify FILE [--offline] [--journal PATH] [--rpc URL] [--contract ADDRESS]
                             [--ledger-option KEY=VALUE ...]

Without ``--offline`` the anchor is looked up on the ledger the receipt names: a ``local`` journal file
(``--journal``), or an EVM chain (``--rpc``; the contract defaults to the receipt's). The format is described in
docs/bundle-format.md. Exit codes: 0 verified (or exported), 1 verification failed, 2 unusable arguments or the
server cannot give a bundle yet, 3 server or ledger unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from sonata_dlt.cli.verify import ledger_options
from sonata_dlt.errors import ConfigurationError, LedgerUnavailable, VerificationError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("bundle", help="export or verify an audit bundle (a resource with its proofs)")
    commands = parser.add_subparsers(dest="bundle_command", required=True)

    export = commands.add_parser("export", help="write a resource's audit bundle (JSON)")
    export.add_argument("--url", required=True, help="server base URL")
    export.add_argument("--token", required=True, help="a party's bearer token")
    export.add_argument("--buyer-id", help="the buyer of the bilateral (when the seller trades with several)")
    export.add_argument("--seller-id", help="the seller of the bilateral (when the buyer trades with several)")
    export.add_argument("--resource-type", required=True, help="productOrder, customerBill (with its items), ...")
    export.add_argument("--id", required=True, help="the resource id")
    export.add_argument("--out", required=True, type=Path, help="the bundle file to write")
    export.set_defaults(handler=run_export)

    verify = commands.add_parser("verify", help="check an audit bundle with no server")
    verify.add_argument("file", type=Path)
    verify.add_argument("--offline", action="store_true", help="do not look the anchor up on the ledger")
    verify.add_argument("--journal", type=Path, help="local: the anchor journal file to look the anchor up in")
    verify.add_argument("--rpc", help="ethereum: JSON-RPC URL of a node on the receipt's chain")
    verify.add_argument("--contract", help="ethereum: the AnchorLog address you trust (default: the receipt's)")
    verify.add_argument(
        "--ledger-option", action="append", default=[], metavar="KEY=VALUE", help="more backend options, repeatable"
    )
    verify.set_defaults(handler=run_verify)


def _fail(message: str, code: int) -> int:
    print(f"sonata-dlt bundle: {message}", file=sys.stderr)
    return code


def run_export(args: argparse.Namespace) -> int:
    from sonata_dlt.client.bundle import ExportError, export_bundle
    from sonata_dlt.client.sonata import RESOURCE_APIS, ServerError, SonataClient

    if args.resource_type not in RESOURCE_APIS:
        return _fail(f"unknown resource type {args.resource_type!r}; known: {', '.join(RESOURCE_APIS)}", EXIT_USAGE)

    async def export() -> dict[str, object]:
        async with SonataClient(args.url, args.token, buyer_id=args.buyer_id, seller_id=args.seller_id) as client:
            return await export_bundle(client, args.resource_type, args.id)

    try:
        bundle = asyncio.run(export())
    except ExportError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except ServerError as exc:
        return _fail(str(exc), EXIT_UNAVAILABLE)
    try:
        args.out.write_text(json.dumps(bundle, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        return _fail(f"cannot write {args.out}: {exc}", EXIT_USAGE)
    resources = bundle["resources"]
    count = len(resources) if isinstance(resources, list) else 0
    print(f"wrote {args.out}: {args.resource_type} {args.id} with {count} resource(s)")
    return EXIT_OK


def run_verify(args: argparse.Namespace) -> int:
    from sonata_dlt.client.bundle import verify_bundle

    try:
        bundle = json.loads(args.file.read_text(encoding="utf-8"))
        options = ledger_options(args.ledger_option)
    except (OSError, ValueError) as exc:
        return _fail(f"cannot read a JSON bundle from {args.file}: {exc}", EXIT_USAGE)
    except ConfigurationError as exc:
        return _fail(str(exc), EXIT_USAGE)
    if args.journal is not None:
        options["path"] = str(args.journal)
    if args.rpc:
        options["rpc_url"] = args.rpc
    if args.contract:
        options["contract_address"] = args.contract
    if not isinstance(bundle, dict):
        return _fail("NOT VERIFIED: the bundle is not a JSON object", EXIT_FAILED)
    try:
        report = verify_bundle(bundle, offline=args.offline, ledger_options=options)
    except VerificationError as exc:
        return _fail(f"NOT VERIFIED: {exc}", EXIT_FAILED)
    except ConfigurationError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except LedgerUnavailable as exc:
        return _fail(str(exc), EXIT_UNAVAILABLE)
    print(report.text())
    print("VERIFIED")
    return EXIT_OK
