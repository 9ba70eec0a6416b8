"""``python -m conformance`` / ``sonata-conformance``: run the suite against any Sonata server.

    python -m conformance --url http://127.0.0.1:8080 --token T [--seller-token T2] \\
        --spec openapi/productOrderManagement.api.yaml [--spec ...] [--max-examples N] [--report FILE]

For each spec the server mounts (probed with a GET on one of its collections), schemathesis runs every check in
every phase, then our scenario checks run. A per-operation table and the total are printed; the exit status is 1
on any failure (2 when nothing could be tested).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml

from conformance import exclusions, fuzzing, scenarios


def base_path(spec: dict[str, Any]) -> str:
    url = str(spec.get("servers", [{"url": "/"}])[0]["url"])
    return "/" + re.sub(r"^[a-z]+://[^/]+", "", url).strip("/")


def is_mounted(api_url: str, spec: dict[str, Any], token: str) -> bool:
    """True when a collection of the spec answers anything but 404 (a routing miss)."""
    for path, item in spec.get("paths", {}).items():
        if "get" in item and "{" not in path:
            try:
                response = httpx.get(api_url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            except httpx.HTTPError:
                return False
            return response.status_code != 404
    return False


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sonata-conformance", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="server origin, e.g. http://127.0.0.1:8080")
    parser.add_argument("--token", required=True, help="bearer token of a buyer")
    parser.add_argument("--seller-token", help="bearer token of the seller of the same bilateral")
    parser.add_argument("--spec", action="append", required=True, type=Path, help="OpenAPI file (repeatable)")
    parser.add_argument("--max-examples", type=int, default=25, help="schemathesis examples per operation")
    parser.add_argument("--seed", type=int, default=1, help="schemathesis seed (reproducible runs)")
    parser.add_argument("--report", type=Path, help="write the results as JSON here")
    parser.add_argument("--skip-fuzzing", action="store_true", help="only the scenario checks")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    origin = args.url.rstrip("/")
    rows: list[dict[str, Any]] = []
    applied: list[exclusions.Exclusion] = []
    tested = 0
    for spec_path in args.spec:
        spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
        api_url = origin + base_path(spec)
        if not is_mounted(api_url, spec, args.token):
            print(f"-- {spec_path.name}: not mounted at {api_url}; skipped")
            continue
        tested += 1
        excluded = exclusions.for_spec(str(spec.get("info", {}).get("title", "")))
        applied.extend(excluded)
        print(f"-- {spec_path.name} at {api_url}", flush=True)
        if not args.skip_fuzzing:
            for result in fuzzing.run(
                spec_path,
                spec,
                api_url,
                args.token,
                max_examples=args.max_examples,
                exclusions=excluded,
                seed=args.seed,
            ):
                rows.append(
                    {
                        "spec": result.spec,
                        "operation": result.operation,
                        "layer": "schemathesis",
                        "checks": result.checks_run,
                        "failures": result.failures,
                    }
                )
        for scenario in scenarios.run(api_url, args.token, args.seller_token, spec_path.name, spec):
            rows.append(
                {
                    "spec": scenario.spec,
                    "operation": scenario.name,
                    "layer": "scenario",
                    "checks": scenario.checks_run,
                    "failures": scenario.failures,
                }
            )
    print_report(rows, applied)
    if args.report:
        args.report.write_text(
            json.dumps({"results": rows, "exclusions": [vars(e) for e in applied]}, indent=2), encoding="utf-8"
        )
    if tested == 0:
        print("no spec is mounted by this server: nothing was tested")
        return 2
    return 1 if any(row["failures"] for row in rows) else 0


def print_report(rows: list[dict[str, Any]], applied: list[exclusions.Exclusion]) -> None:
    width = max([len(row["operation"]) for row in rows] + [20])
    print()
    print(f"{'spec':<38} {'operation':<{width}} {'layer':<12} {'checks':>7} {'failures':>8}")
    for row in rows:
        print(
            f"{row['spec']:<38} {row['operation']:<{width}} {row['layer']:<12} "
            f"{row['checks']:>7} {len(row['failures']):>8}"
        )
    total_checks = sum(row["checks"] for row in rows)
    total_failures = sum(len(row["failures"]) for row in rows)
    print(f"{'TOTAL':<38} {'':<{width}} {'':<12} {total_checks:>7} {total_failures:>8}")
    for row in rows:
        for key, detail in row["failures"].items():
            print(f"\nFAIL {row['spec']} {row['operation']}: {key}\n    {detail}")
    if applied:
        print("\nExclusions applied (known MEF spec defects; one check on one operation each):")
        for exclusion in applied:
            print(f"  - {exclusion.operation_id}: {exclusion.check} off. {exclusion.reason}")


if __name__ == "__main__":
    sys.exit(main())
