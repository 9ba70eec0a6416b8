"""``sonata-dlt verify``: check a bilateral's log as one party, then cosign its newest checkpoint.

::

    sonata-dlt verify --url URL --token T --key PARTY.skey --state verifier.sqlite
                      [--buyer-id B | --seller-id S] [--ledger-backend local|ethereum --ledger-option K=V ...]
                      [--host-vkey VKEY] [--cut] [--anchor-wait SECONDS] [--no-cosign]

What is checked is described in ``sonata_dlt.client.verifier``. Exit codes: 0 verified (and cosigned unless
``--no-cosign``), 1 verification failed (the report says what, where, expected versus found), 2 unusable arguments,
3 server or ledger unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from sonata_dlt.errors import ConfigurationError, LedgerUnavailable, VerificationError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3


def add_ledger_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ledger-backend",
        help="look anchors up on this ledger (local, ethereum); without it local receipts are checked offline only",
    )
    parser.add_argument(
        "--ledger-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="backend option, repeatable: local path=JOURNAL [verify_key=HEX]; ethereum rpc_url=URL "
        "contract_address=0x.. [confirmations=N]",
    )


def ledger_options(pairs: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigurationError(f"--ledger-option {pair!r} is not KEY=VALUE")
        options[key.strip()] = value
    return options


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("verify", help="verify a bilateral's log as one party and cosign it")
    parser.add_argument("--url", required=True, help="server base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--token", required=True, help="the party's bearer token")
    parser.add_argument("--buyer-id", help="the buyer of the bilateral (when the seller trades with several)")
    parser.add_argument("--seller-id", help="the seller of the bilateral (when the buyer trades with several)")
    parser.add_argument("--key", required=True, type=Path, help="the party's private key file (C2SP skey, mode 0600)")
    parser.add_argument("--state", required=True, type=Path, help="the verifier's local state file (SQLite)")
    parser.add_argument("--host-vkey", help="pin this host key instead of trusting the first one the server shows")
    parser.add_argument("--cut", action="store_true", help="ask the server for a fresh checkpoint first")
    parser.add_argument(
        "--anchor-wait", type=float, default=30.0, help="seconds to wait for the newest checkpoint's anchor (30)"
    )
    parser.add_argument("--no-cosign", action="store_true", help="verify only; do not register a key or cosign")
    add_ledger_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sonata_dlt.client.sonata import ServerError, SonataClient
    from sonata_dlt.client.trust_store import TrustStore
    from sonata_dlt.client.verifier import VerificationFailed, Verifier, VerifierOptions
    from sonata_dlt.signing.keys import SigningKey

    try:
        key = SigningKey.load(args.key)
        options = ledger_options(args.ledger_option)
        store = TrustStore.open(args.state)
    except ConfigurationError as exc:
        print(f"sonata-dlt verify: {exc}", file=sys.stderr)
        return EXIT_USAGE

    async def verify() -> str:
        async with SonataClient(args.url, args.token, buyer_id=args.buyer_id, seller_id=args.seller_id) as client:
            verifier = Verifier(
                client,
                key,
                store,
                ledger_backend=args.ledger_backend,
                ledger_options=options,
                options=VerifierOptions(
                    cosign=not args.no_cosign,
                    cut=args.cut,
                    anchor_wait_seconds=args.anchor_wait,
                    host_vkey=args.host_vkey,
                ),
            )
            try:
                return (await verifier.run()).text()
            finally:
                if verifier.ledger is not None:
                    verifier.ledger.close()

    with store:
        try:
            print(asyncio.run(verify()))
        except VerificationFailed as exc:
            print(exc.report.text())
            print(f"sonata-dlt verify: {exc}", file=sys.stderr)
            return EXIT_FAILED
        except VerificationError as exc:
            print(f"sonata-dlt verify: verification FAILED: {exc}", file=sys.stderr)
            return EXIT_FAILED
        except ConfigurationError as exc:
            print(f"sonata-dlt verify: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except (ServerError, LedgerUnavailable) as exc:
            print(f"sonata-dlt verify: {exc}", file=sys.stderr)
            return EXIT_UNAVAILABLE
    print("VERIFIED")
    return EXIT_OK
