"""One sandbox run: start the processes, play the scenario, check the expectations, print the summary, stop.

Exit status: 0 when every expectation holds and no agent raised an alarm; 1 otherwise; 2 for unusable options
or a scenario file that does not validate; 3 when a process could not be started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from sonata_dlt.sandbox import processes
from sonata_dlt.sandbox.narration import Narrator, money
from sonata_dlt.sandbox.processes import Child, StartFailed
from sonata_dlt.sandbox.runner import Run, run_scenario
from sonata_dlt.sandbox.scenario import Scenario
from sonata_dlt.sandbox.topology import LOOPBACK, free_port, make_topology, server_settings, write_toml
from sonata_dlt.sandbox.verification import collect_figures, ledger_lookup
from sonata_dlt.signing.keys import SigningKey

log = logging.getLogger("sonata_dlt.sandbox")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_START = 0, 1, 2, 3


@dataclass
class Options:
    scenario: Scenario
    scale: int = 1
    exit_when_done: bool = False
    work_dir: Path | None = None
    port: int | None = None
    ledger: str = "local"
    rpc: str | None = None
    contract: str | None = None
    dev_node: bool = False
    checkpoint_seconds: float = 2.0


@dataclass
class Outcome:
    exit_code: int
    figures: dict[str, float]
    failed_expectations: list[str]
    alarms: list[str]
    work_dir: Path


async def _ledger_settings(options: Options, work_dir: Path, children: list[Child]) -> dict[str, Any]:
    if options.ledger == "local":
        return {"backend": "local"}
    rpc = options.rpc
    if options.dev_node:
        port = free_port()
        rpc = f"http://{LOOPBACK}:{port}"
        node = processes.start_dev_node(port, work_dir / "logs")
        children.append(node)
        await processes.wait_rpc(node, rpc, within=180)  # the first npx run downloads Ganache
    if rpc is None:
        raise StartFailed("--ledger ethereum needs --rpc URL or --dev-node")
    contract = options.contract
    if contract is None:
        from sonata_dlt.ledger.ethereum import deploy_anchor_contract  # web3 is slow to import; only when used

        contract = await asyncio.to_thread(deploy_anchor_contract, rpc, None)
        log.info("deployed the anchor contract", extra={"address": contract, "rpc": rpc})
    return {"backend": "ethereum", "options": {"rpc_url": rpc, "contract_address": contract}}


async def run_sandbox(options: Options, narrator: Narrator, stop: asyncio.Event | None = None) -> Outcome:
    with contextlib.ExitStack() as stack:
        if options.work_dir is None:
            work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sonata-sandbox-")))
        else:
            work_dir = options.work_dir
            if (work_dir / "server" / "sonata.sqlite").exists():
                # A month's figures are exact: the orders, keys and trust stores of an earlier run would skew them.
                raise StartFailed(f"{work_dir} holds an earlier sandbox run; give an empty or new --work-dir")
            work_dir.mkdir(parents=True, exist_ok=True)
        (work_dir / "server").mkdir(exist_ok=True)
        children: list[Child] = []
        try:
            return await _run(options, narrator, work_dir, children, stop)
        finally:
            for child in reversed(children):
                child.stop()


async def _run(
    options: Options, narrator: Narrator, work_dir: Path, children: list[Child], stop: asyncio.Event | None
) -> Outcome:
    scenario = options.scenario
    topology = make_topology(scenario.operators, options.port)
    topology.ledger = await _ledger_settings(options, work_dir, children)
    config = work_dir / "server.toml"
    write_toml(server_settings(topology, work_dir, checkpoint_seconds=options.checkpoint_seconds), config)

    narrator.say(f"sandbox: {scenario.name} (scale {options.scale}, ledger {topology.ledger['backend']})")
    server = processes.start_server(config, work_dir / "logs")
    children.append(server)
    await processes.wait_http(server, f"{topology.server_url}/healthz", within=60)
    narrator.say(f"  server      {topology.server_url}  (log {server.log_path})")

    # One Ed25519 key per operator, shared by its buyer agent and its seller OSS: the server keeps keys per party.
    keys = {party_id: SigningKey.generate(party_id.lower()) for party_id in scenario.operators}
    for party_id, key in keys.items():
        key.save(work_dir / f"{party_id}.key", overwrite=True)
    agent_urls: list[str] = []
    ledger_backend, ledger_options = ledger_lookup(topology.ledger)
    for party_id in scenario.operators:
        sellers = [seller for buyer, seller in topology.bilaterals() if buyer == party_id]
        agent_config = {
            "server_url": topology.server_url,
            "party_id": party_id,
            "token": topology.buyer(party_id).token,
            "sellers": sellers,
            "port": topology.agent_ports[party_id],
            "database": str(work_dir / f"agent-{party_id}.sqlite"),
            "key_file": str(work_dir / f"{party_id}.key"),
            "ledger_backend": ledger_backend,
            "ledger_options": ledger_options,
        }
        agent = processes.start_agent(party_id, agent_config, work_dir, work_dir / "logs")
        children.append(agent)
        url = topology.agent_url(party_id)
        await processes.wait_http(agent, f"{url}/agent/status", within=30)
        agent_urls.append(url)
        narrator.say(f"  buyer agent {url}  for {party_id} (log {agent.log_path})")

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        run = Run(
            scenario,
            topology,
            http,
            narrator,
            scale=options.scale,
            seller_keys=keys,
            work_dir=work_dir,
            ledger=topology.ledger,
        )
        await run_scenario(run, agent_urls)
        await _settle_agents(http, agent_urls)
        figures = dict(run.figures) | await collect_figures(run)
        statuses = [await _agent_status(http, url) for url in agent_urls]
        alarms = [f"{s['party']}: {alarm}" for s in statuses for alarm in s["alarms"]]
        figures["alarms"] = len(alarms)
        figures["agent.cosigned"] = sum(s["cosigned"] for s in statuses)
        figures["agent.events"] = sum(s["events"] for s in statuses)
        figures["agent.products"] = sum(s["resources"].get("product", 0) for s in statuses)
        failed = _check(scenario, options.scale, figures, narrator)
        _summary(narrator, figures, failed, alarms, run)
        if not options.exit_when_done:
            _explain_console(narrator, topology)
            narrator.idle = True
            await (stop or asyncio.Event()).wait()
    exit_code = EXIT_FAILED if failed or alarms or any(r.status == "failed" for r in narrator.results) else EXIT_OK
    return Outcome(exit_code, figures, failed, alarms, work_dir)


async def _agent_status(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with http.get(f"{url}/agent/status") as response:
        response.raise_for_status()
        status: dict[str, Any] = await response.json()
        return status


async def _settle_agents(http: aiohttp.ClientSession, urls: list[str], within: float = 30.0) -> None:
    """Wait until the agents have fetched everything they were notified of, then run a last verification."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    previous: list[int] = []
    while loop.time() < deadline:
        statuses = [await _agent_status(http, url) for url in urls]
        events = [s["events"] for s in statuses]
        if all(s["queued"] == 0 for s in statuses) and events == previous:
            break  # no new notification arrived in the last interval, and none is waiting to be fetched
        previous = events
        await asyncio.sleep(1.0)
    for url in urls:
        async with http.post(f"{url}/agent/verify") as response:
            response.raise_for_status()


