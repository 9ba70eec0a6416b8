"""Running schemathesis 4 against one spec and reading back per-operation results.

The CLI runs in a subprocess (its engine owns the process: signal handling, hypothesis database, output), with
every check, the examples, coverage, fuzzing and stateful phases, and an NDJSON report that records each check
run per test case. Before the run the spec gets OpenAPI ``links`` from each ``POST <collection>`` (201, body
``id``) to the operations on ``<collection>/{id}``: Sonata specs declare none, and without them the stateful
phase cannot chain a create into a retrieve, patch or delete.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from conformance.exclusions import Exclusion, schemathesis_config

PHASES = "examples,coverage,fuzzing,stateful"
HTTP_METHODS = ("get", "put", "post", "delete", "patch")


@dataclass
class OperationResult:
    spec: str
    operation: str  # "METHOD /path"
    checks_run: int = 0
    failures: dict[str, str] = field(default_factory=dict)  # one entry per distinct failing check + status


def with_links(spec: dict[str, Any]) -> dict[str, Any]:
    linked = copy.deepcopy(spec)
    paths = linked.get("paths", {})
    for path, item in paths.items():
        post = item.get("post")
        created = (post or {}).get("responses", {}).get("201")
        if not created:
            continue
        for sub_path, sub_item in paths.items():
            match = re.fullmatch(re.escape(path) + r"/\{([^}/]+)\}", sub_path)
            if not match:
                continue
            for method in HTTP_METHODS:
                target = sub_item.get(method)
                if target and target.get("operationId"):
                    created.setdefault("links", {})[f"{method}{target['operationId']}"] = {
                        "operationId": target["operationId"],
                        "parameters": {match.group(1): "$response.body#/id"},
                    }
    return linked


# schemathesis' default expectation for schema-valid requests, plus 422 (see business_rule_statuses).
POSITIVE_EXPECTED = ["2xx", "3xx", 401, 403, 404, 409, 422, 429, "5xx"]


def business_rule_statuses(spec: dict[str, Any]) -> str:
    """Accept 422 for schema-valid data on the operations whose spec documents a 422.

    Sonata's 422 (Error422: missingProperty, invalidValue, referenceNotFound...) *is* the answer to a schema-valid
    request that breaks a business rule (MEF 123 §7.1.1), e.g. an order without a productOrderContact. Only
    operations that document 422 get this; everywhere else a rejected valid request still fails.
    """
    blocks = []
    for item in spec.get("paths", {}).values():
        for method in HTTP_METHODS:
            operation = item.get(method) or {}
            if "422" in operation.get("responses", {}) and operation.get("operationId"):
                blocks.append(
                    "[[operations]]\n"
                    f'include-operation-id = "{operation["operationId"]}"\n'
                    f"checks.positive_data_acceptance.expected-statuses = {json.dumps(POSITIVE_EXPECTED)}\n"
                )
    return "\n".join(blocks)


def run(
    spec_path: Path,
    spec: dict[str, Any],
    api_url: str,
    token: str,
    *,
    max_examples: int,
    exclusions: list[Exclusion],
    seed: int,
    workdir: Path | None = None,
) -> list[OperationResult]:
    with tempfile.TemporaryDirectory(prefix="sonata-conformance-", dir=workdir) as tmp:
        directory = Path(tmp)
        linked = directory / spec_path.name
        linked.write_text(yaml.safe_dump(with_links(spec), sort_keys=False), encoding="utf-8")
        config = directory / "schemathesis.toml"
        config.write_text(schemathesis_config(exclusions) + "\n" + business_rule_statuses(spec), encoding="utf-8")
        ndjson = directory / "events.ndjson"
        command = [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "run",
            str(linked),
            "--url",
            api_url,
            "--header",
            f"Authorization: Bearer {token}",  # MEF's specs declare no security: add the credential ourselves
            "--checks",
            "all",
            "--phases",
            PHASES,
            "--max-examples",
            str(max_examples),
            "--workers",
            "1",
            "--seed",
            str(seed),
            "--request-timeout",
            "30",
            "--report",
            "ndjson",
            "--report-ndjson-path",
            str(ndjson),
            "--no-shrink",
        ]
        completed = subprocess.run(command, capture_output=True, text=True, cwd=directory, check=False)
        if not ndjson.exists():
            raise RuntimeError(f"schemathesis did not run for {spec_path}:\n{completed.stdout}\n{completed.stderr}")
        return parse_ndjson(spec_path.name, ndjson, excluded_checks(spec, exclusions))


def excluded_checks(spec: dict[str, Any], exclusions: list[Exclusion]) -> dict[str, set[str]]:
    """``"METHOD /path"`` -> the checks excluded there. Applied to the results as well as to schemathesis' config,
    because ``--checks all`` on its command line wins over a check switched off per operation in the config."""
    by_operation_id: dict[str, set[str]] = defaultdict(set)
    for exclusion in exclusions:
        by_operation_id[exclusion.operation_id].add(exclusion.check)
    excluded: dict[str, set[str]] = defaultdict(set)
    for path, item in spec.get("paths", {}).items():
        for method in HTTP_METHODS:
            operation_id = (item.get(method) or {}).get("operationId")
            if operation_id in by_operation_id:
                excluded[f"{method.upper()} {path}"] |= by_operation_id[operation_id]
    return excluded


def parse_ndjson(spec_name: str, path: Path, excluded: dict[str, set[str]] | None = None) -> list[OperationResult]:
    results: dict[str, OperationResult] = {}
    seen: dict[str, set[tuple[str, int]]] = defaultdict(set)
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            event = json.loads(line)
            finished = event.get("ScenarioFinished")
            if not finished or "recorder" not in finished:
                continue
            recorder = finished["recorder"]
            for case_id, checks in recorder.get("checks", {}).items():
                case = recorder["cases"].get(case_id, {}).get("value", {})
                label = str(recorder.get("label", ""))
                # Unit phases label the scenario with its operation (also for the TRACE probes of that
                # operation); the stateful phase chains several, so its cases name their own.
                stateful = finished.get("phase") == "stateful" or not label.split(" ")[0].isupper()
                operation = f"{case.get('method', '?')} {case.get('path', '?')}" if stateful else label
                result = results.setdefault(operation, OperationResult(spec_name, operation))
                interaction = recorder.get("interactions", {}).get(case_id) or {}
                for check in checks:
                    result.checks_run += 1
                    if check.get("status") != "failure" or check["name"] in (excluded or {}).get(operation, ()):
                        continue
                    status = (interaction.get("response") or {}).get("status_code", 0)
                    key = (check["name"], status)
                    if key in seen[operation]:
                        continue
                    seen[operation].add(key)
                    result.failures[f"{check['name']} [{status}]"] = describe(case, interaction, check)
    return sorted(results.values(), key=lambda r: r.operation)


def describe(case: dict[str, Any], interaction: dict[str, Any], check: dict[str, Any]) -> str:
    request = interaction.get("request") or {}
    response = interaction.get("response") or {}
    body = ""
    content = response.get("content")
    if isinstance(content, dict) and "$base64" in content:
        body = base64.b64decode(content["$base64"]).decode("utf-8", "replace")[:400]
    sent = request.get("body")
    if isinstance(sent, dict) and "$base64" in sent:
        sent = base64.b64decode(sent["$base64"]).decode("utf-8", "replace")[:400]
    detail = {key: value for key, value in check.items() if key not in ("name", "status")}
    return (
        f"{request.get('method', case.get('method'))} {request.get('uri', case.get('path'))}"
        f"{' body ' + str(sent) if sent else ''} -> {response.get('status_code')} {body}"
        f"{' ' + json.dumps(detail)[:400] if detail else ''}"
    )
