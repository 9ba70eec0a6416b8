"""connexion's request validators, adapted to Sonata.

Parameter problems are query problems, never body problems: connexion raises the same ``BadRequestProblem`` for
a bad query parameter and a bad body, and its messages do not say which (``'notadate' is not a 'date-time'``).
Sonata's Error400 needs ``invalidQuery`` vs ``invalidBody``, so the parameter validator re-raises its problems as
``ParameterProblem`` and ``api/errors.py`` maps by type.

NDJSON uploads stream: connexion sends every media type ending in "json" to its JSON validator, which reads the
whole body into memory and ``json.loads`` it, so a million-line ``application/x-ndjson`` upload would be buffered
and then refused. Those bodies pass through unread; the services check them line by line as they read them.
"""

from __future__ import annotations

from typing import Any

from connexion.exceptions import BadRequestProblem, ExtraParameterProblem
from connexion.validators import VALIDATOR_MAP, AbstractRequestBodyValidator, ParameterValidator
from starlette.types import Receive, Scope

NDJSON = "application/x-ndjson"


class ParameterProblem(BadRequestProblem):  # type: ignore[misc]  # connexion ships no type information
    """A query, path or header parameter is missing or invalid."""

    def __init__(self, detail: str, *, missing: bool) -> None:
        super().__init__(detail=detail)
        self.missing = missing


class SonataParameterValidator(ParameterValidator):  # type: ignore[misc]  # connexion ships no type information
    def validate_request(self, request: Any) -> None:
        try:
            super().validate_request(request)
        except ExtraParameterProblem:
            raise
        except BadRequestProblem as problem:
            detail = str(problem.detail)
            raise ParameterProblem(detail, missing=detail.startswith("Missing ")) from None


class StreamedBodyValidator(AbstractRequestBodyValidator):  # type: ignore[misc]  # connexion ships no type information
    """Leaves the body unread: the handler streams it and the service validates it."""

    async def wrap_receive(self, receive: Receive, *, scope: Scope) -> tuple[Receive, Scope]:
        return receive, scope

    async def _parse(self, stream: Any, scope: Scope) -> Any:  # never called: wrap_receive reads nothing
        return None

    def _validate(self, body: Any) -> dict[str, Any] | None:
        return None


_BODY_VALIDATORS: Any = VALIDATOR_MAP["body"]
SONATA_VALIDATOR_MAP: dict[str, Any] = {
    **VALIDATOR_MAP,
    "parameter": SonataParameterValidator,
    "body": type(_BODY_VALIDATORS)({**_BODY_VALIDATORS, NDJSON: StreamedBodyValidator}),
}