def _check(scenario: Scenario, scale: int, figures: dict[str, float], narrator: Narrator) -> list[str]:
    failed: list[str] = []
    narrator.say("\nexpectations")
    for name in scenario.expectations:
        bound = scenario.bound(name, scale)
        actual = figures.get(name)
        if actual is None:
            failed.append(f"{name}: not measured (its step did not run), expected {bound.describe()}")
            narrator.say(f"  [FAIL] {name:<28} not measured, expected {bound.describe()}")
        elif bound.check(actual):
            narrator.say(f"  [ok]   {name:<28} {actual:g}")
        else:
            failed.append(f"{name}: {actual:g}, expected {bound.describe()}")
            narrator.say(f"  [FAIL] {name:<28} {actual:g}, expected {bound.describe()}")
    return failed


def _summary(narrator: Narrator, f: dict[str, float], failed: list[str], alarms: list[str], run: Run) -> None:
    def n(name: str) -> str:
        return f"{f.get(name, 0):g}"

    waiting = [r for r in narrator.results if r.status == "waiting"]
    narrator.say("\nsummary")
    narrator.say(
        f"  orders        {n('orders.total')} ({n('orders.completed')} completed, {n('orders.rejected')} "
        f"rejected, {n('orders.cancelled')} cancelled, {n('orders.failed')} failed)"
    )
    narrator.say(
        f"  products      {n('products.total')} ({n('products.active')} active, "
        f"{n('products.terminated')} terminated); agents hold {n('agent.products')}"
    )
    narrator.say(f"  charges       {n('charges.accepted')} accepted, {n('charges.declined')} declined")
    narrator.say(
        f"  reconciliation {n('reconciliation.matched')} matched / {n('reconciliation.partial')} partial "
        f"/ {n('reconciliation.mismatched')} mismatched"
    )
    narrator.say(f"  billed        {money(f.get('billing.amount'))}; net settlement {money(f.get('settlement.net'))}")
    narrator.say(
        f"  log           {n('checkpoints.total')} checkpoints, {n('checkpoints.endorsed')} endorsed by both "
        f"parties, {n('anchors')} anchored; agents cosigned {n('agent.cosigned')} and received "
        f"{n('agent.events')} notifications"
    )
    narrator.say(
        f"  verification  {n('verification.bilaterals')} bilateral(s) verified end to end, "
        f"{n('verification.failures')} failure(s)"
    )
    for alarm in alarms:
        narrator.say(f"  ALARM         {alarm}")
    for result in waiting:
        narrator.say(f"  waiting       step {result.index} ({result.name}): {result.detail}")
    verdict = "FAILED" if failed or alarms or any(r.status == "failed" for r in narrator.results) else "PASSED"
    narrator.say(
        f"  result        {verdict} ({len(failed)} expectation(s) failed, {len(alarms)} alarm(s), "
        f"{len(waiting)} step(s) waiting on APIs not served yet)"
    )


def _explain_console(narrator: Narrator, topology: Any) -> None:
    narrator.say(f"\nconsole: {topology.server_url}/console/static/index.html  (Ctrl-C to stop)")
    for party_id, operator in topology.operators.items():
        narrator.say(f"  {party_id}: buyer token {operator.as_buyer.token}  seller token {operator.as_seller.token}")


def install_stop_signals(handler: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, handler)
