"""``sonata-dlt sandbox``: two operators, a month of business, verified end to end, with the web console.

::

    sonata-dlt sandbox [--scenario FILE] [--scale N] [--exit-when-done] [--work-dir DIR] [--port P]
                       [--ledger local | --ledger ethereum (--rpc URL [--contract ADDRESS] | --dev-node)]

Everything binds to 127.0.0.1. Exit codes are those of ``sonata_dlt.sandbox.session``.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from sonata_dlt.errors import ConfigurationError
from sonata_dlt.logs import configure_logging


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("sandbox", help="run two operators through a month of business, verified")
    parser.add_argument("--scenario", type=Path, help="scenario YAML (default: scenarios/default.yaml)")
    parser.add_argument("--scale", type=int, default=1, help="multiply the scenario's order volumes by N")
    parser.add_argument(
        "--exit-when-done",
        action="store_true",
        help="stop after the summary (default: keep the server and console running until Ctrl-C)",
    )
    parser.add_argument("--work-dir", type=Path, help="keep databases, keys and logs here (default: a temp dir)")
    parser.add_argument("--port", type=int, help="server port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--ledger", choices=("local", "ethereum"), default="local")
    parser.add_argument("--rpc", help="ethereum: JSON-RPC URL of the chain")
    parser.add_argument("--contract", help="ethereum: AnchorLog address (default: deploy one)")
    parser.add_argument("--dev-node", action="store_true", help="ethereum: start Ganache on 127.0.0.1 via npx")
    parser.add_argument("--log-level", default="WARNING", help="sandbox's own structured log level (stderr)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sonata_dlt.sandbox.narration import Narrator
    from sonata_dlt.sandbox.processes import StartFailed
    from sonata_dlt.sandbox.scenario import default_scenario_path, load_scenario
    from sonata_dlt.sandbox.session import EXIT_START, EXIT_USAGE, Options, install_stop_signals, run_sandbox

    configure_logging("kv", args.log_level)
    if args.scale < 1:
        print("sonata-dlt sandbox: --scale must be at least 1")
        return EXIT_USAGE
    if args.ledger == "local" and (args.rpc or args.dev_node or args.contract):
        print("sonata-dlt sandbox: --rpc, --contract and --dev-node need --ledger ethereum")
        return EXIT_USAGE
    try:
        scenario = load_scenario(args.scenario or default_scenario_path())
    except ConfigurationError as exc:
        print(f"sonata-dlt sandbox: {exc}")
        return EXIT_USAGE
    options = Options(
        scenario=scenario,
        scale=args.scale,
        exit_when_done=args.exit_when_done,
        work_dir=args.work_dir,
        port=args.port,
        ledger=args.ledger,
        rpc=args.rpc,
        contract=args.contract,
        dev_node=args.dev_node,
    )

    async def main() -> int:
        stop = asyncio.Event()
        narrator = Narrator()
        session = asyncio.ensure_future(run_sandbox(options, narrator, stop))

        def interrupt() -> None:
            # Once the summary is printed the sandbox only serves the console: stop it cleanly. Before that,
            # cancel the scenario; run_sandbox stops the children either way.
            if narrator.idle:
                stop.set()
            else:
                session.cancel()

        install_stop_signals(interrupt)
        try:
            return (await session).exit_code
        except asyncio.CancelledError:
            print("\nsandbox: interrupted; processes stopped")
            return 130
        except StartFailed as exc:
            print(f"sonata-dlt sandbox: could not start: {exc}")
            return EXIT_START

    return asyncio.run(main())
