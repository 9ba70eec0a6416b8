"""The party-side client follows Sonata paging across pages, whatever the case of the header names."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from sonata_dlt.client.sonata import PAGE, SonataClient

TOTAL = 2 * PAGE + 7


@asynccontextmanager
async def paged_server(total: int) -> AsyncIterator[str]:
    """A list endpoint that pages like ours; uvicorn sends header names in lower case, so this does too."""

    async def handle(request: web.Request) -> web.Response:
        offset, limit = int(request.query["offset"]), int(request.query["limit"])
        items = [{"id": str(n)} for n in range(offset, min(offset + limit, total))]
        headers = {"x-total-count": str(total), "x-result-count": str(len(items))}
        return web.json_response(items, headers=headers)

    app = web.Application()
    app.router.add_get("/items", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_pages_are_followed_to_the_total() -> None:
    async with paged_server(TOTAL) as url, SonataClient(url, "token") as client:
        ids = [item["id"] async for item in client.pages("/items")]
    assert ids == [str(n) for n in range(TOTAL)]
