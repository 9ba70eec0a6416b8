"""Who is calling, and which bilateral a request belongs to.

Each bearer token speaks for one party in one role (configuration). A bilateral is picked from the caller and the
Sonata ``buyerId`` / ``sellerId`` query parameters (MEF 123 §5.3): a party that trades with exactly one
counter-party may omit them; one that trades with several must name the counter-party. A party never reaches a
bilateral it does not belong to.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import Session, select

from sonata_dlt.bilateral_id import bilateral_id_for as bilateral_id_for  # re-exported for the domains
from sonata_dlt.errors import BadRequest, Forbidden, Unauthorized
from sonata_dlt.settings import BilateralConfig, Role, Settings, TokenGrant
from sonata_dlt.storage.log import Bilateral


@dataclass(frozen=True)
class Party:
    id: str
    role: Role

    @property
    def actor(self) -> str:
        """How the party appears in log records."""
        return f"{self.role.value}:{self.id}"


SYSTEM_ACTOR = "system:sonata-dlt"  # changes the server makes by itself (timeouts, auto-fulfilment)


@dataclass(frozen=True)
class BilateralRef:
    id: str
    buyer_id: str
    seller_id: str
    origin: str

    def includes(self, party: Party) -> bool:
        return (party.role is Role.BUYER and party.id == self.buyer_id) or (
            party.role is Role.SELLER and party.id == self.seller_id
        )


def _token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class PartyDirectory:
    """Tokens, parties and the bilaterals between them, as configured."""

    def __init__(self, grants: Iterable[TokenGrant], bilaterals: Iterable[BilateralConfig], origin_prefix: str) -> None:
        # Keyed by the token's digest so the lookup itself does not compare secrets byte by byte.
        self._grants = {_token_digest(grant.token): grant for grant in grants}
        self._bilaterals: dict[tuple[str, str], BilateralRef] = {}
        for config in bilaterals:
            ref_id = bilateral_id_for(config.buyer_id, config.seller_id)
            origin = f"{origin_prefix}/bilateral/{ref_id}"
            self._bilaterals[(config.buyer_id, config.seller_id)] = BilateralRef(
                ref_id, config.buyer_id, config.seller_id, origin
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> PartyDirectory:
        return cls(settings.tokens, settings.bilaterals, settings.log_origin_prefix)

    @property
    def bilaterals(self) -> list[BilateralRef]:
        return list(self._bilaterals.values())

    def authenticate(self, authorization: str | None) -> Party:
        """Return the party behind an ``Authorization: Bearer`` header; raise Unauthorized otherwise."""
        if not authorization:
            raise Unauthorized("an Authorization: Bearer token is required", code="missingCredentials")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("the Authorization header must be 'Bearer <token>'", code="missingCredentials")
        grant = self._grants.get(_token_digest(token))
        if grant is None or not hmac.compare_digest(_token_digest(grant.token), _token_digest(token)):
            raise Unauthorized("the bearer token is not valid", code="invalidCredentials")
        return Party(grant.party_id, grant.role)

    def bilaterals_of(self, party: Party) -> list[BilateralRef]:
        return [ref for ref in self._bilaterals.values() if ref.includes(party)]

    def by_id(self, bilateral_id: str) -> BilateralRef | None:
        return next((ref for ref in self._bilaterals.values() if ref.id == bilateral_id), None)

    def resolve(self, party: Party, buyer_id: str | None = None, seller_id: str | None = None) -> BilateralRef:
        """Pick the one bilateral a request acts on (for creates and other single-bilateral operations)."""
        candidates = self.scope(party, buyer_id, seller_id)
        if len(candidates) == 1:
            return candidates[0]
        missing = "sellerId" if party.role is Role.BUYER else "buyerId"
        raise BadRequest(
            f"{party.id} trades with several counter-parties: the {missing} query parameter is required",
            code="missingQueryParameter",
        )

    def scope(self, party: Party, buyer_id: str | None = None, seller_id: str | None = None) -> list[BilateralRef]:
        """The bilaterals a read may cover: the caller's, narrowed by buyerId / sellerId when given."""
        own_id, other_id = (buyer_id, seller_id) if party.role is Role.BUYER else (seller_id, buyer_id)
        if own_id is not None and own_id != party.id:
            own_param = "buyerId" if party.role is Role.BUYER else "sellerId"
            raise Forbidden(f"{own_param} {own_id} is not the authenticated party", code="forbiddenRequester")
        mine = self.bilaterals_of(party)
        if other_id is not None:
            mine = [ref for ref in mine if other_id in (ref.buyer_id, ref.seller_id) and other_id != party.id]
            if not mine:
                raise Forbidden(f"{party.id} has no bilateral with {other_id}", code="accessDenied")
        if not mine:
            raise Forbidden(f"{party.id} has no bilateral on this server", code="accessDenied")
        return mine


def ensure_bilaterals(session: Session, directory: PartyDirectory) -> None:
    """Create the log head row of every configured bilateral that does not have one yet."""
    existing = set(session.exec(select(Bilateral.id)).all())
    for ref in directory.bilaterals:
        if ref.id not in existing:
            session.add(Bilateral(id=ref.id, buyer_id=ref.buyer_id, seller_id=ref.seller_id, origin=ref.origin))
