"""Writers to one SQLite file queue on ``WriterLock``: threads on its lock, processes on its ``flock``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sonata_dlt.storage.db import Database, WriterLock

fcntl = pytest.importorskip("fcntl", reason="flock is POSIX-only; elsewhere processes meet at SQLite's own lock")

# Another process tries the lock without waiting: exit status 0 if it got it, 1 if a holder kept it out.
PROBE = """
import fcntl, os, sys
descriptor = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    sys.exit(1)
sys.exit(0)
"""


def _other_process_gets_it(lock_file: Path) -> bool:
    return subprocess.run([sys.executable, "-c", PROBE, str(lock_file)], check=False).returncode == 0


def test_a_write_transaction_keeps_other_processes_out_until_it_ends(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'lock.sqlite'}")
    lock_file = tmp_path / "lock.sqlite-writer.lock"
    try:
        with database.write():
            assert lock_file.exists()
            assert not _other_process_gets_it(lock_file)
        assert _other_process_gets_it(lock_file)
    finally:
        database.dispose()


def test_a_failed_wait_leaves_the_lock_free(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock = WriterLock(str(tmp_path / "db.sqlite"))

    def interrupted(*_args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(fcntl, "flock", interrupted)
    with pytest.raises(KeyboardInterrupt), lock:
        pass
    monkeypatch.undo()
    with lock:  # the thread lock was given back: this does not hang
        pass
    lock.close()
