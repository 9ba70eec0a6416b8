"""``sonata-dlt anchors``: deploy the AnchorLog contract and verify anchor receipts.

::

    sonata-dlt anchors deploy --rpc URL [--private-key-file F] [--confirmations N]
    sonata-dlt anchors verify-receipt RECEIPT.json --verify-key HEX [--journal PATH]       (local receipts)
    sonata-dlt anchors verify-receipt RECEIPT.json --rpc URL --contract ADDRESS           (ethereum receipts)

Exit codes: 0 verified (or deployed), 1 verification failed, 2 unusable arguments or settings, 3 ledger unreachable.
The ledger backends are imported inside the handlers so that ``sonata-dlt --help`` does not load web3.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sonata_dlt.errors import ConfigurationError, LedgerUnavailable, VerificationError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("anchors", help="deploy the anchor contract, verify anchor receipts")
    commands = parser.add_subparsers(dest="anchors_command", required=True)

    deploy = commands.add_parser("deploy", help="deploy AnchorLog on an EVM chain and print its address")
    deploy.add_argument("--rpc", required=True, help="JSON-RPC URL of the node (http:// or https://)")
    deploy.add_argument(
        "--private-key-file",
        type=Path,
        help="file holding the paying account's hex private key; without it the node's first unlocked account pays",
    )
    deploy.add_argument("--confirmations", type=int, default=1, help="blocks to wait for (default 1)")
    deploy.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for them (default 120)")
    deploy.set_defaults(handler=_deploy)

    verify = commands.add_parser("verify-receipt", help="check an anchor receipt (JSON) against its ledger")
    verify.add_argument("receipt", type=Path, help="the receipt, as AnchorReceipt.to_json() wrote it")
    verify.add_argument("--verify-key", help="local: the journal's raw Ed25519 public key, 64 hex characters")
    verify.add_argument("--journal", type=Path, help="local: the journal file; without it the check is offline")
    verify.add_argument("--rpc", help="ethereum: JSON-RPC URL of a node on the receipt's chain")
    verify.add_argument("--contract", help="ethereum: the AnchorLog address you trust (not taken from the receipt)")
    verify.add_argument("--confirmations", type=int, default=1, help="ethereum: blocks required (default 1)")
    verify.set_defaults(handler=_verify_receipt)


def _fail(message: str, code: int) -> int:
    print(f"sonata-dlt anchors: {message}", file=sys.stderr)
    return code


def _deploy(args: argparse.Namespace) -> int:
    from sonata_dlt.ledger.ethereum import deploy_anchor_contract

    private_key = None
    if args.private_key_file is not None:
        try:
            private_key = args.private_key_file.read_text().strip()
        except OSError as exc:
            return _fail(f"cannot read {args.private_key_file}: {exc}", EXIT_USAGE)
    try:
        address = deploy_anchor_contract(
            args.rpc, private_key, confirmations=args.confirmations, timeout_seconds=args.timeout
        )
    except ConfigurationError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except LedgerUnavailable as exc:
        return _fail(str(exc), EXIT_UNAVAILABLE)
    print(address)
    return EXIT_OK


def _verify_receipt(args: argparse.Namespace) -> int:
    from sonata_dlt.ledger import open_backend
    from sonata_dlt.ledger.base import AnchorReceipt
    from sonata_dlt.ledger.local import verify_receipt_offline

    try:
        data = json.loads(args.receipt.read_text())
    except (OSError, ValueError) as exc:
        return _fail(f"cannot read a JSON receipt from {args.receipt}: {exc}", EXIT_USAGE)
    try:
        if not isinstance(data, dict):
            raise VerificationError("malformed receipt: not a JSON object")
        receipt = AnchorReceipt.from_json(data)
        if receipt.backend == "local":
            if not args.verify_key:
                return _fail("a local receipt needs --verify-key (the journal's public key)", EXIT_USAGE)
            try:
                verify_key = bytes.fromhex(args.verify_key)
            except ValueError:
                return _fail("--verify-key is not hex", EXIT_USAGE)
            if args.journal is None:
                verify_receipt_offline(receipt, verify_key)
                print(
                    f"OK (offline): the journal key signed {receipt.origin} size {receipt.size} as entry "
                    f"{receipt.reference.get('sequence')}; the journal itself was not consulted"
                )
                return EXIT_OK
            options: dict[str, Any] = {"path": args.journal, "verify_key": verify_key}
        elif receipt.backend == "ethereum":
            if not args.rpc or not args.contract:
                return _fail("an ethereum receipt needs --rpc and --contract", EXIT_USAGE)
            options = {"rpc_url": args.rpc, "contract_address": args.contract, "confirmations": args.confirmations}
        else:
            return _fail(f"this command knows the local and ethereum backends, not {receipt.backend!r}", EXIT_USAGE)
        backend = open_backend(receipt.backend, options)
        try:
            backend.verify_anchor(receipt)
        finally:
            backend.close()
    except VerificationError as exc:
        return _fail(f"NOT VERIFIED: {exc}", EXIT_FAILED)
    except ConfigurationError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except LedgerUnavailable as exc:
        return _fail(str(exc), EXIT_UNAVAILABLE)
    print(f"OK: the {receipt.backend} ledger holds {receipt.origin} size {receipt.size} root {receipt.root_hash.hex()}")
    return EXIT_OK
