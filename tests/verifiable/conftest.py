"""Fixtures for the verifiable log: a runtime on the test database and a helper that records changes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sonata_dlt.core.parties import BilateralRef
from sonata_dlt.core.runtime import Runtime
from sonata_dlt.settings import Settings
from sonata_dlt.verifiable_log.recording import Change, record_change

BASE = "/mefApi/sonata/verifiableLog/v1"


@pytest.fixture
def bilateral(runtime: Runtime) -> BilateralRef:
    return runtime.parties.bilaterals[0]


def append_changes(runtime: Runtime, bilateral: BilateralRef, count: int, *, resource: str = "order") -> None:
    """Record ``count`` changes of resources named ``resource-<n>``, one transaction each."""
    for number in range(count):
        with runtime.db.write() as session:
            record_change(
                session,
                bilateral.id,
                Change("productOrder", f"{resource}-{number}", 1, "created", {"id": f"{resource}-{number}"}),
                actor="buyer:BUYER-1",
            )


@pytest.fixture
def record(runtime: Runtime, bilateral: BilateralRef) -> Callable[..., None]:
    def factory(count: int, **kwargs: Any) -> None:
        append_changes(runtime, bilateral, count, **kwargs)

    return factory


@pytest.fixture
def api(settings: Settings, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A test client over an app that shares ``runtime`` (workers off; tests drive them).

    Only the Verifiable Log API is mounted, so these tests do not depend on the other APIs' handlers.
    """
    from sonata_dlt.api import app as app_module
    from sonata_dlt.api.specs import ApiMount

    monkeypatch.setattr(app_module, "MOUNTS", (ApiMount("verifiableLog.api.yaml", "verifiable_log"),))
    app = app_module.create_app(settings, runtime, run_workers=False)
    with app.test_client() as client:
        yield client
