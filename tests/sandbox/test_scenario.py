"""Scenario files: the default one validates, mistakes are caught before anything starts, expectations scale."""

from __future__ import annotations

import asyncio
import io
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from sonata_dlt.errors import ConfigurationError
from sonata_dlt.sandbox.narration import Narrator
from sonata_dlt.sandbox.processes import StartFailed
from sonata_dlt.sandbox.scenario import Bound, default_scenario_path, load_scenario
from sonata_dlt.sandbox.session import Options, run_sandbox
from sonata_dlt.sandbox.topology import make_topology, server_settings, write_toml
from sonata_dlt.settings import Settings


def _write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def _minimal(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": "t",
        "operators": ["A", "B"],
        "period": {"start": "2025-03-01T00:00:00Z", "end": "2025-04-01T00:00:00Z"},
        "steps": [
            {
                "do": "order",
                "ref": "x",
                "buyer": "A",
                "seller": "B",
                "product": "accessEline",
                "bandwidthMbps": 100,
                "site": "S",
            }
        ],
        "expectations": {"orders.total": 1, "alarms": {"equals": 0}},
    }
    document.update(overrides)
    return document


def _dispute(**overrides: Any) -> dict[str, Any]:
    step: dict[str, Any] = {
        "do": "dispute",
        "buyer": "A",
        "seller": "B",
        "target": "customerBill",
        "reason": "r",
        "proposal": {"outcome": "noChange", "description": "d"},
    }
    step.update(overrides)
    return step


def test_default_scenario_validates() -> None:
    scenario = load_scenario(default_scenario_path())
    assert scenario.operators == ["OPERATOR-A", "OPERATOR-B"]
    assert scenario.period.start < scenario.period.end
    assert "orders.total" in scenario.expectations


def test_the_default_month_bills_whole_months_in_advance() -> None:
    # Its hand-worked bills need a period every product is in force for, start to end: the next calendar month.
    scenario = load_scenario(default_scenario_path())
    start, end = scenario.period.start, scenario.period.end
    assert start > datetime.now(UTC) and start.day == end.day == 1 and start.hour == end.hour == 0
    assert (end.year * 12 + end.month) - (start.year * 12 + start.month) == 1
    assert scenario.bound("settlement.net", 2) == Bound(equals=1080)


def test_a_dispute_is_proposed_by_the_other_side_unless_named(tmp_path: Path) -> None:
    step = _dispute(raisedBy="seller")
    scenario = load_scenario(_write(tmp_path, _minimal(steps=[step, _dispute(proposedBy="buyer")])))
    first, second = scenario.steps
    assert first.proposer == "buyer" and second.proposer == "buyer"


def test_plain_numbers_scale_and_bounds_do_not(tmp_path: Path) -> None:
    scenario = load_scenario(_write(tmp_path, _minimal()))
    assert scenario.bound("orders.total", 3) == Bound(equals=3)
    assert scenario.bound("alarms", 3) == Bound(equals=0)
    assert not Bound(min=2).check(1) and Bound(min=2).check(2)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"steps": [{"do": "accept", "ref": "nope"}]}, "names no earlier order step"),
        (
            {
                "steps": [
                    {
                        "do": "order",
                        "ref": "x",
                        "buyer": "C",
                        "seller": "B",
                        "product": "accessEline",
                        "bandwidthMbps": 1,
                        "site": "S",
                    }
                ]
            },
            "is not one of the operators",
        ),
        ({"steps": [{"do": "teleport"}]}, "teleport"),
        ({"period": {"start": "2025-04-01T00:00:00Z", "end": "2025-03-01T00:00:00Z"}}, "after its start"),
        ({"expectations": {"x": {}}}, "equals, min or max"),
        ({"steps": [_dispute(proposal={"outcome": "credit", "description": "d"})]}, "need an amount"),
        ({"steps": [_dispute(proposal={"outcome": "noChange", "amount": 5, "description": "d"})]}, "takes none"),
        ({"steps": [_dispute(target="customerBillItem")]}, "need the ref of an order group"),
        ({"steps": [_dispute(target="customerBill", ref="x")]}, "need the ref of an order group"),
    ],
)
def test_mistakes_are_refused_with_a_reason(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_scenario(_write(tmp_path, _minimal(**change)))


def test_server_settings_file_loads_as_settings(tmp_path: Path) -> None:
    topology = make_topology(["A", "B"])
    path = tmp_path / "server.toml"
    write_toml(server_settings(topology, tmp_path, checkpoint_seconds=2.0), path)
    assert tomllib.loads(path.read_text())["port"] == topology.server_port
    settings = Settings.load(path)
    assert {(b.buyer_id, b.seller_id) for b in settings.bilaterals} == {("A", "B"), ("B", "A")}
    assert {(t.party_id, t.role.value) for t in settings.tokens} == {
        ("A", "buyer"),
        ("A", "seller"),
        ("B", "buyer"),
        ("B", "seller"),
    }
    assert settings.host == "127.0.0.1"
    assert path.stat().st_mode & 0o077 == 0  # the tokens are not readable by others


def test_a_work_dir_of_an_earlier_run_is_refused(tmp_path: Path) -> None:
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "sonata.sqlite").write_bytes(b"")
    options = Options(load_scenario(default_scenario_path()), work_dir=tmp_path)
    with pytest.raises(StartFailed, match="earlier sandbox run"):
        asyncio.run(run_sandbox(options, Narrator(io.StringIO())))
