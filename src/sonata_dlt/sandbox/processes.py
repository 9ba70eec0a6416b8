"""Child processes of the sandbox: the server, the buyer agents and, on request, a local EVM node.

Each child is started with the same interpreter, its output goes to its own log file under the work directory,
and it is stopped with SIGTERM (SIGKILL after a grace period) in the reverse order of starting. Readiness is
an HTTP answer (``/healthz``, ``/agent/status``) or a JSON-RPC ``eth_chainId``, with a deadline; a child that
exits early makes the start fail with the tail of its log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import aiohttp

from sonata_dlt.sandbox.topology import LOOPBACK

log = logging.getLogger("sonata_dlt.sandbox")

GANACHE = "ganache@7.9.2"  # the pinned dev node .ci/evm-node.sh uses


class StartFailed(Exception):
    pass


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _log_file: IO[bytes]

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace: float = 10.0) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                log.warning("child did not stop in time; killing it", extra={"child": self.name})
                self.process.kill()
                self.process.wait()
        self._log_file.close()
        return self.process.returncode


def spawn(name: str, argv: list[str], log_dir: Path) -> Child:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    handle = open(log_path, "ab")
    # A new session: Ctrl-C in the terminal reaches the sandbox only, which then stops its children in order
    # (a server killed before the agents would make their last verification rounds fail for no reason).
    process = subprocess.Popen(  # noqa: S603 - argv is built here from sys.executable and fixed module names
        argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    log.info("started", extra={"child": name, "pid": process.pid, "log": str(log_path)})
    return Child(name, process, log_path, handle)


async def wait_http(child: Child, url: str, within: float) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise StartFailed(f"{child.name} exited with {child.process.returncode}:\n{child.tail()}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise StartFailed(f"{child.name} did not answer {url} within {within:g}s:\n{child.tail()}")


def start_server(config_file: Path, log_dir: Path) -> Child:
    # The package has no __main__; this is what the ``sonata-dlt`` console script runs, with our interpreter.
    entry = "import sys; from sonata_dlt.cli import main; sys.exit(main())"
    return spawn("server", [sys.executable, "-c", entry, "serve", "--config", str(config_file)], log_dir)


def start_agent(party_id: str, config: dict[str, object], work_dir: Path, log_dir: Path) -> Child:
    path = work_dir / f"agent-{party_id}.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    path.chmod(0o600)  # it holds the buyer's token
    return spawn(f"agent-{party_id}", [sys.executable, "-m", "sonata_dlt.sandbox.buyer_agent", str(path)], log_dir)


def ganache_command() -> list[str]:
    """The Ganache that .ci/evm-node.sh installed (its cache directory), else ``npx`` fetching the same version."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sonata-dlt" / "evm-node"
    installed = cache / "node_modules" / ".bin" / "ganache"
    if installed.is_file() and shutil.which("node") is not None:
        return [str(installed)]
    npx = shutil.which("npx")
    if npx is None:
        raise StartFailed("--dev-node needs node and npm (npx) on PATH; or give --rpc URL of a running node")
    return [npx, "--yes", GANACHE]


def start_dev_node(port: int, log_dir: Path) -> Child:
    """Ganache from npm on 127.0.0.1 (deterministic accounts, instant mining), as .ci/evm-node.sh starts it."""
    argv = [
        *ganache_command(),
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--chain.chainId",
        "1337",
        "--wallet.deterministic",
        "--logging.quiet",
    ]
    return spawn("evm-node", argv, log_dir)


async def wait_rpc(child: Child, url: str, within: float) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise StartFailed(f"{child.name} exited with {child.process.returncode}:\n{child.tail()}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
                async with http.post(url, json=body) as response:
                    if (await response.json()).get("result"):
                        return
            await asyncio.sleep(0.5)
    raise StartFailed(f"{child.name} gave no JSON-RPC answer on {url} within {within:g}s:\n{child.tail()}")
