"""The verifier against a running server with real storage: it passes on the honest server and fails, saying
precisely what and where, on each way of rewriting history behind the server's back.

Each test starts ``sonata-dlt serve`` on its own database (SQLite file, or a fresh PostgreSQL schema when
SONATA_DLT_TEST_DATABASE_URL is set) and data dir, runs the scenario, lets both parties verify and cosign through
``sonata-dlt verify``, then tampers directly with the database or the ledger journal.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from client.live_server import LiveServer, live_server, run_cli, scenario

from sonata_dlt.settings import DEMO_BUYER_TOKEN, DEMO_SELLER_TOKEN
from sonata_dlt.signing.keys import SigningKey
from sonata_dlt.signing.note import sign_note
from sonata_dlt.transparency.checkpoint import Checkpoint

pytestmark = pytest.mark.slow
__all__ = ["live_server"]  # the fixture, imported so pytest finds it here


@dataclass
class Parties:
    server: LiveServer
    home: Path
    orders: list[str]

    def verify(self, party: str = "buyer", *extra: str, state: str | None = None) -> subprocess.CompletedProcess[str]:
        key = self.home / f"{party}.skey"
        if not key.exists():
            SigningKey.generate(f"{party}-key").save(key)
        token = DEMO_BUYER_TOKEN if party == "buyer" else DEMO_SELLER_TOKEN
        return run_cli(
            "verify", "--url", self.server.url, "--token", token, "--key", str(key),
            "--state", str(self.home / (state or f"{party}.state")), "--anchor-wait", "20",
            "--ledger-backend", "local", "--ledger-option", f"path={self.server.journal}", *extra,
        )  # fmt: skip


def passed(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "VERIFIED" in result.stdout
    return result.stdout


def failed(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "VERIFIED" not in result.stdout
    return result.stderr


@pytest.fixture
def parties(live_server: LiveServer, tmp_path: Path) -> Iterator[Parties]:
    """The honest history: both parties verified and cosigned checkpoint 5, so it is endorsed."""
    orders = scenario(live_server)
    endorsed = Parties(live_server, tmp_path, orders)
    assert "cosigned checkpoint 5 as buyer" in passed(endorsed.verify("buyer"))
    assert "cosigned checkpoint 5 as seller" in passed(endorsed.verify("seller"))
    yield endorsed


def is_sqlite(server: LiveServer) -> bool:
    return server.database_url.startswith("sqlite")


def test_honest_server_passes_and_is_endorsed(parties: Parties) -> None:
    status, latest = parties.server.call("GET", "/mefApi/sonata/verifiableLog/v1/checkpoint/latest?endorsed=true")
    assert status == 200 and latest["treeSize"] == 5
    assert {s["role"] for s in latest["signatures"]} == {"host", "buyer", "seller"}
    again = passed(parties.verify("buyer"))
    assert "already cosigned by buyer BUYER-1" in again
    # New changes: the verifier replays only the new leaves and proves consistency from what it trusted.
    parties.server.create_order(3)
    output = passed(parties.verify("buyer", "--cut"))
    assert "consistency proof from trusted size 5 to 6" in output
    assert "replayed leaves 5..5" in output
    assert "cosigned checkpoint 6 as buyer BUYER-1 (from size 5)" in output


def test_document_edited_in_the_database(parties: Parties) -> None:
    server, order = parties.server, parties.orders[1]
    (raw,) = server.sql("SELECT document FROM product_order WHERE id = :id", id=order)[0]
    document = raw if isinstance(raw, dict) else json.loads(raw)
    document["externalId"] = "REWRITTEN"
    value = ":doc" if is_sqlite(server) else "CAST(:doc AS JSON)"
    server.sql(f"UPDATE product_order SET document = {value} WHERE id = :id", doc=json.dumps(document), id=order)

    problems = failed(parties.verify("buyer"))
    assert f"productOrder {order}: the served document hashes to" in problems
    assert "records stateHash" in problems
    assert "stored document was changed without a logged change" in problems
    # A verifier with no history (an auditor) sees it too.
    assert f"productOrder {order}: the served document hashes to" in failed(parties.verify("seller", state="fresh"))


def test_leaf_deleted(parties: Parties) -> None:
    parties.server.sql("DELETE FROM log_leaf WHERE seq = 2")
    # The party that trusted the history can no longer get proofs that involve the missing leaf.
    problems = failed(parties.verify("buyer"))
    assert "inclusionProof" in problems and "HTTP 500" in problems
    # A verifier replaying the whole log names the missing leaf.
    fresh = failed(parties.verify("seller", "--no-cosign", state="fresh"))
    assert "leaf list jumps from index 1 to 3: leaf 2 is missing from the log" in fresh


def test_leaves_swapped(parties: Parties) -> None:
    server = parties.server
    server.sql("UPDATE log_leaf SET seq = -1 WHERE seq = 2")
    server.sql("UPDATE log_leaf SET seq = 2 WHERE seq = 3")
    server.sql("UPDATE log_leaf SET seq = 3 WHERE seq = -1")
    problems = failed(parties.verify("buyer"))
    assert "leaves were reordered or renumbered" in problems
    fresh = failed(parties.verify("seller", "--no-cosign", state="fresh"))
    assert "leaf 2: the record says seq 3, expected 2: leaves were reordered or renumbered" in fresh


def _forge_checkpoint(server: LiveServer, size: int, root: bytes) -> None:
    """Re-sign checkpoint ``size`` with another root using the host key from the data dir, as an insider could."""
    (origin,) = server.sql("SELECT origin FROM bilateral")[0]
    host = SigningKey.load(server.host_key_file)
    note = sign_note(Checkpoint(origin=origin, size=size, root_hash=root).body(), [host])
    # The cosignatures were over the old body; an insider rewriting the checkpoint drops them too.
    server.sql("DELETE FROM checkpoint_signature WHERE size = :size", size=size)
    server.sql(
        "UPDATE checkpoint SET root_hash = :root, note = :note, endorsed = :no WHERE size = :size",
        root=root,
        note=note,
        no=False,
        size=size,
    )


def test_forked_checkpoint(parties: Parties) -> None:
    forged = bytes(range(32))
    _forge_checkpoint(parties.server, 5, forged)
    problems = failed(parties.verify("buyer"))
    assert f"forked history: the checkpoint of size 5 now has root {forged.hex()}" in problems
    assert "but this verifier saw a host-signed checkpoint of size 5 with root" in problems
    # Without memory, the leaves themselves contradict the forged root.
    fresh = failed(parties.verify("seller", "--no-cosign", state="fresh"))
    assert f"checkpoint of size 5: its signed root is {forged.hex()}, the 5 leaves the log serves give root" in fresh


def test_checkpoint_absent_from_the_ledger(parties: Parties) -> None:
    journal = parties.server.journal
    lines = journal.read_bytes().splitlines(keepends=True)
    assert len(lines) == 1
    journal.write_bytes(b"")
    problems = failed(parties.verify("buyer"))
    assert "checkpoint of size 5 is not on the ledger" in problems
    assert "entry 0 is absent" in problems


def test_host_signature_corrupted(parties: Parties) -> None:
    server = parties.server
    (note,) = server.sql("SELECT note FROM checkpoint WHERE size = 5")[0]
    text, _, line = bytes(note).rstrip(b"\n").rpartition(b"\n")
    name, _, encoded = line.rpartition(b" ")
    raw = bytearray(base64.b64decode(encoded))
    raw[-1] ^= 0x01
    corrupted = text + b"\n" + name + b" " + base64.b64encode(bytes(raw)) + b"\n"
    server.sql("UPDATE checkpoint SET note = :note WHERE size = 5", note=corrupted)
    problems = failed(parties.verify("buyer"))
    assert "checkpoint of size 5: host signature: invalid signature for key sonata-dlt.local+" in problems


def test_cosignature_corrupted(parties: Parties) -> None:
    server = parties.server
    (line,) = server.sql("SELECT line FROM checkpoint_signature WHERE size = 5 AND role = 'seller'")[0]
    name, _, encoded = line.rstrip("\n").rpartition(" ")
    raw = bytearray(base64.b64decode(encoded))
    raw[-1] ^= 0x01
    server.sql(
        "UPDATE checkpoint_signature SET line = :line WHERE size = 5 AND role = 'seller'",
        line=f"{name} {base64.b64encode(bytes(raw)).decode()}\n",
    )
    problems = failed(parties.verify("buyer"))
    assert "checkpoint of size 5: seller SELLER-1: invalid cosignature for key seller-key+" in problems
