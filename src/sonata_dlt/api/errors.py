"""The one place where errors become Sonata ``Error`` bodies.

- ``ApiError`` subclasses carry their status and ``code``; ``Unprocessable`` renders as an array of Error422.
- connexion's own validation problems (RFC 7807 bodies by default) are re-rendered as Sonata Error400:
  parameter problems (``api/validation.py`` tells them apart) get ``invalidQuery`` or ``missingQueryParameter``,
  everything else ``invalidBody``.
- Routing misses are 404 ``notFound``; a method the path does not offer is 405.
- Anything else is logged with its traceback and answered with a 500 that reveals nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from connexion import AsyncApp
from connexion.exceptions import (
    BadRequestProblem,
    ExtraParameterProblem,
    ProblemException,
    UnsupportedMediaTypeProblem,
)
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException

from sonata_dlt.api.responses import json_response
from sonata_dlt.api.specs import ApiMount, path_methods
from sonata_dlt.api.validation import ParameterProblem
from sonata_dlt.errors import ApiError, Unprocessable

log = logging.getLogger("sonata_dlt.api")
ExceptionHandler = Callable[[ConnexionRequest, Exception], ConnexionResponse]


def error_body(code: str, reason: str, message: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "reason": reason[:255]}
    if message:
        body["message"] = message
    return body


def render_api_error(error: ApiError) -> ConnexionResponse:
    if isinstance(error, Unprocessable):
        items = []
        for issue in error.issues:
            item = error_body(issue.code, issue.reason, issue.message)
            if issue.property_path is not None:
                item["propertyPath"] = issue.property_path
            items.append(item)
        return json_response(items, 422)
    if error.status >= 500:
        # The cause (a driver error, say) stays in the log for operators; the client sees only the Sonata body.
        cause = error.__cause__
        log.error(
            "service error",
            extra={"status": error.status, "reason": error.reason, "cause": repr(cause) if cause else None},
        )
    return json_response(error_body(error.code, error.reason, error.message), error.status)


def _api_error_handler(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, ApiError)
    return render_api_error(exc)


def _problem_handler(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, ProblemException)
    detail = str(exc.detail or exc.title or "invalid request")
    if isinstance(exc, ExtraParameterProblem):
        return json_response(error_body("invalidQuery", detail), 400)
    if isinstance(exc, ParameterProblem):
        return json_response(error_body("missingQueryParameter" if exc.missing else "invalidQuery", detail), 400)
    if isinstance(exc, UnsupportedMediaTypeProblem):
        # Sonata documents no 415; a body in the wrong media type is an invalid body.
        return json_response(error_body("invalidBody", f"the request body must be application/json: {detail}"), 400)
    if isinstance(exc, BadRequestProblem) or exc.status == 400:
        return json_response(error_body("invalidBody", _field_first(detail)), 400)
    if exc.status == 404:
        return json_response(error_body("notFound", detail), 404)
    if 400 <= exc.status < 500:
        return json_response(error_body("invalidBody", detail), exc.status)
    log.error("connexion problem", extra={"status": exc.status, "detail": detail})
    return json_response(error_body("internalError", "internal error"), 500)


# connexion words body problems as "<message> - '<dotted.path>'"; Error.reason holds 255 characters, so a long
# message (a pattern, an enum) would cut the path off. Put the field first, where truncation cannot reach it.
_TRAILING_PATH = re.compile(r"^(?P<message>.*) - '(?P<path>[^']+)'$", re.DOTALL)


def _field_first(detail: str) -> str:
    match = _TRAILING_PATH.match(detail)
    return f"{match['path']}: {match['message']}" if match else detail


def _http_exception_handler(path_table: list[tuple[re.Pattern[str], frozenset[str]]]) -> ExceptionHandler:
    def handle(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return json_response(error_body("notFound", "no such resource or path"), 404)
        if exc.status_code == 405:
            # RFC 9110 §15.5.6: a 405 names the methods the path offers. Taken from the specs, because starlette's
            # own Allow names only the methods of the first route that matched the path.
            path = request.url.path
            allowed = sorted({method for pattern, methods in path_table if pattern.match(path) for method in methods})
            headers = {"Allow": ", ".join(allowed)} if allowed else {}
            reason = "this path does not support the method"
            return json_response(error_body("methodNotAllowed", reason), 405, headers)
        if exc.status_code < 500:
            return json_response(error_body("invalidBody", str(exc.detail)), exc.status_code)
        return json_response(error_body("internalError", "internal error"), 500)

    return handle


def _undecodable_body_handler(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    # connexion decodes a JSON body before any handler runs; bytes that are not UTF-8 are the client's error.
    return json_response(error_body("invalidBody", "the request body is not UTF-8 encoded JSON"), 400)


def _unexpected_handler(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    log.error("unhandled error", exc_info=exc)
    return json_response(error_body("internalError", "internal error"), 500)


def install_error_handlers(app: AsyncApp, mounts: Iterable[ApiMount]) -> None:
    app.add_error_handler(ApiError, _api_error_handler)
    app.add_error_handler(ProblemException, _problem_handler)
    app.add_error_handler(HTTPException, _http_exception_handler(path_methods(mounts)))
    app.add_error_handler(UnicodeDecodeError, _undecodable_body_handler)
    app.add_error_handler(Exception, _unexpected_handler)
