"""Group commit in a writer process: order creates are committed beside the event loop, on another core.

The server is one Python process, and everything in it takes turns on one interpreter lock. With the group-commit
writer on a thread (``storage.group_commit``), every SQLite call of a group gives that lock up and must then win it
back from the busy event loop, which keeps it for up to the interpreter's switch interval (5 ms) at a time.
Measured under the create-order benchmark: a group of 15 creates took 9.5 ms to commit for 2.4 ms of work, and the
event loop sat idle a quarter of the time with every request waiting on the writer. A writer process has its own
interpreter: the event loop validates and answers requests while the writer commits the previous group::

    event loop ──(one message per loop turn, or per 8 jobs of a long one)──▶ writer process: commit_group(jobs)
               ◀──────────(one message per group: each job's result or error)──────────┘

A job is a module-level function and its arguments, run as ``function(runtime, *args, session)`` in the writer's
own ``Runtime`` on the same database, in the same kind of group transaction as on the thread: what commits
together, and that a 201 is only sent after its commit, do not change. Functions travel by name (pickle), so only
importable functions can be jobs; arguments and results must pickle (errors of the ``ApiError`` family do).

If the writer process dies, the requests it held fail with 503 (their outcome unknown: a create may have committed
just before), and later jobs are committed on the server's own writer thread (``Runtime.run_grouped``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import itertools
import logging
import multiprocessing
import os
import pickle
import signal
import struct
from collections.abc import Callable
from functools import partial
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from sonata_dlt.errors import ApiError, ConfigurationError, ServiceUnavailable
from sonata_dlt.logs import configure_logging, request_id_var
from sonata_dlt.settings import Settings
from sonata_dlt.startup.wiring import writer_runtime
from sonata_dlt.storage.group_commit import MAX_GROUP, Job, commit_group

T = TypeVar("T")
log = logging.getLogger("sonata_dlt.writer")

READY = "ready"
START_TIMEOUT = 120.0  # seconds for the writer process to import and open its database
STOP_TIMEOUT = 30.0  # seconds to commit what it holds and exit, before it is terminated
# A long loop turn hands its jobs over in parts: the writer commits the first ones while the loop still
# validates the rest, instead of both taking turns with a whole turn's worth (measured, in noisy runs: ~10 % more
# creates/s than one hand-over per turn; 4 per message was no better than 8).
HAND_OVER_EVERY = 8
PIPE_BYTES = 1 << 20  # a loop turn's jobs fit in the pipe, so handing them over does not wait for the writer

# (job number, function, arguments, request id): what the server sends for each job.
Entry = tuple[int, Callable[..., Any], tuple[Any, ...], str | None]


class WriterProcess:
    """The server's side of the writer process: starts it, hands it jobs, resolves the requests awaiting them.

    Bound to the event loop of its first ``run``; ``close`` commits what was handed over and stops the process."""

    def __init__(self, settings: Settings) -> None:
        spawn = multiprocessing.get_context("spawn")  # never fork a process that runs threads
        jobs_reader, self._jobs = spawn.Pipe(duplex=False)
        self._results, results_writer = spawn.Pipe(duplex=False)
        _widen_pipe(self._jobs)
        _widen_pipe(results_writer)
        self._process = spawn.Process(
            target=serve_writer,
            args=(settings.model_dump_json(), jobs_reader, results_writer),
            name="sonata-writer",
            daemon=True,
        )
        self._process.start()
        jobs_reader.close()
        results_writer.close()
        self._frames = _Frames(self._results.fileno())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._turn: list[Entry] = []
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._numbers = itertools.count()
        self.alive = False
        status = self._results.recv_bytes() if self._results.poll(START_TIMEOUT) else pickle.dumps("no answer")
        if pickle.loads(status) != READY:  # noqa: S301 - our own child process, over an anonymous pipe
            self._process.kill()
            self._jobs.close()
            self._results.close()
            raise ConfigurationError(f"the writer process did not start: {pickle.loads(status)}")  # noqa: S301
        # Read on the event loop, as it arrives (_Frames): never wait there for the rest of a message.
        os.set_blocking(self._results.fileno(), False)
        self.alive = True

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(runtime, *args, session)`` in the writer's next group transaction; its result once committed."""
        if not self.alive:
            raise ServiceUnavailable("the writer process has stopped; nothing was changed")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            loop.add_reader(self._results.fileno(), self._receive)
        elif loop is not self._loop:
            raise RuntimeError("a writer process serves the one event loop that first used it")
        number = next(self._numbers)
        waiter: asyncio.Future[T] = loop.create_future()
        self._waiting[number] = waiter
        if not self._turn:
            loop.call_soon(self._hand_over)  # after every task ready in this turn has added its job
        self._turn.append((number, function, args, request_id_var.get()))
        if len(self._turn) >= HAND_OVER_EVERY:
            self._hand_over()
        return await waiter

    def _hand_over(self) -> None:
        turn, self._turn = self._turn, []
        if turn:
            self._send(turn)

    def _send(self, turn: list[Entry]) -> None:
        try:
            message = pickle.dumps(turn, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # an argument that does not pickle: a bug in the caller, reported to it
            self._fail(turn, exc)
            return
        try:
            self._jobs.send_bytes(message)
        except (OSError, ValueError):  # the writer is gone (broken pipe) or closed
            self._fail(turn, ServiceUnavailable("the writer process has stopped; nothing was changed"))
            self._lost()

    def _receive(self) -> None:
        if self._read_answers():  # end of file, or an answer we cannot read: either way the writer is lost
            self._lost()

    def _read_answers(self) -> bool:
        """Settle the requests whose answers have arrived; whether the writer's end is closed (or unreadable)."""
        try:
            messages, ended = self._frames.read_available()
            for message in messages:
                self._settle(pickle.loads(message))  # noqa: S301 - our own child process
        except Exception:
            log.exception("unreadable answer from the writer process")
            return True
        return ended

    def _settle(self, outcomes: list[tuple[int, bool, Any]]) -> None:
        for number, succeeded, value in outcomes:
            waiter = self._waiting.pop(number, None)
            if waiter is None or waiter.done():  # a request whose client went away
                continue
            if succeeded:
                waiter.set_result(value)
            else:
                waiter.set_exception(value)

    def _fail(self, entries: list[Entry], error: BaseException) -> None:
        for number, *_ in entries:
            waiter = self._waiting.pop(number, None)
            if waiter is not None and not waiter.done():
                waiter.set_exception(error)

    def _lost(self) -> None:
        if not self.alive:
            return
        self.alive = False
        if self._loop is not None:
            self._loop.remove_reader(self._results.fileno())
        log.error("the writer process stopped; creates go to the writer thread", extra={"pid": self._process.pid})
        unsent, self._turn = self._turn, []
        self._fail(unsent, ServiceUnavailable("the writer process has stopped; nothing was changed"))
        self._fail_waiting()

    def _fail_waiting(self) -> None:
        error = ServiceUnavailable(
            "the writer process stopped while committing this request; it may or may not have been stored"
        )
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(error)
        self._waiting.clear()

    def close(self) -> None:
        """Commit what was handed over, answer its requests, then stop the process (on the event loop's thread)."""
        if self.alive:
            self._hand_over()
        self.alive = False
        with contextlib.suppress(OSError, ValueError):
            self._jobs.send_bytes(pickle.dumps(None))
        self._process.join(timeout=STOP_TIMEOUT)
        if self._process.is_alive():
            log.error("the writer process did not stop in time; terminating it")
            self._process.terminate()
            self._process.join(timeout=STOP_TIMEOUT)
        if self._loop is not None:
            self._loop.remove_reader(self._results.fileno())
        self._read_answers()  # what it answered while stopping
        self._fail_waiting()
        self._jobs.close()
        self._results.close()


def serve_writer(settings_json: str, jobs: Connection, results: Connection) -> None:
    """The writer process: commit each group of jobs it receives and send back their outcomes, until told to stop
    (``None``) or until the server is gone."""
    # Ctrl-C reaches the whole process group; the server stops the writer itself, after the requests it holds.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    settings = Settings.model_validate_json(settings_json)
    configure_logging(settings.log_format, settings.log_level)
    try:
        runtime = writer_runtime(settings)
        with runtime.db.read() as session:
            session.connection()  # a database it cannot reach fails the start, not the first create
    except Exception as exc:
        results.send_bytes(pickle.dumps(f"{type(exc).__name__}: {exc}"))
        return
    # As the server does (api/app.py): what is built by now lives as long as the process; frozen, the collector
    # never walks it again, and a full collection no longer stalls a group (and every create waiting on it).
    gc.freeze()
    results.send_bytes(pickle.dumps(READY))
    try:
        stop = False
        while not stop:
            entries, stop = _receive_jobs(jobs)
            for start in range(0, len(entries), MAX_GROUP):
                chunk = entries[start : start + MAX_GROUP]
                group = [
                    Job(partial(function, runtime, *args), _job_context(request_id))
                    for _, function, args, request_id in chunk
                ]
                commit_group(runtime.db.write, group)
                results.send_bytes(_outcomes(chunk, group))
    finally:
        runtime.close()


def _receive_jobs(jobs: Connection) -> tuple[list[Entry], bool]:
    """Every job the server has handed over so far (waiting for the first); and whether it asked to stop."""
    entries: list[Entry] = []
    try:
        batch = pickle.loads(jobs.recv_bytes())  # noqa: S301 - from the server that started us
        while batch is not None:
            entries.extend(batch)
            if len(entries) >= MAX_GROUP or not jobs.poll():
                return entries, False
            batch = pickle.loads(jobs.recv_bytes())  # noqa: S301
    except EOFError:  # the server has gone without a word: nobody is left to answer
        pass
    return entries, True


def _job_context(request_id: str | None) -> contextvars.Context:
    context = contextvars.copy_context()
    context.run(request_id_var.set, request_id)  # the job's log lines carry its request's id
    return context


def _outcomes(chunk: list[Entry], group: list[Job]) -> bytes:
    outcomes: list[tuple[int, bool, Any]] = []
    for (number, *_), job in zip(chunk, group, strict=True):
        if job.error is None:
            outcomes.append((number, True, job.result))
        elif isinstance(job.error, ApiError):
            outcomes.append((number, False, job.error))
        else:  # a bug: logged here with its traceback, answered as a 500 that reveals nothing
            log.error("write job failed", exc_info=job.error)
            outcomes.append((number, False, RuntimeError("the write job failed")))
    return pickle.dumps(outcomes, protocol=pickle.HIGHEST_PROTOCOL)


class _Frames:
    """The messages ``Connection.send_bytes`` wrote (a 4-byte big-endian size, then the bytes), read as they arrive
    from a non-blocking descriptor. ``Connection.recv_bytes`` would wait on the event loop for the rest of a message
    larger than what has arrived (or fail half-read: some event loops make the descriptors they watch
    non-blocking)."""

    def __init__(self, descriptor: int) -> None:
        self._descriptor = descriptor
        self._buffer = bytearray()

    def read_available(self) -> tuple[list[bytes], bool]:
        """The complete messages that have arrived, and whether the writing end has closed (the last messages
        before it closed are still returned)."""
        ended = False
        while True:
            try:
                chunk = os.read(self._descriptor, 1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                ended = True
                break
            self._buffer += chunk
        messages: list[bytes] = []
        start = 0
        while len(self._buffer) - start >= 4:
            (size,) = struct.unpack_from("!i", self._buffer, start)
            if size < 0:  # the 8-byte form of messages over 2 GiB: never sent here
                raise OSError("unexpected message size from the writer process")
            if len(self._buffer) - start - 4 < size:
                break
            messages.append(bytes(self._buffer[start + 4 : start + 4 + size]))
            start += 4 + size
        del self._buffer[:start]
        return messages, ended


def _widen_pipe(connection: Connection) -> None:
    try:
        import fcntl

        fcntl.fcntl(connection.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):  # not Linux, or above the system's limit: the default will do
        pass
