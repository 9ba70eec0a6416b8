"""The writer process commits order creates beside the server's event loop (``startup.writer_process``)."""

from __future__ import annotations

import os
import pickle
import struct
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sonata_dlt.core.runtime import WRITER, Runtime
from sonata_dlt.errors import Conflict, Issue, Unprocessable
from sonata_dlt.settings import Settings
from sonata_dlt.startup.wiring import start_runtime
from sonata_dlt.startup.writer_process import WriterProcess, _Frames
from tests.ordering.conftest import BASE, order_body, ordering_only


@pytest.fixture
def process_app(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Runtime, Any]]:
    from sonata_dlt.api.app import create_app

    ordering_only(monkeypatch)
    settings = make_settings(group_commit="process", accept_unknown_product_types=True)
    runtime = start_runtime(settings)
    try:
        yield runtime, create_app(settings, runtime, run_workers=False)
    finally:
        runtime.close()


def _writer(runtime: Runtime) -> WriterProcess:
    writer = runtime.components[WRITER]
    assert isinstance(writer, WriterProcess)
    return writer


def _leaf_count(runtime: Runtime) -> int:
    with runtime.db.read() as session:
        return int(session.connection().exec_driver_sql("SELECT count(*) FROM log_leaf").scalar_one())


def test_concurrent_creates_commit_in_the_writer_process(
    process_app: tuple[Runtime, Any], buyer_headers: dict[str, str]
) -> None:
    runtime, app = process_app
    with app.test_client() as client:
        writer = _writer(runtime)

        def create(number: int) -> Any:
            return client.post(
                f"{BASE}/productOrder", json=order_body(externalId=f"EXT-{number}"), headers=buyer_headers
            )

        with ThreadPoolExecutor(max_workers=8) as pool:
            responses = list(pool.map(create, range(24)))
        assert [response.status_code for response in responses] == [201] * 24, responses[0].text
        for response in responses:
            fetched = client.get(f"{BASE}/productOrder/{response.json()['id']}", headers=buyer_headers)
            assert fetched.json() == response.json()
        assert sorted(response.json()["externalId"] for response in responses) == sorted(f"EXT-{n}" for n in range(24))
        assert _leaf_count(runtime) == 24
        assert writer.alive
        assert runtime.db._group is None, "a create went to the server's own writer thread"
    # Leaving the client shuts the app down: the process commits what it holds and exits.
    assert WRITER not in runtime.components
    assert writer._process.exitcode == 0


def test_a_refused_create_comes_back_with_its_own_error(
    process_app: tuple[Runtime, Any], buyer_headers: dict[str, str]
) -> None:
    runtime, app = process_app
    # A business rule the JSON Schema cannot state, checked in the job: the order names its productOrderContact.
    body = order_body(
        relatedContactInformation=[{"emailAddress": "a@b.example", "name": "A", "number": "1", "role": "other"}]
    )
    with app.test_client() as client:
        refused = client.post(f"{BASE}/productOrder", json=body, headers=buyer_headers)
        accepted = client.post(f"{BASE}/productOrder", json=order_body(), headers=buyer_headers)
        assert _writer(runtime).alive
    assert refused.status_code == 422, refused.text
    assert refused.json()[0]["propertyPath"] == "/relatedContactInformation"
    assert accepted.status_code == 201
    assert _leaf_count(runtime) == 1


def test_when_the_writer_process_dies_creates_go_to_the_writer_thread(
    process_app: tuple[Runtime, Any], buyer_headers: dict[str, str]
) -> None:
    runtime, app = process_app
    with app.test_client() as client:
        writer = _writer(runtime)
        writer._process.kill()
        writer._process.join(timeout=30)
        # The server learns of it by the closed pipe: this first create either finds it out (503, nothing changed)
        # or is already taken by the thread; from then on creates commit on the thread.
        first = client.post(f"{BASE}/productOrder", json=order_body(externalId="A"), headers=buyer_headers)
        assert first.status_code in (201, 503), first.text
        if first.status_code == 503:
            assert first.json()["code"] == "internalError"
        second = client.post(f"{BASE}/productOrder", json=order_body(externalId="B"), headers=buyer_headers)
        assert second.status_code == 201, second.text
        assert not writer.alive
        assert runtime.db._group is not None
    assert _leaf_count(runtime) == (2 if first.status_code == 201 else 1)


def test_a_process_that_cannot_open_the_database_refuses_to_start(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none", group_commit="process")
    with pytest.raises(Exception, match="the writer process did not start"):
        WriterProcess(settings)


def test_answers_are_read_as_they_arrive() -> None:
    reader, writer = os.pipe()
    os.set_blocking(reader, False)
    frames = _Frames(reader)
    stream = struct.pack("!i", 5) + b"hello" + struct.pack("!i", 3) + b"abc"
    try:
        assert frames.read_available() == ([], False)
        os.write(writer, stream[:6])  # a size and one byte of the first message
        assert frames.read_available() == ([], False)
        os.write(writer, stream[6:])
        assert frames.read_available() == ([b"hello", b"abc"], False)
        os.write(writer, stream[:9])  # a whole message just before the end: still delivered
    finally:
        os.close(writer)
    assert frames.read_available() == ([b"hello"], True)
    os.close(reader)


def test_api_errors_cross_the_process_boundary_intact() -> None:
    refused = pickle.loads(pickle.dumps(Unprocessable([Issue("invalidValue", "bad note", "/note/0")])))  # noqa: S301
    assert isinstance(refused, Unprocessable)
    assert (refused.status, refused.code, refused.issues) == (
        422,
        "invalidValue",
        [Issue("invalidValue", "bad note", "/note/0")],
    )
    conflict = pickle.loads(pickle.dumps(Conflict("terminal", code="conflict", message="m")))  # noqa: S301
    assert (type(conflict), conflict.reason, conflict.code, conflict.message, str(conflict)) == (
        Conflict,
        "terminal",
        "conflict",
        "m",
        "terminal",
    )


def test_no_thread_is_left_behind(process_app: tuple[Runtime, Any]) -> None:
    _, app = process_app
    before = {thread.name for thread in threading.enumerate()}
    with app.test_client():
        pass
    assert {thread.name for thread in threading.enumerate()} - before <= {"AnyIO worker thread"}
