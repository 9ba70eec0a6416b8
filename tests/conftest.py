"""Shared fixtures.

The suite runs on SQLite by default. With ``SONATA_DLT_TEST_DATABASE_URL`` set to a PostgreSQL URL, every test that
uses ``database_url`` runs on PostgreSQL instead, each in a fresh schema (CI runs the suite both ways). Tests that
only make sense on PostgreSQL are marked ``postgres`` and skip, with the reason, when it is not configured.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sonata_dlt.core.runtime import Runtime
from sonata_dlt.settings import DEMO_BUYER_TOKEN, DEMO_SELLER_TOKEN, Settings
from sonata_dlt.startup.wiring import start_runtime

REPO = Path(__file__).resolve().parents[1]
MEF_REFERENCE = REPO.parent / "shared" / "reference" / "sonata"
PRODUCT_SCHEMAS = MEF_REFERENCE / "productSchema"
POSTGRES_URL = os.environ.get("SONATA_DLT_TEST_DATABASE_URL", "")


def _postgres_schema_url(base_url: str) -> Iterator[str]:
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    plain = base_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated to the newest revision once per session; each test gets a copy of it, so the
    migrations run once rather than in every test (the server's own upgrade then finds nothing to do)."""
    from sonata_dlt.storage.db import Database
    from sonata_dlt.storage.migrate import upgrade

    path = tmp_path_factory.mktemp("template") / "sonata.sqlite"
    database = Database(f"sqlite:///{path}")
    try:
        upgrade(database)
    finally:
        database.dispose()  # the last connection checkpoints the WAL into the file, so the file alone is whole
    return path


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    if POSTGRES_URL:
        yield from _postgres_schema_url(POSTGRES_URL)
    else:
        copy = tmp_path / "sonata.sqlite"
        shutil.copyfile(sqlite_template, copy)
        yield f"sqlite:///{copy}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL schema; skips when no PostgreSQL is configured."""
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured: set SONATA_DLT_TEST_DATABASE_URL (CI uses 127.0.0.1:5432/test)")
    yield from _postgres_schema_url(POSTGRES_URL)


@pytest.fixture
def make_settings(database_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Factory: demo settings on the test database, with overrides."""

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "data_dir": tmp_path / "data",
            "demo": True,
            "product_schema_dir": PRODUCT_SCHEMAS,
            # The writer process is tested in test_writer_process.py; elsewhere creates commit on the thread.
            "group_commit": "thread",
        }
        values.update(overrides)
        return Settings.load(**values)

    return factory


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def make_runtime() -> Iterator[Callable[[Settings], Runtime]]:
    """Factory: the server's runtime for some settings (on the test's copy of the template database), closed when
    the test ends. The one place tests build runtimes."""
    started: list[Runtime] = []

    def factory(settings: Settings) -> Runtime:
        runtime = start_runtime(settings)
        started.append(runtime)
        return runtime

    yield factory
    for runtime in reversed(started):
        runtime.close()


@pytest.fixture
def runtime(settings: Settings, make_runtime: Callable[[Settings], Runtime]) -> Runtime:
    return make_runtime(settings)


@pytest.fixture
def app(settings: Settings, runtime: Runtime) -> Any:
    from sonata_dlt.api.app import create_app

    return create_app(settings, runtime, run_workers=False)


@pytest.fixture
def client(app: Any) -> Iterator[Any]:
    """An unauthenticated test client (starlette TestClient over the ASGI app)."""
    with app.test_client() as test_client:
        yield test_client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def buyer_headers() -> dict[str, str]:
    return _bearer(DEMO_BUYER_TOKEN)


@pytest.fixture
def seller_headers() -> dict[str, str]:
    return _bearer(DEMO_SELLER_TOKEN)
