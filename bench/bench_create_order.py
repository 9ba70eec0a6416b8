"""Create-order throughput and latency: the full server against the bare framework floor, side by side.

Starts on 127.0.0.1, each as a uvicorn subprocess:
  (a) floor: bench/floor_app.py, connexion on the same spec, canned 201 (validation only);
  (b) full:  ``sonata-dlt serve --demo`` on SQLite in a temp dir (validation, persistence, log leaf, outbox).
Drives each with C concurrent aiohttp clients posting a realistic order, N requests per round after a warm-up,
alternating rounds (floor, full, floor, full, ...) because the machine is noisy, and prints the medians:
throughput, p50, p99 and full/floor throughput ratio. Target: ratio >= 0.75 and full p99 <= 100 ms.
Beside them, the CPU time each server spent per request (all its threads and child processes, from /proc on
Linux): the full server commits in a writer process, so its throughput uses more than one core.

    .venv/bin/python bench/bench_create_order.py [--requests 2000] [--concurrency 32] [--rounds 3]

A benchmark, not a test: it asserts nothing and only ever talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from conformance.scenarios import sample_order  # noqa: E402 - after making the checkout importable

PATH = "/mefApi/sonata/productOrderingManagement/v10/productOrder"
HEADERS = {"Authorization": "Bearer demo-buyer-token", "Content-Type": "application/json;charset=utf-8"}


@dataclass
class Round:
    name: str
    throughput: float  # requests per second
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float | None  # the server's CPU time per request, every thread and child process; None without /proc


@dataclass(frozen=True)
class RunningServer:
    url: str
    pid: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(command: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[RunningServer]:
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})}
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with {process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("server did not start within 60 s")
        yield RunningServer(url, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def drive(url: str, requests: int, concurrency: int) -> tuple[float, list[float], int]:
    """POST ``requests`` orders with ``concurrency`` clients; returns wall seconds, latencies (s), errors."""
    latencies: list[float] = []
    errors = 0
    remaining = requests
    bodies = [sample_order(f"bench-{i}") for i in range(64)]

    async def client(session: aiohttp.ClientSession, number: int) -> None:
        nonlocal remaining, errors
        sent = 0
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            async with session.post(url + PATH, json=bodies[(number + sent) % len(bodies)], headers=HEADERS) as reply:
                await reply.read()
                if reply.status != 201:
                    errors += 1
            latencies.append(time.perf_counter() - started)
            sent += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session, n) for n in range(concurrency)))
        wall = time.perf_counter() - started
    return wall, latencies, errors


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of a process, its threads and its child processes so far; None without /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        children = [
            child for task in Path(f"/proc/{pid}/task").iterdir() for child in (task / "children").read_text().split()
        ]
    except OSError:
        return None
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(int(child)) or 0.0 for child in children)


def measure(name: str, target: RunningServer, requests: int, concurrency: int, warmup: int) -> Round:
    asyncio.run(drive(target.url, warmup, concurrency))
    cpu_before = cpu_seconds(target.pid)
    wall, latencies, errors = asyncio.run(drive(target.url, requests, concurrency))
    cpu_after = cpu_seconds(target.pid)
    latencies.sort()
    return Round(
        name,
        throughput=len(latencies) / wall,
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        errors=errors,
        cpu_us=None if cpu_before is None or cpu_after is None else (cpu_after - cpu_before) / requests * 1e6,
    )


def cpu_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:5.0f} us"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per round (bounded)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server, alternated")
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args(argv)
    if not (1 <= args.requests <= 100_000 and 1 <= args.concurrency <= 256 and 1 <= args.rounds <= 10):
        parser.error("keep the load bounded: requests <= 100000, concurrency <= 256, rounds <= 10")

    python = sys.executable
    floor_port, full_port = free_port(), free_port()
    floor_cmd = [
        python,
        "-m",
        "uvicorn",
        "floor_app:app",
        "--app-dir",
        "bench",
        "--host",
        "127.0.0.1",
        "--port",
        str(floor_port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    results: dict[str, list[Round]] = {"floor": [], "full": []}
    with tempfile.TemporaryDirectory(prefix="bench-create-order-") as tmp:
        full_cmd = [
            python,
            "-m",
            "sonata_dlt.cli",
            "serve",
            "--demo",
            "--host",
            "127.0.0.1",
            "--port",
            str(full_port),
            "--database-url",
            f"sqlite:///{tmp}/sonata.sqlite",
            "--data-dir",
            f"{tmp}/data",
        ]
        with server(floor_cmd, floor_port) as floor, server(full_cmd, full_port) as full:
            for number in range(args.rounds):
                for name, target in (("floor", floor), ("full", full)):
                    result = measure(name, target, args.requests, args.concurrency, args.warmup)
                    results[name].append(result)
                    print(
                        f"round {number + 1} {name:<5} {result.throughput:8.1f} req/s  p50 {result.p50_ms:6.1f} ms"
                        f"  p99 {result.p99_ms:6.1f} ms  server CPU/request {cpu_text(result.cpu_us)}"
                        f"  errors {result.errors}",
                        flush=True,
                    )

    def median(name: str, attribute: str) -> float:
        return statistics.median(getattr(r, attribute) for r in results[name])

    def median_cpu(name: str) -> float | None:
        figures = [r.cpu_us for r in results[name] if r.cpu_us is not None]
        return statistics.median(figures) if figures else None

    print(f"\nmedians over {args.rounds} alternated rounds, {args.requests} requests each, {args.concurrency} clients:")
    for name in ("floor", "full"):
        print(
            f"  {name:<5} {median(name, 'throughput'):8.1f} req/s  p50 {median(name, 'p50_ms'):6.1f} ms"
            f"  p99 {median(name, 'p99_ms'):6.1f} ms  server CPU/request {cpu_text(median_cpu(name))}"
            f"  errors {sum(r.errors for r in results[name])}"
        )
    ratio = median("full", "throughput") / median("floor", "throughput")
    p99 = median("full", "p99_ms")
    print(f"  full / floor throughput: {ratio:.2f} (target >= 0.75); full p99 {p99:.1f} ms (target <= 100 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
