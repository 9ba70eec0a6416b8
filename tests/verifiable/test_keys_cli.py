"""``sonata-dlt keys generate`` / ``keys show``."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sonata_dlt.cli import main
from sonata_dlt.signing.keys import SigningKey, VerifierKey


def test_generate_writes_a_private_key_and_prints_its_vkey(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "buyer.key"
    assert main(["keys", "generate", "--name", "buyer-1", "--out", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    printed = capsys.readouterr().out
    vkey = printed.splitlines()[0].removeprefix("vkey: ")
    assert VerifierKey.from_vkey(vkey) == SigningKey.load(out).verifier()

    assert main(["keys", "show", str(out)]) == 0
    assert capsys.readouterr().out == printed
    assert main(["keys", "generate", "--name", "buyer-1", "--out", str(out)]) == 2  # never overwrites
    assert "refusing to overwrite" in capsys.readouterr().out
