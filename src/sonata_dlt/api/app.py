"""The ASGI application: our specs mounted on connexion, with one error mapping and our middleware."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from connexion import AsyncApp
from connexion.middleware import MiddlewarePosition
from connexion.options import SwaggerUIOptions
from starlette.requests import Request
from starlette.responses import JSONResponse

from sonata_dlt.api import console, context
from sonata_dlt.api.errors import install_error_handlers
from sonata_dlt.api.middleware import AuthAndLimitsMiddleware, RequestLogMiddleware
from sonata_dlt.api.specs import ApiMount, TagResolver, base_path_of, connexion_spec, load_spec
from sonata_dlt.api.validation import SONATA_VALIDATOR_MAP
from sonata_dlt.core.runtime import WRITER, Runtime
from sonata_dlt.settings import Settings
from sonata_dlt.startup.wiring import start_runtime
from sonata_dlt.startup.writer_process import WriterProcess

log = logging.getLogger("sonata_dlt.app")

# Every API this server offers: the spec in openapi/ and the handler package under sonata_dlt.api.
MOUNTS: tuple[ApiMount, ...] = (
    ApiMount("productOrderManagement.api.yaml", "sonata.ordering"),
    ApiMount("productInventoryManagement.api.yaml", "sonata.inventory"),
    ApiMount("sellerFulfilment.api.yaml", "sonata.fulfilment"),
    ApiMount("customerBillManagement.api.yaml", "bilateral.customer_bill"),
    ApiMount("verifiableLog.api.yaml", "verifiable_log"),
    ApiMount("smartBilateral.api.yaml", "bilateral.smart_bilateral"),
)


class Worker(Protocol):
    """A background task of the server (notification delivery, charge timeouts, checkpoints, anchoring...)."""

    name: str

    async def run(self) -> None: ...


# Factories of background workers, as "module:function" taking the Runtime and returning a Worker or None
# (None when settings switch the worker off).
WORKER_FACTORIES: tuple[str, ...] = (
    "sonata_dlt.notify.delivery:delivery_worker",
    "sonata_dlt.verifiable_log.checkpoints:cutter_worker",
    "sonata_dlt.verifiable_log.anchoring:anchor_worker",
    "sonata_dlt.sonata.auto_fulfilment:auto_fulfilment_worker",
    "sonata_dlt.sonata.ordering.charges:charge_timeout_worker",
)


def _load_factory(path: str) -> Callable[[Runtime], Worker | None]:
    module_name, _, attribute = path.partition(":")
    factory: Callable[[Runtime], Worker | None] = getattr(importlib.import_module(module_name), attribute)
    return factory


def create_app(settings: Settings, runtime: Runtime | None = None, *, run_workers: bool = True) -> AsyncApp:
    runtime = runtime or start_runtime(settings)
    context.install_runtime(runtime)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        # Everything built so far (six specs, their validators, the ORM mappers) lives as long as the process. Left
        # to the collector, each full collection walks it all again: pauses of up to 200 ms under load, the p99 of
        # every request caught behind one. Frozen, it is never scanned (until shutdown, which unfreezes it).
        gc.freeze()
        writer = await _start_writer_process(runtime)
        tasks: list[asyncio.Task[None]] = []
        if run_workers:
            for path in WORKER_FACTORIES:
                worker = _load_factory(path)(runtime)
                if worker is not None:
                    tasks.append(asyncio.create_task(_supervise(worker), name=worker.name))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if writer is not None:
                runtime.components.pop(WRITER)
                writer.close()
            gc.unfreeze()

    app = AsyncApp(__name__, lifespan=lifespan)
    for mount in MOUNTS:
        app.add_api(
            connexion_spec(mount),
            base_path=base_path_of(load_spec(mount.spec_file)),
            name=mount.package,
            resolver=TagResolver(),
            strict_validation=True,
            validate_responses=False,
            validator_map=SONATA_VALIDATOR_MAP,
            swagger_ui_options=SwaggerUIOptions(swagger_ui=False, serve_spec=True),
        )
    install_error_handlers(app, MOUNTS)
    app.add_middleware(AuthAndLimitsMiddleware, position=MiddlewarePosition.BEFORE_VALIDATION)
    app.add_middleware(RequestLogMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION)

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    app.add_url_rule("/healthz", "healthz", healthz)
    console.mount(app)  # /console/static/ (public) and /console/api/whoami (behind the token)
    return app


def app_from_environment() -> AsyncApp:
    """uvicorn factory for ``serve --workers N``: each worker process builds its app from the handed-over settings."""
    from sonata_dlt.logs import configure_logging

    settings = Settings.from_environment()
    configure_logging(settings.log_format, settings.log_level)
    return create_app(settings)


async def _start_writer_process(runtime: Runtime) -> WriterProcess | None:
    """The writer process that commits order creates (``startup.writer_process``), unless settings ask for the
    thread."""
    if runtime.settings.group_commit != "process":
        return None
    writer = await asyncio.to_thread(WriterProcess, runtime.settings)  # imports and opens the database: seconds
    runtime.components[WRITER] = writer
    return writer


async def _supervise(worker: Worker) -> None:
    """Keep a worker alive: a crash is logged and the worker restarted after a pause, never silently lost."""
    while True:
        try:
            await worker.run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("worker crashed; restarting", extra={"worker": worker.name})
            await asyncio.sleep(1.0)
