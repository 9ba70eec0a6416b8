"""The buyer agent: a buyer's own OSS, in its own process with its own database.

It subscribes to the seller's hubs (Product Ordering and Customer Bill), answers Sonata notifications on the
listener paths of ``productOrderNotification.api.yaml`` and ``customerBillNotification.api.yaml`` (an aiohttp
server on 127.0.0.1), and, as MEF intends, treats an event as a hint: it GETs the resource and keeps that copy in
its own SQLite system of record. Continuously, whenever a bilateral's log has a new checkpoint, it runs the client
verifier (``sonata_dlt.client.verifier``, what ``sonata-dlt verify`` runs; its trust store is a file next to the
agent's database) and, when that passes, checks its own copies: each one must be a state the log recorded, included
in the checkpoint when its leaf is (a server that showed the buyer one thing and logged another is caught here,
which the verifier alone, reading what the server serves now, cannot see). Then it cosigns. A failed check is an
*alarm*: logged at error level and counted in ``GET /agent/status``, which the sandbox reads for its summary and
its exit status.

Run by the sandbox as ``python -m sonata_dlt.sandbox.buyer_agent CONFIG.json`` (see ``AgentConfig``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from sonata_dlt import base_paths
from sonata_dlt.bilateral_id import bilateral_id_for
from sonata_dlt.client.checks import decode_proof, parse_leaf
from sonata_dlt.client.sonata import ServerError, SonataClient
from sonata_dlt.client.trust_store import TrustStore
from sonata_dlt.client.verifier import Report, VerificationFailed, Verifier, VerifierOptions
from sonata_dlt.errors import VerificationError
from sonata_dlt.logs import bilateral_var, configure_logging, party_var
from sonata_dlt.sandbox.http import ApiError, call
from sonata_dlt.sandbox.topology import LOOPBACK, Identity
from sonata_dlt.settings import Role
from sonata_dlt.signing.keys import SigningKey
from sonata_dlt.transparency.canonical import state_hash
from sonata_dlt.transparency.merkle import verify_inclusion

log = logging.getLogger("sonata_dlt.sandbox.agent")

ORDERING = base_paths.PRODUCT_ORDERING
INVENTORY = base_paths.PRODUCT_INVENTORY
BILLING = base_paths.CUSTOMER_BILL
ORDER_LISTENER = f"{base_paths.PRODUCT_ORDERING_NOTIFICATION}/listener/"
BILL_LISTENER = f"{base_paths.CUSTOMER_BILL_NOTIFICATION}/listener/"
ORDER_EVENTS = frozenset(
    {
        "productOrderStateChangeEvent",
        "productOrderItemStateChangeEvent",
        "productOrderItemExpectedCompletionDateSet",
        "productSpecificProductOrderItemMilestoneEvent",
        "cancelProductOrderStateChangeEvent",
        "chargeCreateEvent",
        "chargeStateChangeEvent",
        "chargeTimeoutEvent",
        "modifyProductOrderItemRequestedDeliveryDateStateChangeEvent",
    }
)
BILL_EVENTS = frozenset({"customerBillCreateEvent", "customerBillStateChangeEvent"})

SCHEMA = """
CREATE TABLE IF NOT EXISTS resource (
    kind TEXT NOT NULL, id TEXT NOT NULL, seller TEXT NOT NULL, state TEXT, document TEXT NOT NULL,
    fetched_at REAL NOT NULL, PRIMARY KEY (kind, id));
