"""The one error family of sonata-dlt.

Every failure the application means to report is one of these. ``api/errors.py`` is the single place that turns
them into Sonata ``Error`` bodies; anything else that escapes a handler becomes an opaque 500 and is logged.

This module imports nothing from the application, so the pure layers (``transparency``, ``signing``) may raise
``VerificationError`` without depending on anything above them.

::

    SonataDltError
    ├── ApiError                    status + Sonata ``code``; rendered as an Error body
    │   ├── BadRequest              400  invalidBody | invalidQuery | missingQueryParameter | missingQueryValue
    │   ├── Unauthorized            401  missingCredentials | invalidCredentials
    │   ├── Forbidden               403  accessDenied | forbiddenRequester
    │   ├── NotFound                404  notFound
    │   ├── Conflict                409  conflict (a forbidden state transition, a duplicate)
    │   ├── PayloadTooLarge         413  (no Sonata code exists; rendered with code ``invalidBody``)
    │   ├── Unprocessable           422  a list of ``Issue`` (code, reason, propertyPath), rendered as an array
    │   └── ServiceUnavailable      503  a dependency (database, ledger) is down
    ├── VerificationError           a proof, signature, checkpoint, anchor or bundle did not verify
    ├── LedgerUnavailable           the ledger backend cannot be reached now; anchoring retries later
    └── ConfigurationError          settings or key material are unusable
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class SonataDltError(Exception):
    """Root of every error sonata-dlt raises on purpose."""


class ApiError(SonataDltError):
    """An error with a Sonata ``Error`` body: HTTP status, ``code`` and a human ``reason``."""

    status: int = 500
    default_code: str = "internalError"

    def __init__(self, reason: str, *, code: str | None = None, message: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason[:255]  # Error.reason has maxLength 255 in every Sonata API
        self.code = code or self.default_code
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as its class, arguments and attributes: it crosses from the writer process (see
        # startup.writer_process) to the server with its status, code and issues intact.
        return (_restore_error, (type(self), self.args, self.__dict__))


class BadRequest(ApiError):
    status = 400
    default_code = "invalidBody"


class Unauthorized(ApiError):
    status = 401
    default_code = "missingCredentials"


class Forbidden(ApiError):
    status = 403
    default_code = "accessDenied"


class NotFound(ApiError):
    status = 404
    default_code = "notFound"


class Conflict(ApiError):
    status = 409
    default_code = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    default_code = "invalidBody"


class ServiceUnavailable(ApiError):
    status = 503
    default_code = "internalError"


@dataclass(frozen=True)
class Issue:
    """One problem in a 422 answer. ``property_path`` is a JSON Pointer into the request body."""

    code: str  # missingProperty | invalidValue | invalidFormat | referenceNotFound | unexpectedProperty | ...
    reason: str
    property_path: str | None = None
    message: str | None = None


class Unprocessable(ApiError):
    """422: the request is well formed but its content is not acceptable. Rendered as an array of Error422."""

    status = 422
    default_code = "invalidValue"

    def __init__(self, issues: list[Issue]) -> None:
        if not issues:
            raise ValueError("Unprocessable needs at least one issue")
        super().__init__(issues[0].reason, code=issues[0].code)
        self.issues = list(issues)

    @classmethod
    def single(cls, code: str, reason: str, property_path: str | None = None) -> Unprocessable:
        return cls([Issue(code=code, reason=reason, property_path=property_path)])


def _restore_error(kind: type[ApiError], args: tuple[Any, ...], state: dict[str, Any]) -> ApiError:
    error = kind.__new__(kind)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class VerificationError(SonataDltError):
    """A security check failed. Raised, never returned: a caller cannot forget to look at it."""


class LedgerUnavailable(SonataDltError):
    """The ledger backend could not be reached or did not confirm in time. Anchoring queues and retries."""


class ConfigurationError(SonataDltError):
    """Settings, key files or backend options are missing or inconsistent."""
