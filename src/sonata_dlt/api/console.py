"""The web console: static files (public) and the one piece of JSON the public APIs do not give.

The page under ``/console/static/`` asks for a bearer token and reads everything else from the Sonata, Smart
Bilateral and Verifiable Log APIs with it, so it shows exactly what that party may see. The only console-specific
endpoint is ``GET /console/api/whoami``: the calling party and its bilaterals, which the console needs to offer a
choice of counter-party and which no Sonata API lists. It is behind the token like every non-static path.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from sonata_dlt.api import context

STATIC_PREFIX = "/console/static/"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def static_directory() -> Path:
    return Path(str(resources.files("sonata_dlt") / "console" / "static"))


async def static(request: Request) -> Response:
    root = static_directory().resolve()
    wanted = (root / str(request.path_params["path"] or "index.html")).resolve()
    # Serve only files inside the static directory: no "..", no symlink out of it.
    if root not in wanted.parents or not wanted.is_file() or wanted.suffix not in MEDIA_TYPES:
        return JSONResponse({"code": "notFound", "reason": "no such console file"}, status_code=404)
    return FileResponse(
        wanted,
        media_type=MEDIA_TYPES[wanted.suffix],
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


async def whoami(_request: Request) -> JSONResponse:
    party = context.current_party()
    runtime = context.runtime()
    bilaterals: list[dict[str, Any]] = [
        {"id": ref.id, "buyerId": ref.buyer_id, "sellerId": ref.seller_id, "origin": ref.origin}
        for ref in runtime.parties.bilaterals_of(party)
    ]
    return JSONResponse({"partyId": party.id, "role": party.role.value, "bilaterals": bilaterals})


def mount(app: Any) -> None:
    """Add the console's routes to the connexion app (called by ``api.app.create_app``)."""
    app.add_url_rule(STATIC_PREFIX + "{path:path}", "console_static", static)
    app.add_url_rule("/console/api/whoami", "console_whoami", whoami)