CREATE TABLE IF NOT EXISTS event (
    event_id TEXT PRIMARY KEY, event_type TEXT NOT NULL, resource_id TEXT, received_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS alarm (id INTEGER PRIMARY KEY, seller TEXT, message TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS cosigned (seller TEXT NOT NULL, tree_size INTEGER NOT NULL, at REAL NOT NULL);
"""


@dataclass(frozen=True)
class AgentConfig:
    server_url: str
    party_id: str
    token: str
    sellers: list[str]
    port: int
    database: str
    key_file: str
    verify_every_seconds: float = 1.0
    ledger_backend: str | None = None  # where the verifier looks anchors up (None: local receipts offline)
    ledger_options: dict[str, Any] | None = None

    @classmethod
    def load(cls, path: Path) -> AgentConfig:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


class Store:
    """The agent's own system of record (stdlib sqlite3: one small file, one writer, no server)."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path)
        self.db.executescript(SCHEMA)

    def seen(self, event_id: str, event_type: str, resource_id: str | None, at: float) -> bool:
        """Record an event; True when it was already received (delivery is at least once)."""
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO event VALUES (?, ?, ?, ?)", (event_id, event_type, resource_id, at)
        )
        self.db.commit()
        return cursor.rowcount == 0

    def keep(self, kind: str, seller: str, document: dict[str, Any], at: float) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO resource VALUES (?, ?, ?, ?, ?, ?)",
            (kind, document["id"], seller, document.get("state") or document.get("status"), json.dumps(document), at),
        )
        self.db.commit()

    def documents(self, seller: str, kinds: tuple[str, ...]) -> dict[tuple[str, str], dict[str, Any]]:
        marks = ",".join("?" for _ in kinds)
        rows = self.db.execute(
            f"SELECT kind, id, document FROM resource WHERE seller = ? AND kind IN ({marks})",  # noqa: S608 - placeholders only
            (seller, *kinds),
        )
        return {(kind, rid): json.loads(doc) for kind, rid, doc in rows}

    def alarm(self, seller: str | None, message: str, at: float) -> None:
        self.db.execute("INSERT INTO alarm (seller, message, at) VALUES (?, ?, ?)", (seller, message, at))
        self.db.commit()

    def cosigned(self, seller: str, size: int, at: float) -> None:
        self.db.execute("INSERT INTO cosigned VALUES (?, ?, ?)", (seller, size, at))
        self.db.commit()

    def status(self) -> dict[str, Any]:
        def count(sql: str) -> int:
            value: int = self.db.execute(sql).fetchone()[0]
            return value

        kinds = dict(self.db.execute("SELECT kind, COUNT(*) FROM resource GROUP BY kind").fetchall())
        states = self.db.execute(
            "SELECT kind, state, COUNT(*) FROM resource GROUP BY kind, state ORDER BY kind, state"
        ).fetchall()
        return {
            "events": count("SELECT COUNT(*) FROM event"),
            "resources": kinds,
            "states": [{"kind": k, "state": s, "count": n} for k, s, n in states],
            "cosigned": count("SELECT COUNT(*) FROM cosigned"),
            "alarms": [m for (m,) in self.db.execute("SELECT message FROM alarm ORDER BY id")],
        }


