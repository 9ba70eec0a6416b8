"""``sonata-dlt keys``: make and inspect Ed25519 note keys (C2SP skey / vkey).

``keys generate --name NAME --out FILE`` writes the private key (mode 0600, never overwritten) and prints the
public vkey, which is what a party registers with ``POST /partyKey`` and hands to verifiers.
``keys show FILE`` prints the vkey and key ids of a private key file, or of a file holding a vkey.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sonata_dlt.errors import ConfigurationError
from sonata_dlt.signing.keys import SigningKey, VerifierKey


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("keys", help="generate and show Ed25519 signing keys")
    commands = parser.add_subparsers(dest="keys_command", required=True)
    generate = commands.add_parser("generate", help="write a new private key and print its public vkey")
    generate.add_argument("--name", required=True, help="key name used in signature lines (no spaces or '+')")
    generate.add_argument("--out", required=True, type=Path, help="private key file to create (mode 0600)")
    generate.set_defaults(handler=run_generate)
    show = commands.add_parser("show", help="print the public vkey of a private key file (or a vkey file)")
    show.add_argument("file", type=Path)
    show.set_defaults(handler=run_show)


def _describe(verifier: VerifierKey) -> str:
    return "\n".join(
        (
            f"vkey: {verifier.to_vkey()}",
            f"cosignature vkey: {verifier.for_cosignature().to_vkey()}",
            f"key id: {verifier.key_id.hex()}",
        )
    )


def run_generate(args: argparse.Namespace) -> int:
    try:
        key = SigningKey.generate(args.name)
        key.save(args.out)
    except (ConfigurationError, OSError) as exc:
        print(f"sonata-dlt: {exc}")
        return 2
    print(_describe(key.verifier()))
    return 0


def run_show(args: argparse.Namespace) -> int:
    try:
        text = args.file.read_text(encoding="utf-8").strip()
        verifier = (
            SigningKey.load(args.file).verifier() if text.startswith("PRIVATE+KEY+") else VerifierKey.from_vkey(text)
        )
    except (ConfigurationError, OSError) as exc:
        print(f"sonata-dlt: {exc}")
        return 2
    print(_describe(verifier))
    return 0
