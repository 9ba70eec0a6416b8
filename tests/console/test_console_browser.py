"""The console in headless Chromium: log in with a token, read orders, the log, and verify a proof in the browser.

Needs Debian's chromium (/usr/bin/chromium) and Playwright for Python (``pip install playwright``; never
``playwright install``). Screenshots go to test-artifacts/console/ (gitignored), to be kept by CI.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sonata_dlt.sandbox.documents import add_order
from sonata_dlt.sandbox.topology import free_port
from sonata_dlt.settings import DEMO_BUYER_TOKEN, DEMO_SELLER_TOKEN

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _request(url: str, token: str, method: str = "GET", body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback URL built here
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback URL built here
        text = response.read().decode()
        return json.loads(text) if text else None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    entry = "import sys; from sonata_dlt.cli import main; sys.exit(main())"
    argv = [
        sys.executable,
        "-c",
        entry,
        "serve",
        "--demo",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path),
        "--database-url",
        f"sqlite:///{tmp_path / 'db.sqlite'}",
    ]
    log = open(tmp_path / "server.log", "wb")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=1).close()  # noqa: S310 - loopback
                break
            except OSError:
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def test_console_shows_orders_log_and_verifies_a_proof(server: str) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install -y chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright for Python is absent (pip install playwright)"
    )

    ordering = f"{server}/mefApi/sonata/productOrderingManagement/v10"
    fulfil = f"{server}/mefApi/sonata/sellerFulfilment/v1"
    order = _request(
        f"{ordering}/productOrder",
        DEMO_BUYER_TOKEN,
        "POST",
        add_order("BUYER-1", "PO-CONSOLE-1", "accessEline", 100, "LON-1"),
    )
    _request(f"{fulfil}/productOrder/{order['id']}/accept", DEMO_SELLER_TOKEN, "POST", {})
    _request(f"{fulfil}/productOrder/{order['id']}/item/1/complete", DEMO_SELLER_TOKEN, "POST", {})
    _request(f"{server}/mefApi/sonata/verifiableLog/v1/checkpoint", DEMO_SELLER_TOKEN, "POST")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{server}/console/static/index.html")
            page.fill("#token", "not-a-valid-token-at-all")
            page.click("#login button[type=submit]")
            page.wait_for_selector("#login-error:has-text('not valid')")

            page.fill("#token", DEMO_BUYER_TOKEN)
            page.click("#login button[type=submit]")
            page.wait_for_selector(f"text={order['id']}")
            assert page.inner_text("#who") == "BUYER-1 as buyer"
            assert page.evaluate("sessionStorage.getItem('sonataToken')") == DEMO_BUYER_TOKEN
            page.click(f"text={order['id']}")
            page.wait_for_selector("ol.timeline li")
            assert "created" in page.inner_text("ol.timeline")
            page.screenshot(path=str(ARTIFACTS / "orders.png"), full_page=True)

            page.click("#tabs button[data-tab=inventory]")
            page.wait_for_selector("h2:has-text('Inventory (1)')")
            page.screenshot(path=str(ARTIFACTS / "inventory.png"), full_page=True)

            page.click("#tabs button[data-tab=log]")
            page.wait_for_selector("h2:has-text('Checkpoints')")
            assert "note host" in page.inner_text("main")
            page.screenshot(path=str(ARTIFACTS / "log.png"), full_page=True)

            page.click("#tabs button[data-tab=proof]")
            page.fill("#proof-id", order["id"])
            page.click("#proof-form button[type=submit]")
            verdict = page.wait_for_selector("#proof-verdict")
            assert verdict is not None
            assert verdict.get_attribute("class") == "ok", verdict.inner_text()
            page.screenshot(path=str(ARTIFACTS / "proof.png"), full_page=True)

            # A wrong signed root must not verify: the check really runs in the browser.
            size = _request(f"{server}/mefApi/sonata/verifiableLog/v1/checkpoint/latest", DEMO_BUYER_TOKEN)["treeSize"]
            proof_url = f"{server}/mefApi/sonata/verifiableLog/v1/inclusionProof?leafIndex=0&treeSize={size}"
            genuine, tampered = page.evaluate(
                """async ([url, token]) => {
                    const answer = await (await fetch(url, {headers: {Authorization: 'Bearer ' + token}})).json();
                    const genuine = (await Merkle.verifyInclusion(answer)).ok;
                    answer.rootHash = btoa('y'.repeat(32));
                    return [genuine, (await Merkle.verifyInclusion(answer)).ok];
                }""",
                [proof_url, DEMO_BUYER_TOKEN],
            )
            assert genuine is True
            assert tampered is False
        finally:
            browser.close()
    assert all(
        (ARTIFACTS / name).stat().st_size > 0 for name in ("orders.png", "inventory.png", "log.png", "proof.png")
    )
