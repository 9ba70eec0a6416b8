"""What recording costs end to end: create-order throughput with the verifiable log on vs off, same run.

Two real servers (SQLite, demo tokens) differ only in ``SONATA_DLT_RECORD_LOG``; each is driven over HTTP by the
same 32 concurrent clients as bench_create_order.py, in alternated rounds, and the medians are compared.
Target (issue "Verifiable state", 11): recording adds at most 10 % to the cost of a create.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_create_order import free_port, measure, server


def serve_command(port: int, directory: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sonata_dlt.cli",
        "serve",
        "--demo",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--database-url",
        f"sqlite:///{directory}/sonata.sqlite",
        "--data-dir",
        f"{directory}/data",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1500, help="requests per round (bounded)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server, alternated")
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args(argv)
    if not (1 <= args.requests <= 100_000 and 1 <= args.concurrency <= 256 and 1 <= args.rounds <= 10):
        parser.error("keep the load bounded: requests <= 100000, concurrency <= 256, rounds <= 10")

    throughput: dict[str, list[float]] = {"recording on": [], "recording off": []}
    with (
        tempfile.TemporaryDirectory(prefix="bench-recording-on-") as on_dir,
        tempfile.TemporaryDirectory(prefix="bench-recording-off-") as off_dir,
    ):
        on_port, off_port = free_port(), free_port()
        with (
            server(serve_command(on_port, on_dir), on_port) as recording_on,
            server(serve_command(off_port, off_dir), off_port, env={"SONATA_DLT_RECORD_LOG": "false"}) as recording_off,
        ):
            for number in range(args.rounds):
                for name, target in (("recording on", recording_on), ("recording off", recording_off)):
                    result = measure(name, target, args.requests, args.concurrency, args.warmup)
                    throughput[name].append(result.throughput)
                    print(
                        f"round {number + 1} {name:<13} {result.throughput:8.1f} req/s  p50 {result.p50_ms:7.1f} ms"
                        f"  p99 {result.p99_ms:7.1f} ms  errors {result.errors}",
                        flush=True,
                    )
    on, off = statistics.median(throughput["recording on"]), statistics.median(throughput["recording off"])
    overhead = (off / on - 1) * 100  # extra time per create, in percent of the unrecorded cost
    print(f"\nmedians over {args.rounds} alternated rounds, {args.requests} requests each, {args.concurrency} clients:")
    print(f"  recording on   {on:8.1f} req/s")
    print(f"  recording off  {off:8.1f} req/s")
    print(f"  cost of recording per create: {overhead:+.1f} % (target <= 10 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
