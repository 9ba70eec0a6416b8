"""The notification delivery worker against real aiohttp listeners on 127.0.0.1.

Assertions are about what arrived, in which order, and what the outbox rows say; never about how long it took.
``wait_for`` bounds are failsafes so a broken worker fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import update as sa_update
from sqlmodel import select

from sonata_dlt.core.runtime import Runtime
from sonata_dlt.notify.delivery import (
    PURGE_BATCH,
    DeliveryWorker,
    backoff_seconds,
    claim,
    delivery_worker,
    forget_subscription,
    purge_finished,
    settle,
)
from sonata_dlt.notify.outbox import PRODUCT_ORDERING, enqueue
from sonata_dlt.settings import NotifyConfig, Settings
from sonata_dlt.startup.wiring import start_runtime
from sonata_dlt.storage.hub import HubSubscription, OutboxEvent
from sonata_dlt.storage.types import utcnow

FAILSAFE = 30.0
LISTENER_PATH = "/mefApi/sonata/productOrderingNotification/v10/listener/"

Behaviour = Callable[["Received"], Awaitable[int]]


@dataclass
class Received:
    path: str
    content_type: str
    body: dict[str, Any]


@dataclass
class Listener:
    """A buyer-side listener: records every POST and answers with what ``behaviour`` says."""

    behaviour: Behaviour
    requests: list[Received] = field(default_factory=list)
    accepted: list[Received] = field(default_factory=list)
    base_url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        received = Received(request.path, request.headers.get("Content-Type", ""), await request.json())
        self.requests.append(received)
        status = await self.behaviour(received)
        if 200 <= status < 300:
            self.accepted.append(received)
        return web.Response(status=status)

    def stream(self, order_id: str) -> list[str]:
        """Event ids accepted for one order, in arrival order."""
        return [r.body["eventId"] for r in self.accepted if r.body["event"]["id"] == order_id]


async def always(status: int) -> Behaviour:
    async def behaviour(_received: Received) -> int:
        return status

    return behaviour


@contextlib.asynccontextmanager
async def listening(behaviour: Behaviour) -> AsyncIterator[Listener]:
    listener = Listener(behaviour)
    app = web.Application()
    app.router.add_post("/{tail:.*}", listener.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    listener.base_url = f"http://127.0.0.1:{port}/buyer"
    try:
        yield listener
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def running(worker: DeliveryWorker) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(worker.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def eventually(predicate: Callable[[], bool], what: str) -> None:
    async def poll() -> None:
        # Polling on purpose: the state lives in the database and in other tasks, not behind one Event.
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    try:
        async with asyncio.timeout(FAILSAFE):
            await poll()
    except TimeoutError:
        pytest.fail(f"never happened: {what}")


def fast_notify(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "first_backoff_seconds": 0.01,
        "max_backoff_seconds": 0.05,
        "request_timeout_seconds": 5.0,
        "max_attempts": 5,
        "concurrency": 4,
    }
    values.update(overrides)
    return values


@pytest.fixture
def make_runtime(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., Runtime]]:
    started: list[Runtime] = []

    def factory(**notify: Any) -> Runtime:
        runtime = start_runtime(make_settings(notify=fast_notify(**notify)))
        started.append(runtime)
        return runtime

    yield factory
    for runtime in started:
        runtime.close()


def subscribe(runtime: Runtime, callback: str, event_types: list[str] | None = None) -> str:
    bilateral = runtime.parties.bilaterals[0]
    subscription_id = uuid.uuid4().hex
    with runtime.db.write() as session:
        session.add(
            HubSubscription(
                id=subscription_id,
                bilateral_id=bilateral.id,
                api=PRODUCT_ORDERING.name,
                callback=callback,
                event_types=event_types or [],
            )
        )
    return subscription_id


def notify(runtime: Runtime, order_id: str, event_type: str = "productOrderStateChangeEvent") -> int:
    """Queue one event about ``order_id`` the way a service does, in a write transaction."""
    bilateral = runtime.parties.bilaterals[0]
    with runtime.db.write() as session:
        return enqueue(
            session,
            bilateral_id=bilateral.id,
            buyer_id=bilateral.buyer_id,
            seller_id=bilateral.seller_id,
            api=PRODUCT_ORDERING,
            event_type=event_type,
            event={"id": order_id, "href": f"/productOrder/{order_id}"},
            stream_key=f"productOrder/{order_id}",
        )


def outbox(runtime: Runtime) -> list[OutboxEvent]:
    with runtime.db.read() as session:
        return list(session.exec(select(OutboxEvent).order_by(OutboxEvent.id)).all())  # type: ignore[arg-type]


def queued_ids(runtime: Runtime, order_id: str) -> list[str]:
    return [row.payload["eventId"] for row in outbox(runtime) if row.payload["event"]["id"] == order_id]


async def test_delivers_the_payload_to_the_listener_url(make_runtime: Callable[..., Runtime]) -> None:
    runtime = make_runtime()
    async with listening(await always(204)) as listener:
        subscribe(runtime, listener.base_url)
        assert notify(runtime, "PO-1") == 1
        async with running(DeliveryWorker(runtime.db, runtime.settings.notify, poll_seconds=0.02)):
            await eventually(lambda: all(row.delivered_at for row in outbox(runtime)), "the row is delivered")

    [row] = outbox(runtime)
    [received] = listener.requests
    assert received.path == "/buyer" + LISTENER_PATH + "productOrderStateChangeEvent"
    assert received.content_type == "application/json;charset=utf-8"
    assert received.body == row.payload
    assert received.body["event"] == {"id": "PO-1", "href": "/productOrder/PO-1"}
    assert row.attempts == 1 and row.abandoned_at is None and row.last_error is None


async def test_only_subscribed_event_types_are_queued(make_runtime: Callable[..., Runtime]) -> None:
    runtime = make_runtime()
    subscribe(runtime, "http://127.0.0.1:9/a", ["productOrderItemStateChangeEvent"])
    subscribe(runtime, "http://127.0.0.1:9/b")
    assert notify(runtime, "PO-1", "productOrderStateChangeEvent") == 1
    assert notify(runtime, "PO-1", "productOrderItemStateChangeEvent") == 2


async def test_order_per_stream_holds_under_retries(make_runtime: Callable[..., Runtime]) -> None:
    runtime = make_runtime(max_attempts=20)
    failures_left = {"PO-A": 3, "PO-B": 1}

    async def flaky(received: Received) -> int:
        order = received.body["event"]["id"]
        if failures_left.get(order, 0) > 0:
            failures_left[order] -= 1
            return 503
        return 204

    async with listening(flaky) as listener:
        subscribe(runtime, listener.base_url)
        for _ in range(4):
            for order in ("PO-A", "PO-B", "PO-C"):
                notify(runtime, order)
        async with running(DeliveryWorker(runtime.db, runtime.settings.notify, poll_seconds=0.02)):
            await eventually(lambda: len(listener.accepted) == 12, "all 12 events are accepted")

    for order in ("PO-A", "PO-B", "PO-C"):
        assert listener.stream(order) == queued_ids(runtime, order)
        # A later event of a stream is never even attempted before the earlier one was accepted.
        attempted = [r.body["eventId"] for r in listener.requests if r.body["event"]["id"] == order]
        assert [event_id for i, event_id in enumerate(attempted) if i == 0 or attempted[i - 1] != event_id] == (
            queued_ids(runtime, order)
        )
    first_of_a = outbox(runtime)[0]
    assert first_of_a.attempts == 4 and first_of_a.last_error and "503" in first_of_a.last_error


async def test_backs_off_then_succeeds(make_runtime: Callable[..., Runtime]) -> None:
    runtime = make_runtime()
    answers = [500, 502, 204]

    async def recovering(_received: Received) -> int:
        return answers.pop(0)

    async with listening(recovering) as listener:
        subscribe(runtime, listener.base_url)
        notify(runtime, "PO-1")
        async with running(DeliveryWorker(runtime.db, runtime.settings.notify, poll_seconds=0.02)):
            await eventually(lambda: all(row.delivered_at for row in outbox(runtime)), "the row is delivered")

    [row] = outbox(runtime)
    assert row.attempts == 3 and row.abandoned_at is None
    assert len(listener.requests) == 3 and len({r.body["eventId"] for r in listener.requests}) == 1


def test_a_failed_attempt_schedules_the_next_within_the_backoff_bounds(make_runtime: Callable[..., Runtime]) -> None:
    runtime = make_runtime(first_backoff_seconds=60.0, max_backoff_seconds=600.0, max_attempts=10)
    subscribe(runtime, "http://127.0.0.1:9/buyer")
    notify(runtime, "PO-1")
    config = runtime.settings.notify

    for attempt, (low, high) in enumerate([(60, 60), (60, 120), (120, 240), (240, 480), (300, 600)], start=1):
        [item] = claim(runtime.db, limit=5, lease_seconds=3600, busy={}, per_listener=5)
        before = utcnow()
        assert settle(runtime.db, item, "HTTP 500: boom", config) == "retry"
        [row] = outbox(runtime)
        assert row.attempts == attempt
        wait = (row.next_attempt_at - before).total_seconds()
        assert low - 1 <= wait <= high + 1, (attempt, wait)
        # Not due yet: a claim now finds nothing. Make it due again for the next round.
        assert claim(runtime.db, limit=5, lease_seconds=3600, busy={}, per_listener=5) == []
        with runtime.db.write() as session:
            session.execute(OutboxEvent.__table__.update().values(next_attempt_at=utcnow()))  # type: ignore[attr-defined]


def test_a_lease_left_by_a_dead_worker_expires(make_runtime: Callable[..., Runtime]) -> None:
    runtime = make_runtime()
    subscribe(runtime, "http://127.0.0.1:9/buyer")
    notify(runtime, "PO-1")
    [leased] = claim(runtime.db, limit=5, lease_seconds=3600, busy={}, per_listener=5)
    assert claim(runtime.db, limit=5, lease_seconds=3600, busy={}, per_listener=5) == []  # held by its lease
    with runtime.db.write() as session:  # the lease runs out (the worker died without settling)
        session.execute(OutboxEvent.__table__.update().values(next_attempt_at=utcnow()))  # type: ignore[attr-defined]
    [again] = claim(runtime.db, limit=5, lease_seconds=3600, busy={}, per_listener=5)
    assert again.id == leased.id and again.attempts == 0


def test_backoff_doubles_from_the_first_and_is_capped() -> None:
    config = NotifyConfig(first_backoff_seconds=0.5, max_backoff_seconds=10.0)
    assert [backoff_seconds(n, config, lambda: 1.0) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert [backoff_seconds(n, config, lambda: 0.0) for n in range(1, 8)] == [0.5, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


async def test_abandons_after_max_attempts_and_moves_on(
    make_runtime: Callable[..., Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    runtime = make_runtime(max_attempts=3)

    async def refuses_first_event(received: Received) -> int:
        return 500 if received.body["eventId"] == first_id else 204

    async with listening(refuses_first_event) as listener:
        subscribe(runtime, listener.base_url)
        notify(runtime, "PO-1")
        notify(runtime, "PO-1")
        first_id, second_id = queued_ids(runtime, "PO-1")
        with caplog.at_level(logging.WARNING, logger="sonata_dlt.notify"):
            async with running(DeliveryWorker(runtime.db, runtime.settings.notify, poll_seconds=0.02)):
                await eventually(lambda: outbox(runtime)[1].delivered_at is not None, "the second event is delivered")

    first, second = outbox(runtime)
    assert first.abandoned_at is not None and first.delivered_at is None and first.attempts == 3
    assert [r.body["eventId"] for r in listener.requests] == [first_id, first_id, first_id, second_id]
    assert second.attempts == 1
    assert any(record.getMessage() == "notification abandoned" for record in caplog.records)


async def test_survives_a_restart(make_runtime: Callable[..., Runtime], make_settings: Callable[..., Settings]) -> None:
    first_runtime = make_runtime()
    gate = asyncio.Event()

    async def stalls_until_released(_received: Received) -> int:
        await gate.wait()
        return 204

    async with listening(stalls_until_released) as listener:
        subscribe(first_runtime, listener.base_url)
        notify(first_runtime, "PO-1")
        # The first worker takes the row and is stopped mid-delivery; stopping hands its lease back.
        first_worker = DeliveryWorker(first_runtime.db, first_runtime.settings.notify, poll_seconds=0.02)
        async with running(first_worker):
            await eventually(lambda: len(listener.requests) == 1, "the first worker is delivering")
        notify(first_runtime, "PO-1")  # written while no worker runs
        first_runtime.close()

        gate.set()
        second_runtime = make_runtime()
        async with running(DeliveryWorker(second_runtime.db, second_runtime.settings.notify, poll_seconds=0.02)):
            await eventually(lambda: all(r.delivered_at for r in outbox(second_runtime)), "both rows are delivered")

    # At least once: the stopped worker's request may also be answered, so compare first arrivals.
    assert list(dict.fromkeys(listener.stream("PO-1"))) == queued_ids(second_runtime, "PO-1")
    assert [(row.attempts, row.last_error) for row in outbox(second_runtime)] == [(1, None), (1, None)]


async def test_a_slow_or_dead_listener_holds_neither_writers_nor_other_listeners(
    make_runtime: Callable[..., Runtime],
) -> None:
    runtime = make_runtime(concurrency=8, max_attempts=1000, request_timeout_seconds=600.0)
    gate = asyncio.Event()

    async def stalls(_received: Received) -> int:
        await gate.wait()
        return 204

    async with listening(stalls) as slow, listening(await always(204)) as healthy:
        subscribe(runtime, slow.base_url)
        subscribe(runtime, "http://127.0.0.1:9/nobody-listens")  # discard port: connection refused
        subscribe(runtime, healthy.base_url)
        for number in range(6):
            notify(runtime, f"PO-{number}")
        async with running(DeliveryWorker(runtime.db, runtime.settings.notify, poll_seconds=0.02)):
            await eventually(lambda: len(slow.requests) == 2, "the slow listener holds its share of slots (8 / 4)")
            await eventually(lambda: len(healthy.accepted) == 6, "the healthy listener gets every event")
            # A writer (what the API does) commits while deliveries hang: the worker holds no transaction open.
            assert await asyncio.wait_for(asyncio.to_thread(notify, runtime, "PO-late"), FAILSAFE) == 3
            await eventually(lambda: len(healthy.accepted) == 7, "the late event reaches the healthy listener")
            assert len(slow.requests) == 2 and not slow.accepted
            gate.set()
            await eventually(lambda: len(slow.accepted) == 7, "the slow listener catches up once it answers")

    dead = [row for row in outbox(runtime) if "nobody-listens" in row.url]
    assert len(dead) == 7 and all(row.delivered_at is None and row.attempts >= 1 for row in dead)
    assert sorted(slow.stream(f"PO-{n}")[0] for n in range(6)) == sorted(
        queued_ids(runtime, f"PO-{n}")[0] for n in range(6)
    )


async def test_rows_of_a_deleted_subscription_are_dropped(make_runtime: Callable[..., Runtime]) -> None:
    runtime = make_runtime()
    async with listening(await always(204)) as listener:
        gone = subscribe(runtime, listener.base_url + "/gone")
        kept = subscribe(runtime, listener.base_url + "/kept")
        notify(runtime, "PO-1")
        with runtime.db.write() as session:
            assert forget_subscription(session, gone) == 1
            session.delete(session.get(HubSubscription, gone))
        async with running(DeliveryWorker(runtime.db, runtime.settings.notify, poll_seconds=0.02)):
            await eventually(lambda: all(row.delivered_at for row in outbox(runtime)), "the kept row is delivered")

    assert [row.subscription_id for row in outbox(runtime)] == [kept]
    assert [r.path.split(LISTENER_PATH)[0] for r in listener.requests] == ["/buyer/kept"]


async def test_two_workers_share_the_outbox_without_breaking_order(make_runtime: Callable[..., Runtime]) -> None:
    """Two server processes' workers on one database (PostgreSQL: SKIP LOCKED + lease; SQLite: BEGIN IMMEDIATE)."""
    runtime_a = make_runtime()
    runtime_b = make_runtime()
    async with listening(await always(204)) as listener:
        subscribe(runtime_a, listener.base_url)
        for _ in range(5):
            for order in ("PO-1", "PO-2", "PO-3", "PO-4"):
                notify(runtime_a, order)
        worker_a = DeliveryWorker(runtime_a.db, runtime_a.settings.notify, poll_seconds=0.01)
        worker_b = DeliveryWorker(runtime_b.db, runtime_b.settings.notify, poll_seconds=0.01)
        async with running(worker_a), running(worker_b):
            await eventually(lambda: all(row.delivered_at for row in outbox(runtime_a)), "every row is delivered")

    for order in ("PO-1", "PO-2", "PO-3", "PO-4"):
        assert listener.stream(order) == queued_ids(runtime_a, order)
    assert len(listener.requests) == 20  # each row was leased by exactly one worker