class BuyerAgent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.identity = Identity(config.party_id, Role.BUYER, config.token)
        self.store = Store(config.database)
        # The operator's key, made by the sandbox: its seller side cosigns with the same key (keys are per party).
        self.key = SigningKey.load(Path(config.key_file))
        self.verifiers: dict[str, Verifier] = {}
        self.verified_sizes: dict[str, int] = {}  # seller -> size of the last checkpoint verified and cosigned
        self.checked_copies = 0
        self.hubs: list[str] = []
        self._refetch: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue()
        self.verify_rounds = 0
        self._verifying = asyncio.Lock()

    @property
    def callback(self) -> str:
        return f"http://{LOOPBACK}:{self.config.port}"

    def _scope(self, seller: str) -> dict[str, str]:
        return {"buyerId": self.config.party_id, "sellerId": seller}

    def _context(self, seller: str) -> None:
        party_var.set(self.config.party_id)
        bilateral_var.set(bilateral_id_for(self.config.party_id, seller))

    # --- listeners -------------------------------------------------------------------------------------------

    async def listen(self, request: web.Request) -> web.Response:
        event_type = request.match_info["event_type"]
        allowed = ORDER_EVENTS if request.path.startswith(ORDER_LISTENER) else BILL_EVENTS
        if event_type not in allowed:
            return web.json_response({"code": "notFound", "reason": f"no listener {event_type}"}, status=404)
        try:
            body = await request.json()
            payload = body["event"]
            resource_id = str(payload["id"])
        except (ValueError, KeyError, TypeError):
            return web.json_response({"code": "invalidBody", "reason": "not a Sonata event"}, status=400)
        seller = str(payload.get("sellerId") or body.get("sellerId") or "")
        if seller not in self.config.sellers:
            seller = self.config.sellers[0] if len(self.config.sellers) == 1 else seller
        loop = asyncio.get_running_loop()
        if self.store.seen(
            str(body.get("eventId") or f"{event_type}:{resource_id}:{loop.time()}"),
            event_type,
            resource_id,
            loop.time(),
        ):
            return web.Response(status=204)
        # Answer at once and fetch afterwards: the seller's delivery worker should not wait on our GETs.
        await self._refetch.put((event_type, resource_id, seller))
        return web.Response(status=204)

    async def _fetch_loop(self, http: aiohttp.ClientSession) -> None:
        while True:
            event_type, resource_id, seller = await self._refetch.get()
            try:
                await self._fetch(http, event_type, resource_id, seller)
            except (ApiError, aiohttp.ClientError) as exc:
                self._context(seller)
                log.warning("could not fetch after event", extra={"event_type": event_type, "error": str(exc)})

    async def _fetch(self, http: aiohttp.ClientSession, event_type: str, resource_id: str, seller: str) -> None:
        self._context(seller)
        base, scope = self.config.server_url, self._scope(seller)
        now = asyncio.get_running_loop().time()
        if event_type.startswith("customerBill"):
            bill = await call(http, "GET", f"{base}{BILLING}/customerBill/{resource_id}", self.identity)
            self.store.keep("customerBill", seller, bill, now)
        elif event_type.startswith("charge"):
            charge = await call(http, "GET", f"{base}{ORDERING}/charge/{resource_id}", self.identity, params=scope)
            self.store.keep("charge", seller, charge, now)
        elif event_type.startswith("cancelProductOrder"):
            cancel = await call(
                http, "GET", f"{base}{ORDERING}/cancelProductOrder/{resource_id}", self.identity, params=scope
            )
            self.store.keep("cancelProductOrder", seller, cancel, now)
        elif event_type.startswith("modifyProductOrderItem"):
            return  # delivery-date changes carry no state the agent keeps
        else:
            order = await call(http, "GET", f"{base}{ORDERING}/productOrder/{resource_id}", self.identity, params=scope)
            self.store.keep("productOrder", seller, order, now)
            for item in order.get("productOrderItem", []):
                product_id = (item.get("product") or {}).get("id")
                if product_id and item.get("state") == "completed":
                    product = await call(
                        http, "GET", f"{base}{INVENTORY}/product/{product_id}", self.identity, params=scope
                    )
                    self.store.keep("product", seller, product, now)
        log.info("event handled", extra={"event_type": event_type, "resource_id": resource_id})

    # --- verification ----------------------------------------------------------------------------------------

    async def _verify_loop(self) -> None:
        while True:
            await self.verify_once()
            await asyncio.sleep(self.config.verify_every_seconds)

    async def verify_once(self) -> None:
        async with self._verifying:  # the loop and /agent/verify never run two rounds at once
            for seller in self.config.sellers:
                self._context(seller)
                await self._verify_seller(seller)
            self.verify_rounds += 1

    async def _verify_seller(self, seller: str) -> None:
        verifier = self.verifiers[seller]
        try:
            latest = await verifier.client.latest_checkpoint()
            if latest is None or int(latest["treeSize"]) == self.verified_sizes.get(seller):
                return  # nothing new since the last round
            report = await verifier.run()
            # Orders and products are the states this buyer relies on; its copies must be in the log.
            tracked = self.store.documents(seller, ("productOrder", "product"))
            await self._check_copies(verifier.client, tracked, report)
        except VerificationFailed as exc:
            problems = exc.report.problems
            if all("cannot reach the server" in problem for problem in problems):
                log.warning("server unreachable for verification", extra={"error": problems[0]})
            else:
                self._alarm(seller, "; ".join(problems))
            return
        except VerificationError as exc:
            self._alarm(seller, str(exc))
            return
        except ServerError as exc:
            if exc.status in (None, 409):  # unreachable, or a checkpoint cut while we cosigned: next round
                log.warning("verification round not finished", extra={"error": str(exc)})
                return
            self._alarm(seller, f"the server refused a verification step: {exc}")
            return
        self.verified_sizes[seller] = report.tree_size
        if report.cosigned:
            self.store.cosigned(seller, report.tree_size, asyncio.get_running_loop().time())
        log.info("checkpoint verified", extra={"tree_size": report.tree_size, "cosigned": report.cosigned})

    async def _check_copies(
        self, client: SonataClient, tracked: dict[tuple[str, str], dict[str, Any]], report: Report
    ) -> None:
        """Each copy the agent keeps must be a logged state, proven in the verified checkpoint when inside it.

        A copy may be older or newer than the checkpoint: what must hold is that the state the buyer was shown is
        one the log recorded (a row changed without its leaf is caught), and when that leaf is inside the
        checkpoint, that the checkpoint includes it.
        """
        for (resource_type, resource_id), document in tracked.items():
            expected = state_hash(document).hex()
            matching = None
            async for item in client.leaves(resource_type=resource_type, resource_id=resource_id):
                leaf = parse_leaf(item)
                if leaf.state_hash == expected:
                    matching = leaf
            if matching is None:
                raise VerificationError(
                    f"{resource_type} {resource_id}: the copy the server sent this buyer is in none of its logged "
                    "states (a row changed without its leaf)"
                )
            if matching.index < report.tree_size:
                answer = await client.inclusion_proof_at(matching.index, report.tree_size)
                proof = decode_proof(answer.get("proof"), f"inclusion proof of {matching.label}")
                verify_inclusion(matching.hash, matching.index, report.tree_size, proof, report.root_hash)
            self.checked_copies += 1

    @staticmethod
    def _close_verifier(verifier: Verifier) -> None:
        verifier.store.close()
        if verifier.ledger is not None:
            verifier.ledger.close()

    def _alarm(self, seller: str, message: str) -> None:
        log.error("ALARM: divergence", extra={"detail": message, "seller": seller})
        self.store.alarm(seller, message, asyncio.get_running_loop().time())

    # --- lifecycle -------------------------------------------------------------------------------------------

    async def subscribe(self, http: aiohttp.ClientSession) -> None:
        for seller in self.config.sellers:
            self._context(seller)
            for api in (ORDERING, BILLING):
                params = self._scope(seller) if api == ORDERING else {}
                try:
                    hub = await call(
                        http,
                        "POST",
                        f"{self.config.server_url}{api}/hub",
                        self.identity,
                        params=params,
                        json_body={"callback": self.callback},
                    )
                except ApiError as exc:
                    if api == BILLING and exc.status == 400 and len(self.config.sellers) > 1:
                        # The bill hub has no sellerId parameter in MEF's spec: one subscription per server.
                        hub = await call(
                            http,
                            "POST",
                            f"{self.config.server_url}{api}/hub",
                            self.identity,
                            params=self._scope(seller),
                            json_body={"callback": self.callback},
                        )
                    else:
                        raise
                self.hubs.append(f"{api}/hub/{hub['id']}")
            log.info("subscribed to the seller's hubs", extra={"callback": self.callback})

    async def status(self, _request: web.Request) -> web.Response:
        document = self.store.status() | {
            "party": self.config.party_id,
            "verifyRounds": self.verify_rounds,
            "checkedCopies": self.checked_copies,
            "verifiedSizes": dict(self.verified_sizes),
            "queued": self._refetch.qsize(),
        }
        return web.json_response(document)

    async def verify_now(self, _request: web.Request) -> web.Response:
        """Run one verification round at once (the sandbox calls it before its final summary)."""
        await self.verify_once()
        return await self.status(_request)

    def _verifier(self, seller: str, client: SonataClient) -> Verifier:
        store = TrustStore.open(Path(f"{self.config.database}.verifier-{seller}.sqlite"))
        return Verifier(
            client,
            self.key,
            store,
            ledger_backend=self.config.ledger_backend,
            ledger_options=self.config.ledger_options,
            options=VerifierOptions(cosign=True, anchor_wait_seconds=60.0),
        )

    async def run(self, stop: asyncio.Event) -> None:
        app = web.Application()
        app.router.add_post(ORDER_LISTENER + "{event_type}", self.listen)
        app.router.add_post(BILL_LISTENER + "{event_type}", self.listen)
        app.router.add_get("/agent/status", self.status)
        app.router.add_post("/agent/verify", self.verify_now)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, LOOPBACK, self.config.port).start()
        async with contextlib.AsyncExitStack() as stack:
            http = await stack.enter_async_context(aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)))
            for seller in self.config.sellers:
                client = await stack.enter_async_context(
                    SonataClient(
                        self.config.server_url, self.config.token, buyer_id=self.config.party_id, seller_id=seller
                    )
                )
                self.verifiers[seller] = self._verifier(seller, client)
                stack.callback(self._close_verifier, self.verifiers[seller])
            await self.subscribe(http)
            tasks = [asyncio.create_task(self._fetch_loop(http)), asyncio.create_task(self._verify_loop())]
            log.info("buyer agent ready", extra={"port": self.config.port, "sellers": ",".join(self.config.sellers)})
            await stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for hub in self.hubs:  # leave the seller's hub clean; a dead callback would only collect retries
                with contextlib.suppress(ApiError, aiohttp.ClientError):
                    await call(http, "DELETE", self.config.server_url + hub, self.identity, expect=(204, 404))
        await runner.cleanup()
        log.info("buyer agent stopped", extra={"summary": json.dumps(self.store.status())})


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m sonata_dlt.sandbox.buyer_agent CONFIG.json", file=sys.stderr)
        return 2
    config = AgentConfig.load(Path(args[0]))
    configure_logging("kv", "INFO")
    party_var.set(config.party_id)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await BuyerAgent(config).run(stop)

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
