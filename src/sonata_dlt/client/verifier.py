"""The party-side verifier: check the server's log against what the party sees and remembers, then cosign.

One run, as one party of one bilateral (``Verifier.run``):

1. **Keys.** The host key is pinned (``--host-vkey`` or trust on first use, then never silently changed). The
   party's own key is registered with ``POST /partyKey`` if the server does not list it (when cosigning).
2. **Checkpoints.** Every checkpoint the server lists is checked: host signature, every cosignature against the
   parties' registered keys and their validity at the cosignature's time, the JSON fields against the signed
   note, "endorsed" only when both parties cosigned. Each is compared with every checkpoint this verifier ever
   saw: one size with two roots is a fork.
3. **History.** From the last checkpoint it trusted, a consistency proof to the newest one; then every new leaf
   record is fetched and replayed: leaf hash, canonical record, ``seq`` equal to its index, gap-free indices,
   versions increasing per resource, and the Merkle root recomputed at every checkpoint size.
4. **Ledger.** Every checkpoint's anchor receipt must be for that checkpoint; ``local`` receipts are checked
   offline with the host (journal) key, and against the journal or chain when a ledger backend is given. The
   newest checkpoint must be anchored (the verifier waits ``anchor_wait_seconds`` for it).
5. **Resources.** Every resource the party sees through the Sonata APIs, or saw before, or found in the log, is
   fetched; the SHA-256 of its canonical JSON must be the ``stateHash`` of its latest leaf, whose inclusion in
   the newest checkpoint is proven. A resource changed after that checkpoint is reported as pending, not passed.
6. **Cosign.** When all holds, the party cosigns the newest checkpoint (consistency proof from the last size it
   cosigned) and the verifier's state moves forward. Otherwise nothing is cosigned or trusted, and the run
   raises :class:`VerificationFailed` with every problem it found.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sonata_dlt.client.checks import (
    CheckedCheckpoint,
    Leaf,
    PartyKeyInfo,
    b64decode,
    b64encode,
    check_receipt_matches,
    check_served_checkpoint,
    decode_proof,
    parse_leaf,
    parse_party_key,
    parse_receipt,
    verify_checkpoint_note,
)
from sonata_dlt.client.sonata import RESOURCE_APIS, ServerError, SonataClient
from sonata_dlt.client.trust_store import TrustStore
from sonata_dlt.errors import ConfigurationError, LedgerUnavailable, VerificationError
from sonata_dlt.ledger.base import AnchorReceipt, LedgerBackend
from sonata_dlt.ledger.local import verify_receipt_offline
from sonata_dlt.signing.keys import SigningKey, VerifierKey
from sonata_dlt.signing.note import cosign_checkpoint
from sonata_dlt.transparency.canonical import state_hash
from sonata_dlt.transparency.merkle import append_leaf, root_from_frontier, verify_consistency, verify_inclusion

_T = TypeVar("_T")
CONCURRENCY = 8  # resource checks in flight at once: enough to hide latency, gentle on a shared server


class VerificationFailed(VerificationError):
    """The run found problems; ``report`` holds them all (the message lists them too)."""

    def __init__(self, report: Report) -> None:
        lines = "\n".join(f"  - {problem}" for problem in report.problems)
        super().__init__(f"verification FAILED with {len(report.problems)} problem(s):\n{lines}")
        self.report = report


@dataclass
class Report:
    origin: str = ""
    tree_size: int = 0
    root_hash: bytes = b""
    passed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    cosigned: bool = False

    def text(self) -> str:
        head = f"log {self.origin} size {self.tree_size} root {self.root_hash.hex()}" if self.origin else "no log"
        parts = [head, *(f"ok: {line}" for line in self.passed), *(f"note: {line}" for line in self.notes)]
        parts += [f"PROBLEM: {line}" for line in self.problems]
        return "\n".join(parts)


@dataclass(frozen=True)
class VerifierOptions:
    cosign: bool = True
    cut: bool = False  # ask the server for a fresh checkpoint first, so it covers the latest changes
    anchor_wait_seconds: float = 30.0
    host_vkey: str | None = None  # pin this host key instead of trusting the first one seen
    resource_types: tuple[str, ...] = tuple(RESOURCE_APIS)


@dataclass
class _Run:
    """What one run learns, kept apart from the trust store until everything holds."""

    report: Report
    host: VerifierKey
    parties: list[PartyKeyInfo]
    me: PartyKeyInfo | None
    checkpoints: dict[int, CheckedCheckpoint] = field(default_factory=dict)
    served: dict[int, Mapping[str, Any]] = field(default_factory=dict)
    frontier: list[bytes] = field(default_factory=list)
    log_versions: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    states: dict[tuple[str, str], tuple[int, str, int]] = field(default_factory=dict)


class Verifier:
    def __init__(
        self,
        client: SonataClient,
        key: SigningKey,
        store: TrustStore,
        *,
        ledger_backend: str | None = None,
        ledger_options: Mapping[str, Any] | None = None,
        options: VerifierOptions | None = None,
    ) -> None:
        self.client = client
        self.key = key
        self.store = store
        self.ledger_backend = ledger_backend
        self.ledger_options = dict(ledger_options or {})
        self.ledger: LedgerBackend | None = None
        self.options = options or VerifierOptions()

    async def run(self) -> Report:
        """Verify, then cosign; return the report, or raise ``VerificationFailed`` listing every problem."""
        report = Report()
        if self.options.cut:
            await self.client.cut_checkpoint()
        listed = await self.client.checkpoints()
        if not listed:
            report.notes.append("the log has no checkpoint yet: nothing to verify")
            return report
        origin = str(listed[0].get("origin"))
        report.origin = origin
        try:
            run = await self._keys(origin, report)
            await self._checkpoints(run, origin, listed)
            target = max(run.checkpoints)
            report.tree_size, report.root_hash = target, run.checkpoints[target].body.root_hash
            await self._history(run, origin, target)
            await self._anchors(run, target)
            await self._resources(run, origin, target)
        except VerificationError as exc:
            report.problems.append(str(exc))
        except ServerError as exc:
            report.problems.append(f"the server could not answer what verification needs: {exc}")
        if report.problems:
            raise VerificationFailed(report)
        self._trust(run, origin, target)
        if self.options.cosign:
            await self._cosign(run, target)
        return report

    # -- 1. keys --------------------------------------------------------------------------------------------------

    async def _keys(self, origin: str, report: Report) -> _Run:
        mine = self.key.verifier()
        self.store.remember_own_key(mine.public_key, mine.to_vkey())
        keys = [parse_party_key(item) for item in await self.client.party_keys()]
        me = _find_key(keys, mine)
        if me is None and self.options.cosign:
            await self.client.register_party_key(mine.to_vkey())
            keys = [parse_party_key(item) for item in await self.client.party_keys()]
            me = _find_key(keys, mine)
            if me is None:
                raise VerificationError(f"the server accepted key {mine.to_vkey()} but does not list it")
            report.passed.append(f"registered this party's key {mine.name}+{mine.key_id.hex()} as {me.role}")
        hosts = [key for key in keys if key.role == "host"]
        if len(hosts) != 1:
            raise VerificationError(f"the server lists {len(hosts)} host keys, expected exactly one")
        listed_host = hosts[0].verifier.to_vkey()
        pinned = self.options.host_vkey or self.store.host_vkey(origin)
        if pinned is None:
            self.store.pin_host_vkey(origin, listed_host)
            report.notes.append(f"host key pinned on first use: {listed_host}")
            pinned = listed_host
        try:
            pinned_key = VerifierKey.from_vkey(pinned)
        except ConfigurationError as exc:
            raise VerificationError(f"the pinned host key is unusable: {exc}") from None
        if pinned_key.public_key != hosts[0].verifier.public_key or pinned_key.name != hosts[0].verifier.name:
            raise VerificationError(f"host key changed: the server lists {listed_host}, this verifier trusts {pinned}")
        parties = [key for key in keys if key.role in ("buyer", "seller")]
        return _Run(report=report, host=pinned_key, parties=parties, me=me)

    # -- 2. checkpoints -------------------------------------------------------------------------------------------

    async def _checkpoints(self, run: _Run, origin: str, listed: Sequence[Mapping[str, Any]]) -> None:
        for item in sorted(listed, key=lambda cp: int(cp.get("treeSize", 0))):
            note = str(item.get("note", "")).encode("utf-8")
            checked = verify_checkpoint_note(note, run.host, run.parties)
            check_served_checkpoint(item, checked)
            if checked.body.origin != origin:
                raise VerificationError(f"checkpoint {checked.body.size} names log {checked.body.origin!r}")
            for cosigner in checked.cosigners:
                if run.me is not None and cosigner.key.party_id == run.me.party_id:
                    if not self.store.is_own_key(cosigner.key.verifier.public_key):
                        raise VerificationError(
                            f"checkpoint {checked.body.size} carries a cosignature of {cosigner.key.party_id} by key "
                            f"{cosigner.key.verifier.to_vkey()}, which this party never held"
                        )
            self.store.remember_checkpoint(origin, checked.body.size, checked.body.root_hash, note)
            run.checkpoints[checked.body.size] = checked
            run.served[checked.body.size] = item
        endorsed = sum(1 for checked in run.checkpoints.values() if checked.endorsed)
        run.report.passed.append(
            f"{len(run.checkpoints)} checkpoint(s): host signature, cosignatures and fields verified, no fork "
            f"against {len(self.store.seen_sizes(origin))} remembered; {endorsed} endorsed by both parties"
        )

    # -- 3. history -----------------------------------------------------------------------------------------------

    async def _history(self, run: _Run, origin: str, target: int) -> None:
        trusted = self.store.trusted(origin)
        root = run.checkpoints[target].body.root_hash
        start, frontier = 0, []
        if trusted is not None:
            if target < trusted.size:
                raise VerificationError(
                    f"rollback: the newest checkpoint has size {target}, this verifier already trusted size "
                    f"{trusted.size}"
                )
            await self._consistency(trusted.size, trusted.root_hash, target, root)
            run.report.passed.append(f"consistency proof from trusted size {trusted.size} to {target}")
            start, frontier = trusted.size, list(trusted.frontier)
            # Checkpoints this verifier never saw below its trusted size must lie on the trusted history too.
            for size, checked in run.checkpoints.items():
                if size < trusted.size and self.store.seen_root(origin, size) == checked.body.root_hash:
                    continue
                if size < trusted.size:
                    await self._consistency(size, checked.body.root_hash, trusted.size, trusted.root_hash)
        run.frontier = await self._replay(run, origin, start, target, frontier)
        if target > start:
            run.report.passed.append(
                f"replayed leaves {start}..{target - 1}: records canonical, indices gap-free, versions increasing, "
                f"root recomputed at every checkpoint size"
            )

    async def _consistency(self, old_size: int, old_root: bytes, new_size: int, new_root: bytes) -> None:
        answer = await self.client.consistency_proof(old_size, new_size)
        proof = decode_proof(answer.get("proof"), f"consistency proof {old_size} -> {new_size}")
        served_old = b64decode(answer.get("fromRootHash"), "consistency proof fromRootHash")
        if old_size > 0 and served_old != old_root:
            raise VerificationError(
                f"forked history: the server's root at size {old_size} is {served_old.hex()}, the checkpoint this "
                f"verifier holds for that size has root {old_root.hex()}"
            )
        verify_consistency(old_size, new_size, old_root, new_root, proof)

    async def _replay(self, run: _Run, origin: str, start: int, target: int, frontier: list[bytes]) -> list[bytes]:
        size = start
        async with aclosing(self.client.leaves(start=start)) as leaves:
            async for item in leaves:
                if size >= target:
                    break
                leaf = parse_leaf(item)
                if leaf.index != size:
                    raise VerificationError(
                        f"leaf list jumps from index {size - 1} to {leaf.index}: leaf {size} is missing from the log"
                    )
                self._chain(run, origin, leaf)
                frontier, _ = append_leaf(frontier, size, leaf.hash)
                size += 1
                if size in run.checkpoints:
                    self._check_root(run, size, frontier)
        if size < target:
            raise VerificationError(f"the log serves {size} leaves, its newest checkpoint covers {target}")
        return frontier

    def _chain(self, run: _Run, origin: str, leaf: Leaf) -> None:
        key = (leaf.resource_type, leaf.resource_id)
        previous = run.log_versions.get(key) or self.store.log_version(origin, *key)
        if previous is not None and leaf.version <= previous[0]:
            raise VerificationError(
                f"{leaf.label}: version does not follow version {previous[0]} recorded at leaf {previous[1]}: "
                "leaf records do not chain"
            )
        run.log_versions[key] = (leaf.version, leaf.index)

    @staticmethod
    def _check_root(run: _Run, size: int, frontier: list[bytes]) -> None:
        computed = root_from_frontier(frontier)
        signed = run.checkpoints[size].body.root_hash
        if computed != signed:
            raise VerificationError(
                f"checkpoint of size {size}: its signed root is {signed.hex()}, the {size} leaves the log serves give "
                f"root {computed.hex()} (leaves deleted, swapped or rewritten, or a forked checkpoint)"
            )

    # -- 4. ledger ------------------------------------------------------------------------------------------------

    async def _anchors(self, run: _Run, target: int) -> None:
        if self.ledger_backend is not None and self.ledger is None:
            self.ledger = open_ledger(self.ledger_backend, self.ledger_options, run.host)
        deadline = time.monotonic() + self.options.anchor_wait_seconds
        item = run.served[target]
        while "anchorReceipt" not in item and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            item = await self.client.checkpoint(target)
        if "anchorReceipt" not in item:
            raise VerificationError(
                f"checkpoint of size {target} has no anchor receipt after {self.options.anchor_wait_seconds:g} s"
            )
        run.served[target] = item
        checked_on_ledger = 0
        for size, served in sorted(run.served.items()):
            if "anchorReceipt" not in served:
                continue
            receipt = parse_receipt(served["anchorReceipt"].get("receipt"), size)
            check_receipt_matches(receipt, run.checkpoints[size].body)
            where = await asyncio.to_thread(self.verify_receipt, receipt, run.host)
            checked_on_ledger += where == "ledger"
        anchored = sum(1 for served in run.served.values() if "anchorReceipt" in served)
        how = f"{checked_on_ledger} looked up on the {self.ledger.name} ledger" if self.ledger else "offline only"
        run.report.passed.append(f"{anchored} anchor receipt(s) match their checkpoints ({how})")

    def verify_receipt(self, receipt: AnchorReceipt, host: VerifierKey) -> str:
        """Check one receipt; return "ledger" when the ledger itself was consulted, "offline" otherwise."""
        if receipt.backend == "local":
            verify_receipt_offline(receipt, journal_key(self.ledger_options, host))
        if self.ledger is None:
            if receipt.backend != "local":
                raise VerificationError(
                    f"the receipt of size {receipt.size} is on the {receipt.backend} ledger: give --ledger-backend "
                    f"{receipt.backend} and its options to look it up"
                )
            return "offline"
        if self.ledger.name != receipt.backend:
            raise VerificationError(f"receipt of size {receipt.size} is from {receipt.backend}, not {self.ledger.name}")
        try:
            self.ledger.verify_anchor(receipt)
        except VerificationError as exc:
            raise VerificationError(f"checkpoint of size {receipt.size} is not on the ledger: {exc}") from None
        except LedgerUnavailable as exc:
            raise VerificationError(f"checkpoint of size {receipt.size}: the ledger cannot be read: {exc}") from None
        return "ledger"

    # -- 5. resources ---------------------------------------------------------------------------------------------

    async def _resources(self, run: _Run, origin: str, target: int) -> None:
        wanted: set[tuple[str, str]] = set(self.store.known_resources(origin)) | set(run.log_versions)
        offered: list[str] = []
        for resource_type in self.options.resource_types:
            ids = await self.client.resource_ids(resource_type)
            if ids is not None:
                offered.append(resource_type)
                wanted.update((resource_type, resource_id) for resource_id in ids)
        checkable = sorted(key for key in wanted if key[0] in self.options.resource_types)
        skipped = len(wanted) - len(checkable)
        gate = asyncio.Semaphore(CONCURRENCY)
        results = await asyncio.gather(
            *(_gated(gate, self._resource(run, origin, target, *key)) for key in checkable), return_exceptions=True
        )
        pending = elsewhere = 0
        for key, result in zip(checkable, results, strict=True):
            if isinstance(result, VerificationError):
                run.report.problems.append(str(result))
            elif isinstance(result, ServerError):
                run.report.problems.append(f"{key[0]} {key[1]}: the server could not answer: {result}")
            elif isinstance(result, BaseException):
                raise result
            elif result == "pending":
                pending += 1
            elif result == "elsewhere":
                elsewhere += 1
        checked = len(checkable) - pending - elsewhere
        run.report.passed.append(
            f"{checked} resource(s) ({', '.join(offered)}) hash to their latest leaf, proven in checkpoint {target}"
        )
        if pending:
            run.report.notes.append(f"{pending} resource(s) changed after checkpoint {target}; checked next run")
        if skipped:
            run.report.notes.append(f"{skipped} logged resource(s) of types without a Sonata API here: not fetched")
        if elsewhere:
            run.report.notes.append(f"{elsewhere} listed resource(s) belong to the caller's other bilaterals: skipped")

    async def _resource(self, run: _Run, origin: str, target: int, resource_type: str, resource_id: str) -> str:
        label = f"{resource_type} {resource_id}"
        try:
            document = await self.client.resource(resource_type, resource_id)
        except ServerError as exc:
            logged_before = (resource_type, resource_id) in self.store.known_resources(origin)
            if exc.status == 404 and ((resource_type, resource_id) in run.log_versions or logged_before):
                raise VerificationError(f"{label} is in the log but the Sonata API no longer serves it") from None
            raise
        logged_here = (resource_type, resource_id) in run.log_versions or self.store.known_state(
            origin, resource_type, resource_id
        )
        if not logged_here and self.client.names_another_bilateral(document):
            return "elsewhere"
        found = state_hash(document).hex()
        answer = await self.client.inclusion_proof(
            tree_size=target, resource_type=resource_type, resource_id=resource_id
        )
        if answer is None:
            if await self._changed_after(resource_type, resource_id, target):
                return "pending"
            raise VerificationError(f"{label} is served by the Sonata API but has no leaf in the log")
        leaf = parse_leaf(answer.get("leaf", {}))
        if (leaf.resource_type, leaf.resource_id) != (resource_type, resource_id) or leaf.index >= target:
            raise VerificationError(f"{label}: the server proved {leaf.label} in a tree of size {target} instead")
        proof = decode_proof(answer.get("proof"), f"inclusion proof of {leaf.label}")
        try:
            verify_inclusion(leaf.hash, leaf.index, target, proof, run.checkpoints[target].body.root_hash)
        except VerificationError as exc:
            raise VerificationError(f"{label}: {exc}") from None
        logged = run.log_versions.get((resource_type, resource_id)) or self.store.log_version(
            origin, resource_type, resource_id
        )
        if logged is not None and leaf.version < logged[0]:
            raise VerificationError(
                f"{label}: the log now proves version {leaf.version} (leaf {leaf.index}) as the latest, but version "
                f"{logged[0]} was recorded at leaf {logged[1]}: a leaf was removed"
            )
        if leaf.state_hash != found:
            if await self._changed_after(resource_type, resource_id, target):
                return "pending"
            raise VerificationError(
                f"{label}: the served document hashes to {found}, but its latest {leaf.label} records stateHash "
                f"{leaf.state_hash} (the stored document was changed without a logged change)"
            )
        known = self.store.known_state(origin, resource_type, resource_id)
        if known is not None and (
            leaf.version < known.version or (leaf.version == known.version and known.state_hash != found)
        ):
            raise VerificationError(
                f"{label}: now version {leaf.version} with state {found}, this verifier saw version {known.version} "
                f"with state {known.state_hash}"
            )
        run.states[(resource_type, resource_id)] = (leaf.version, found, leaf.index)
        return "ok"

    async def _changed_after(self, resource_type: str, resource_id: str, target: int) -> bool:
        async with aclosing(self.client.leaves(resource_type=resource_type, resource_id=resource_id)) as leaves:
            async for item in leaves:
                if int(item.get("leafIndex", -1)) >= target:
                    return True
        return False

    # -- 6. trust and cosign --------------------------------------------------------------------------------------

    def _trust(self, run: _Run, origin: str, target: int) -> None:
        checked = run.checkpoints[target]
        self.store.set_trusted(origin, target, checked.body.root_hash, run.frontier)
        for (kind, ident), (version, index) in run.log_versions.items():
            self.store.remember_log_version(origin, kind, ident, version, index)
        for (kind, ident), (version, hashed, index) in run.states.items():
            self.store.remember_state(origin, kind, ident, version, hashed, index)
        self.store.commit()

    async def _cosign(self, run: _Run, target: int) -> None:
        me = run.me
        if me is None:
            raise RuntimeError("cosigning needs the party's key to be registered; _keys does that")
        mine = [
            size
            for size, checked in run.checkpoints.items()
            if any(cosigner.key.party_id == me.party_id for cosigner in checked.cosigners)
        ]
        old_size = max(mine, default=0)
        if old_size == target:
            run.report.notes.append(f"checkpoint {target} was already cosigned by {me.role} {me.party_id}")
            return
        checked = run.checkpoints[target]
        answer = await self.client.consistency_proof(old_size, target)
        proof = decode_proof(answer.get("proof"), f"consistency proof {old_size} -> {target}")
        old_root = run.checkpoints[old_size].body.root_hash if old_size else b64decode(answer["fromRootHash"], "root")
        verify_consistency(old_size, target, old_root, checked.body.root_hash, proof)
        line = cosign_checkpoint(checked.body.body(), self.key, int(datetime.now(UTC).timestamp()))
        note = checked.note.decode("utf-8")
        await self.client.cosign(note, old_size, [b64encode(element) for element in proof], line)
        run.report.cosigned = True
        run.report.passed.append(f"cosigned checkpoint {target} as {me.role} {me.party_id} (from size {old_size})")


def _find_key(keys: Sequence[PartyKeyInfo], mine: VerifierKey) -> PartyKeyInfo | None:
    for key in keys:
        if key.role != "host" and (key.verifier.name, key.verifier.public_key) == (mine.name, mine.public_key):
            return key
    return None


async def _gated(gate: asyncio.Semaphore, work: Awaitable[_T]) -> _T:
    async with gate:
        return await work


def open_ledger(backend: str, options: Mapping[str, Any], host: VerifierKey) -> LedgerBackend:
    """The ledger anchors are looked up on. A ``local`` journal is signed with the host key unless its
    ``verify_key`` option says otherwise, and a verifier never needs (or gets) its signing key."""
    from sonata_dlt.ledger import open_backend

    options = dict(options)
    if backend == "local":
        options.pop("signing_key_seed", None)
        options.pop("signing_key_path", None)
        options.setdefault("verify_key", host.public_key)
    return open_backend(backend, options)


def journal_key(options: Mapping[str, Any], host: VerifierKey) -> bytes:
    """The public key ``local`` receipts verify under offline: the ``verify_key`` option, else the host key."""
    value = options.get("verify_key")
    if value is None:
        return host.public_key
    if isinstance(value, bytes):
        return value
    try:
        return bytes.fromhex(str(value))
    except ValueError:
        raise ConfigurationError("ledger option verify_key is not hex") from None


__all__ = ["Report", "VerificationFailed", "Verifier", "VerifierOptions"]
