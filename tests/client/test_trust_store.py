"""The verifier's local memory: forks are caught against every checkpoint ever seen, and kept as evidence."""

from __future__ import annotations

from pathlib import Path

import pytest

from sonata_dlt.client.trust_store import TrustStore
from sonata_dlt.errors import VerificationError

ORIGIN = "example.net/bilateral/1"


def test_fork_is_refused_and_remembered_across_runs(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with TrustStore.open(path) as store:
        assert store.remember_checkpoint(ORIGIN, 4, b"\x01" * 32, b"note-a")
        assert not store.remember_checkpoint(ORIGIN, 4, b"\x01" * 32, b"note-a")
    with TrustStore.open(path) as store:
        with pytest.raises(VerificationError, match="forked history: the checkpoint of size 4 now has root 0202"):
            store.remember_checkpoint(ORIGIN, 4, b"\x02" * 32, b"note-b")
        assert store.seen_root(ORIGIN, 4) == b"\x01" * 32  # the first root stays the reference
        assert store.seen_sizes(ORIGIN) == [4]


def test_trusted_state_commits_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with TrustStore.open(path) as store:
        store.set_trusted(ORIGIN, 3, b"\x03" * 32, [b"\x04" * 32, b"\x05" * 32])
        store.remember_state(ORIGIN, "productOrder", "o-1", 2, "ab", 1)
    with TrustStore.open(path) as store:
        assert store.trusted(ORIGIN) is None  # a failed run leaves no trust behind
        store.set_trusted(ORIGIN, 3, b"\x03" * 32, [b"\x04" * 32, b"\x05" * 32])
        store.remember_state(ORIGIN, "productOrder", "o-1", 2, "ab", 1)
        store.commit()
    with TrustStore.open(path) as store:
        trusted = store.trusted(ORIGIN)
        assert trusted is not None and trusted.frontier == [b"\x04" * 32, b"\x05" * 32]
        known = store.known_state(ORIGIN, "productOrder", "o-1")
        assert known is not None and (known.version, known.state_hash) == (2, "ab")