# connexion 3.3 imports a name jsonschema deprecates; that is connexion's to fix, not this test's concern.
@pytest.mark.filterwarnings("ignore:jsonschema.exceptions.RefResolutionError is deprecated:DeprecationWarning")
def test_the_worker_is_registered_with_the_app(make_runtime: Callable[..., Runtime]) -> None:
    from sonata_dlt.api.app import WORKER_FACTORIES

    assert "sonata_dlt.notify.delivery:delivery_worker" in WORKER_FACTORIES
    runtime = make_runtime(concurrency=12)
    worker = delivery_worker(runtime)
    assert worker.name == "notify-delivery" and worker.per_listener == 3 and worker.db is runtime.db


async def test_finished_rows_are_purged_after_the_retention_period(make_runtime: Callable[..., Runtime]) -> None:
    runtime = make_runtime(retention_days=1)
    subscribe(runtime, "http://127.0.0.1:9/never-called")
    for order_id in ("OLD-DELIVERED", "OLD-ABANDONED", "RECENT-DELIVERED", "PENDING"):
        notify(runtime, order_id)
    long_ago, recently = utcnow() - timedelta(days=2), utcnow() - timedelta(hours=1)
    finished = {"OLD-DELIVERED": "delivered_at", "OLD-ABANDONED": "abandoned_at", "RECENT-DELIVERED": "delivered_at"}
    with runtime.db.write() as session:
        for row in session.exec(select(OutboxEvent)).all():
            order_id = row.payload["event"]["id"]
            if order_id in finished:
                setattr(row, finished[order_id], long_ago if order_id.startswith("OLD") else recently)
            else:
                row.next_attempt_at = utcnow() + timedelta(days=1)  # not due: the worker leaves it alone
            session.add(row)

    async with running(DeliveryWorker(runtime.db, runtime.settings.notify, poll_seconds=0.02)):
        await eventually(lambda: len(outbox(runtime)) == 2, "the rows finished long ago are purged")
    assert sorted(row.payload["event"]["id"] for row in outbox(runtime)) == ["PENDING", "RECENT-DELIVERED"]


def test_purge_works_in_bounded_batches(make_runtime: Callable[..., Runtime]) -> None:
    runtime = make_runtime()
    subscribe(runtime, "http://127.0.0.1:9/never-called")
    count = PURGE_BATCH + 5
    for number in range(count):
        notify(runtime, f"PO-{number}")
    with runtime.db.write() as session:
        session.execute(sa_update(OutboxEvent).values(delivered_at=utcnow() - timedelta(days=30)))
    assert purge_finished(runtime.db, utcnow() - timedelta(days=7)) == count
    assert outbox(runtime) == []
