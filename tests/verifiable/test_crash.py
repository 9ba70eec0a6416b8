"""A crash in the middle of a burst of writes loses nothing that was acknowledged and leaves log and state in step.

The server is killed with SIGKILL while 8 threads create orders, then restarted on the same database. Every order
that got a 201 must be there, every order's stored document must hash to its latest leaf, the leaf count must be
the number of recorded changes, the stored Merkle frontier must give the root recomputed from the leaves, and the
party verifier must pass.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
from pathlib import Path

import pytest
from client.live_server import LiveServer, order_body, run_cli

from sonata_dlt.settings import DEMO_BUYER_TOKEN
from sonata_dlt.signing.keys import SigningKey
from sonata_dlt.transparency.canonical import state_hash
from sonata_dlt.transparency.merkle import MemoryTree, leaf_hash, root_from_frontier

pytestmark = pytest.mark.slow
ORDERING = "/mefApi/sonata/productOrderingManagement/v10"
THREADS = 8
BURST_SECONDS = 1.5
# A loaded CI machine can take seconds to answer the first creates (connection pools, ORM warm-up): the burst's
# clock starts at the first acknowledgement, so the kill always lands among committed and in-flight writes.
FIRST_ACK_TIMEOUT = 60.0


def _burst(
    server: LiveServer, acknowledged: list[str], refused: list[object], stop: threading.Event, worker: int
) -> None:
    number = 0
    while not stop.is_set():
        number += 1
        try:
            status, body = server.call("POST", f"{ORDERING}/productOrder", _order(worker, number), timeout=30)
        except (OSError, urllib.error.URLError, http.client.HTTPException):
            # The server is gone (before or while answering: a cut-off body is an IncompleteRead): this request may
            # or may not have committed, it was never acknowledged.
            return
        if status == 201:
            acknowledged.append(body["id"])
        else:
            refused.append((status, body))


def _wait_for_first_acknowledgement(acknowledged: list[str], refused: list[object]) -> None:
    deadline = time.monotonic() + FIRST_ACK_TIMEOUT
    while not acknowledged and not refused and time.monotonic() < deadline:
        time.sleep(0.05)


def _order(worker: int, number: int) -> dict[str, object]:
    body = order_body(number)
    body["externalId"] = f"W{worker}-{number}"
    return body


def _json(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else json.loads(str(value))


def test_sigkill_during_concurrent_creates(database_url: str, tmp_path: Path) -> None:
    server = LiveServer(database_url, tmp_path / "data", tmp_path / "server.log")
    server.start()
    try:
        acknowledged: list[str] = []
        refused: list[object] = []
        stop = threading.Event()
        threads = [
            threading.Thread(target=_burst, args=(server, acknowledged, refused, stop, worker))
            for worker in range(THREADS)
        ]
        for thread in threads:
            thread.start()
        _wait_for_first_acknowledgement(acknowledged, refused)
        time.sleep(BURST_SECONDS)
        server.kill()
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert not refused, f"valid creates were refused before the crash: {refused[:3]}"
        assert acknowledged, "no order was acknowledged before the crash"

        server.start()
        for order_id in acknowledged:
            status, _ = server.call("GET", f"{ORDERING}/productOrder/{order_id}")
            assert status == 200, f"order {order_id} got a 201 before the crash and is gone after it"

        leaves = server.sql(
            "SELECT seq, resource_type, resource_id, version, record, leaf_hash FROM log_leaf ORDER BY seq"
        )
        assert [row[0] for row in leaves] == list(range(len(leaves))), "leaf indices are not gap-free"
        ((log_size, frontier),) = server.sql("SELECT log_size, frontier FROM bilateral")
        assert log_size == len(leaves)
        assert {row[1] for row in leaves} == {"productOrder"}

        orders = {
            row[0]: (row[1], _json(row[2])) for row in server.sql("SELECT id, version, document FROM product_order")
        }
        assert set(acknowledged) <= set(orders)
        assert sum(version for version, _ in orders.values()) == len(leaves), "leaf count != recorded changes"
        latest: dict[str, tuple[int, str]] = {}
        tree = MemoryTree()
        for _, _, resource_id, version, record, stored_hash in leaves:
            assert leaf_hash(bytes(record)) == bytes(stored_hash)
            tree.append(bytes(record))
            latest[resource_id] = (version, json.loads(bytes(record))["stateHash"])
        for order_id, (version, document) in orders.items():
            assert latest[order_id] == (version, state_hash(document).hex()), f"order {order_id} and its log differ"
        packed = bytes(frontier)
        assert root_from_frontier([packed[i : i + 32] for i in range(0, len(packed), 32)]) == tree.root()

        server.wait_anchored(server.cut()["treeSize"])
        key = tmp_path / "buyer.skey"
        SigningKey.generate("buyer-key").save(key)
        result = run_cli(
            "verify", "--url", server.url, "--token", DEMO_BUYER_TOKEN, "--key", str(key),
            "--state", str(tmp_path / "buyer.state"), "--ledger-backend", "local",
            "--ledger-option", f"path={server.journal}",
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"{len(orders)} resource(s)" in result.stdout
    finally:
        server.stop()
