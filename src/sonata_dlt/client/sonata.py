"""An aiohttp client for the Sonata APIs and the Verifiable Log (Proof) API, as one party sees them.

It only moves JSON: it checks nothing cryptographic (that is ``client.verifier`` and ``client.bundle``) and trusts
nothing it returns. Every call names the bilateral with the ``buyerId`` / ``sellerId`` given at construction, so a
party trading with several counter-parties reaches the right log.

Which Sonata API serves which recorded resource type is :data:`RESOURCE_APIS`: the log names resources by type and
id, a verifier fetches their documents there.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp

from sonata_dlt import base_paths
from sonata_dlt.errors import SonataDltError

PROOFS = base_paths.VERIFIABLE_LOG
ORDERING = base_paths.PRODUCT_ORDERING
INVENTORY = base_paths.PRODUCT_INVENTORY
BILLING = base_paths.CUSTOMER_BILL
SMART_BILATERAL = base_paths.SMART_BILATERAL


@dataclass(frozen=True)
class ResourceApi:
    """Where a recorded resource type is served: its collection path, and whether that path can be listed."""

    path: str
    listable: bool = True
    # MEF's billing API and settlements have no buyerId / sellerId parameters; billing runs and disputes take them
    # to list, not to retrieve one by id.
    list_takes_bilateral: bool = True
    retrieve_takes_bilateral: bool = True


RESOURCE_APIS: Mapping[str, ResourceApi] = {
    "productOrder": ResourceApi(f"{ORDERING}/productOrder"),
    "cancelProductOrder": ResourceApi(f"{ORDERING}/cancelProductOrder"),
    "modifyProductOrderItemRequestedDeliveryDate": ResourceApi(
        f"{ORDERING}/modifyProductOrderItemRequestedDeliveryDate"
    ),
    "charge": ResourceApi(f"{ORDERING}/charge"),
    "product": ResourceApi(f"{INVENTORY}/product"),
    "customerBill": ResourceApi(f"{BILLING}/customerBill", list_takes_bilateral=False, retrieve_takes_bilateral=False),
    "customerBillItem": ResourceApi(f"{BILLING}/customerBillItem", listable=False, retrieve_takes_bilateral=False),
    "agreement": ResourceApi(f"{SMART_BILATERAL}/agreement"),
    "inventoryReport": ResourceApi(f"{SMART_BILATERAL}/inventoryReport"),
    "reconciliation": ResourceApi(f"{SMART_BILATERAL}/reconciliation"),
    "usageBatch": ResourceApi(f"{SMART_BILATERAL}/usageBatch", listable=False),
    "usageReconciliation": ResourceApi(f"{SMART_BILATERAL}/usageReconciliation", listable=False),
    "billingRun": ResourceApi(f"{SMART_BILATERAL}/billingRun", retrieve_takes_bilateral=False),
    "dispute": ResourceApi(f"{SMART_BILATERAL}/dispute", retrieve_takes_bilateral=False),
    "adjustment": ResourceApi(f"{SMART_BILATERAL}/adjustment", listable=False, retrieve_takes_bilateral=False),
    # A settlement nets a pair of operators across both bilaterals between them: no buyerId / sellerId.
    "settlement": ResourceApi(
        f"{SMART_BILATERAL}/settlement", list_takes_bilateral=False, retrieve_takes_bilateral=False
    ),
}

PAGE = 500  # servers lower larger limits (X-Pagination-Throttled); pages follow X-Total-Count either way


class ServerError(SonataDltError):
    """The server answered with an unexpected HTTP status, or could not be reached."""

    def __init__(self, method: str, path: str, status: int | None, detail: str) -> None:
        where = f"{method} {path}"
        super().__init__(f"{where}: HTTP {status}: {detail}" if status is not None else f"{where}: {detail}")
        self.method = method
        self.path = path
        self.status = status


class SonataClient:
    """One party's view of one bilateral on one server. Use as ``async with SonataClient(...) as client``."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        buyer_id: str | None = None,
        seller_id: str | None = None,
        timeout_seconds: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._bilateral = {key: value for key, value in (("buyerId", buyer_id), ("sellerId", seller_id)) if value}
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SonataClient:
        self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- plumbing ---------------------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        expect: tuple[int, ...] = (200,),
        bilateral: bool = True,
    ) -> tuple[int, Any, Mapping[str, str]]:
        """Send one request; return (status, decoded JSON body or None, headers). Other statuses raise."""
        if self._session is None:
            raise RuntimeError("SonataClient is used outside 'async with'")
        query = {**(self._bilateral if bilateral else {}), **{k: _param(v) for k, v in (params or {}).items()}}
        url = self.base_url + path
        try:
            async with self._session.request(method, url, params=query, json=body) as response:
                text = await response.text()
                headers = response.headers.copy()  # keeps lookups case-insensitive (uvicorn sends lower case)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ServerError(method, path, None, f"cannot reach the server: {exc!r}") from exc
        if status not in expect:
            raise ServerError(method, path, status, _error_detail(text))
        decoded = json.loads(text) if text.strip() else None
        return status, decoded, headers

    async def get(self, path: str, bilateral: bool = True, **params: Any) -> Any:
        return (await self.request("GET", path, params=params, bilateral=bilateral))[1]

    async def pages(self, path: str, bilateral: bool = True, **params: Any) -> AsyncGenerator[dict[str, Any], None]:
        """Every item of a paged Sonata list, following X-Total-Count."""
        offset = 0
        while True:
            query = {**params, "offset": offset, "limit": PAGE}
            _, items, headers = await self.request("GET", path, params=query, bilateral=bilateral)
            if not isinstance(items, list):
                raise ServerError("GET", path, 200, "a list answer is not a JSON array")
            for item in items:
                yield item
            offset += len(items)
            total = int(headers.get("X-Total-Count", offset))
            if not items or offset >= total:
                return

    # -- Proof API --------------------------------------------------------------------------------------------

    async def checkpoints(self) -> list[dict[str, Any]]:
        """Every checkpoint of the bilateral's log, newest first."""
        return [item async for item in self.pages(f"{PROOFS}/checkpoint")]

    async def checkpoint(self, size: int) -> dict[str, Any]:
        answer: dict[str, Any] = await self.get(f"{PROOFS}/checkpoint/{size}")
        return answer

    async def latest_checkpoint(self, *, endorsed: bool = False) -> dict[str, Any] | None:
        params = {"endorsed": True} if endorsed else {}
        status, body, _ = await self.request("GET", f"{PROOFS}/checkpoint/latest", params=params, expect=(200, 404))
        return body if status == 200 else None

    async def cut_checkpoint(self) -> dict[str, Any] | None:
        """Ask for a checkpoint of the log as it is now; None when the log is still empty."""
        status, body, _ = await self.request("POST", f"{PROOFS}/checkpoint", expect=(200, 201, 409))
        return body if status in (200, 201) else None

    async def consistency_proof(self, from_size: int, to_size: int) -> dict[str, Any]:
        answer: dict[str, Any] = await self.get(f"{PROOFS}/consistencyProof", fromSize=from_size, toSize=to_size)
        return answer

    async def inclusion_proof(
        self, *, tree_size: int, resource_type: str, resource_id: str, version: int | None = None
    ) -> dict[str, Any] | None:
        """The proof of a resource's leaf (latest under ``tree_size`` without ``version``); None if it has none."""
        params: dict[str, Any] = {"treeSize": tree_size, "resourceType": resource_type, "resourceId": resource_id}
        if version is not None:
            params["version"] = version
        status, body, _ = await self.request("GET", f"{PROOFS}/inclusionProof", params=params, expect=(200, 404))
        return body if status == 200 else None

    async def inclusion_proof_at(self, leaf_index: int, tree_size: int) -> dict[str, Any]:
        answer: dict[str, Any] = await self.get(f"{PROOFS}/inclusionProof", leafIndex=leaf_index, treeSize=tree_size)
        return answer

    async def leaves(
        self, *, start: int = 0, resource_type: str | None = None, resource_id: str | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Leaf records in index order from ``start`` (unfiltered) or every leaf of one resource (filtered)."""
        params = {k: v for k, v in (("resourceType", resource_type), ("resourceId", resource_id)) if v is not None}
        offset = start
        while True:
            query = {**params, "offset": offset, "limit": PAGE}
            _, items, headers = await self.request("GET", f"{PROOFS}/leaf", params=query)
            for item in items:
                yield item
            offset += len(items)
            if not items or offset >= int(headers.get("X-Total-Count", offset)):
                return

    async def party_keys(self) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = await self.get(f"{PROOFS}/partyKey")
        return answer

    async def register_party_key(self, vkey: str) -> dict[str, Any] | None:
        """Register the caller's key; None when it is registered already (409)."""
        status, body, _ = await self.request("POST", f"{PROOFS}/partyKey", body={"vkey": vkey}, expect=(201, 409))
        return body if status == 201 else None

    async def cosign(self, note: str, old_size: int, proof: list[str], line: str) -> dict[str, Any]:
        body = {"checkpoint": note, "oldSize": old_size, "consistencyProof": proof, "cosignature": line}
        answer: dict[str, Any] = (await self.request("POST", f"{PROOFS}/cosignature", body=body, expect=(201,)))[1]
        return answer

    # -- Sonata APIs ------------------------------------------------------------------------------------------

    async def resource_ids(self, resource_type: str) -> list[str] | None:
        """Ids of every resource of this type the caller sees; None when the server does not offer its API."""
        api = RESOURCE_APIS[resource_type]
        if not api.listable:
            return None
        ids: list[str] = []
        try:
            async for item in self.pages(api.path, bilateral=api.list_takes_bilateral):
                ids.append(str(item["id"]))
        except ServerError as exc:
            if exc.status == 404:
                return None  # the API is not mounted on this server
            raise
        return ids

    def names_another_bilateral(self, document: Mapping[str, Any]) -> bool:
        """Whether a document names a buyer or seller other than the ones this client was given. APIs without
        ``buyerId`` / ``sellerId`` parameters (MEF's billing API) list the caller's resources of every bilateral."""
        if "partyA" in document or "partyB" in document:  # a settlement names its two operators, in either role
            parties = {document.get("partyA"), document.get("partyB")}
            return any(value not in parties for value in self._bilateral.values())
        return any(key in document and document[key] != value for key, value in self._bilateral.items())

    async def resource(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        """The resource document exactly as the Sonata API serves it."""
        api = RESOURCE_APIS[resource_type]
        document: dict[str, Any] = await self.get(f"{api.path}/{resource_id}", bilateral=api.retrieve_takes_bilateral)
        return document


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _error_detail(text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return text[:300] or "(empty body)"
    if isinstance(body, list) and body:
        body = body[0]
    if isinstance(body, dict):
        return f"{body.get('code', '?')}: {body.get('reason', '')}"
    return text[:300]
