"""A real ``sonata-dlt serve`` in a subprocess, on a free loopback port, with its own database and data dir.

Used by the verifier, bundle, tamper and crash tests: they need real storage they can tamper with behind the
server's back, and a server they can kill. ``LiveServer.stop`` always ends the process (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from sonata_dlt.settings import DEMO_BUYER_TOKEN, DEMO_SELLER_TOKEN

ORDERING = "/mefApi/sonata/productOrderingManagement/v10"
FULFIL = "/mefApi/sonata/sellerFulfilment/v1"
PROOFS = "/mefApi/sonata/verifiableLog/v1"
# The console script's entry point, run by this interpreter: works in any venv, installed or not on PATH.
CLI = [sys.executable, "-c", "import sys; from sonata_dlt.cli import main; sys.exit(main())"]
START_TIMEOUT = 90.0  # two cores shared by several suites: loading every spec can be slow


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def order_body(number: int = 1) -> dict[str, Any]:
    return {
        "externalId": f"EXT-{number}",
        "relatedContactInformation": [
            {
                "emailAddress": "noc@buyer.example",
                "name": "Buyer NOC",
                "number": "+1 555 0100",
                "role": "productOrderContact",
            }
        ],
        "productOrderItem": [
            {"id": "1", "action": "add", "product": {"productConfiguration": {"@type": "urn:test:v1", "bw": number}}}
        ],
    }


@dataclass
class LiveServer:
    database_url: str
    data_dir: Path
    log_path: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def journal(self) -> Path:
        return self.data_dir / "ledger" / "anchors.jsonl"

    @property
    def host_key_file(self) -> Path:
        return self.data_dir / "host.key"

    def start(self) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            # Checkpoints are cut by the tests through the Proof API, never behind their back.
            "SONATA_DLT_CHECKPOINTS__EVERY_SECONDS": "86400",
            "SONATA_DLT_CHECKPOINTS__EVERY_LEAVES": "1000000",
            **self.extra_env,
        }
        env.pop("SONATA_DLT_CONFIG", None)
        command = [
            *CLI, "serve", "--demo", "--host", "127.0.0.1",
            "--port", str(self.port), "--database-url", self.database_url, "--data-dir", str(self.data_dir),
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.process.returncode}:\n{self.log_path.read_text()[-3000:]}"
                )
            try:
                status, _ = self.call("GET", f"{PROOFS}/partyKey")
                if status < 500:  # answered (a 400 when the demo buyer was given several sellers): it is up
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not answer within {START_TIMEOUT} s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, as in a crash."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=15)
            self.process = None

    def call(
        self, method: str, path: str, body: Any = None, token: str = DEMO_BUYER_TOKEN, timeout: float = 30.0
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310 - loopback
        request.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback
                return response.status, _decoded(response.read())
        except urllib.error.HTTPError as error:
            return error.code, _decoded(error.read())

    # -- scenario helpers ---------------------------------------------------------------------------------------

    def create_order(self, number: int = 1) -> dict[str, Any]:
        status, body = self.call("POST", f"{ORDERING}/productOrder", order_body(number))
        assert status == 201, body
        return dict(body)

    def seller(self, path: str, body: Any = None) -> dict[str, Any]:
        status, answer = self.call("POST", f"{FULFIL}{path}", body, token=DEMO_SELLER_TOKEN)
        assert status == 200, answer
        return dict(answer)

    def cut(self) -> dict[str, Any]:
        status, body = self.call("POST", f"{PROOFS}/checkpoint")
        assert status in (200, 201), body
        return dict(body)

    def wait_anchored(self, size: int, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body = self.call("GET", f"{PROOFS}/checkpoint/{size}")
            if status == 200 and "anchorReceipt" in body:
                return dict(body)
            time.sleep(0.2)
        raise AssertionError(f"checkpoint {size} was not anchored within {timeout} s")

    def engine(self) -> sqlalchemy.Engine:
        return sqlalchemy.create_engine(self.database_url)

    def sql(self, statement: str, **params: Any) -> list[Any]:
        """Run one statement directly on the server's database (tampering behind its back)."""
        engine = self.engine()
        try:
            with engine.begin() as connection:
                result = connection.execute(sqlalchemy.text(statement), params)
                return list(result) if result.returns_rows else []
        finally:
            engine.dispose()


def _decoded(text: bytes) -> Any:
    """The JSON body, or the raw text when it is not JSON (so a failing assertion shows what came back)."""
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text.decode("utf-8", "replace")


@pytest.fixture
def live_server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(database_url, tmp_path / "data", tmp_path / "server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def scenario(server: LiveServer) -> list[str]:
    """Two orders by the buyer; the seller accepts one and completes it (which creates a product); a checkpoint."""
    first = server.create_order(1)
    second = server.create_order(2)
    server.seller(f"/productOrder/{first['id']}/accept")
    server.seller(f"/productOrder/{first['id']}/item/1/complete", {})
    server.wait_anchored(server.cut()["treeSize"])
    return [first["id"], second["id"]]


VerifyRun = Callable[..., "subprocess.CompletedProcess[str]"]


def run_cli(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "SONATA_DLT_CONFIG"}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env,
        check=False,
    )  # fmt: skip
