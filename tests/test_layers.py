"""The package's shape: one-way layers, no import cycles, and rooms of a readable size.

Checked statically from every import statement of every module (imports inside functions and under
``TYPE_CHECKING`` count too), so a violation fails before anyone runs it. The order is the package map's
(``src/sonata_dlt/__init__.py``): a package may import only packages in tiers below its own.
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "sonata_dlt"
GENERATED = PACKAGE / "storage" / "migrations" / "versions"  # Alembic's revisions: generated, never imported by us
WEB_FRAMEWORKS = ("connexion", "starlette", "uvicorn")

# Top to bottom. A package may import packages of lower tiers only; packages of one tier never import each other.
TIERS: tuple[tuple[str, ...], ...] = (
    ("cli",),
    ("sandbox",),
    ("party_node",),
    ("client",),
    ("api",),
    ("startup",),
    ("bilateral",),
    ("sonata",),
    ("verifiable_log",),
    ("core",),
    ("notify", "ledger", "access", "metrics"),
    ("storage", "transparency", "signing"),
    ("settings", "logs", "bilateral_id", "base_paths"),
    ("errors",),
)
# Pure packages take and return values: the standard library, the allowed third parties, and the listed ours.
PURE: dict[str, tuple[str, ...]] = {
    "transparency": ("errors", "transparency"),
    "signing": ("errors", "signing"),
    "bilateral.rating": ("errors", "bilateral.rating"),
}
PURE_THIRD_PARTY = ("cryptography",)
# The parties' own software believes only what it can check: it imports no server code.
PARTY_SIDE = ("client", "party_node", "sandbox")
PARTY_SIDE_MAY_IMPORT = (
    "client", "party_node", "sandbox", "transparency", "signing", "ledger", "bilateral.rating",
    "settings", "logs", "bilateral_id", "base_paths", "errors",
)  # fmt: skip
# Below the API nothing speaks HTTP-framework.
FRAMEWORK_FREE = tuple(name for tier in TIERS[TIERS.index(("startup",)) :] for name in tier)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py")) if GENERATED not in path.parents}


@cache
def imports_of(path: Path) -> tuple[str, ...]:
    """Every module of ours or other that ``path`` imports, anywhere in the file, resolved to modules where the
    name imported is a module (``from sonata_dlt.core import runtime`` imports ``sonata_dlt.core.runtime``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import (the package uses absolute imports only)"
            assert node.module is not None
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                names.append(child if child in modules() else node.module)
    return tuple(names)


def package_of(name: str) -> str:
    """The layer a module of ours belongs to: its top-level package, or ``bilateral.rating``."""
    parts = name.split(".")
    if parts[1:3] == ["bilateral", "rating"]:
        return "bilateral.rating"
    return parts[1] if len(parts) > 1 else ""


def tier_of(package: str) -> int:
    top = package.split(".")[0]
    for index, tier in enumerate(TIERS):
        if top in tier:
            return index
    raise AssertionError(f"package {package!r} is not in the layer order: add it to TIERS and the package map")


def ours(name: str) -> bool:
    return name.startswith("sonata_dlt.")


def test_every_package_has_a_place_in_the_order() -> None:
    packages = {package_of(name) for name in modules() if name != "sonata_dlt"}
    for package in packages:
        tier_of(package)


def test_imports_point_down_the_order() -> None:
    problems = []
    for name, path in modules().items():
        if name == "sonata_dlt":
            continue
        mine = package_of(name)
        for imported in imports_of(path):
            if not ours(imported) or imported == "sonata_dlt":
                continue
            theirs = package_of(imported)
            if theirs.split(".")[0] == mine.split(".")[0]:
                continue
            if tier_of(theirs) <= tier_of(mine):
                problems.append(f"{name} imports {imported} ({theirs} is not below {mine})")
    assert problems == []


def test_party_side_imports_no_server_code() -> None:
    problems = [
        f"{name} imports {imported}"
        for name, path in modules().items()
        if package_of(name) in PARTY_SIDE
        for imported in imports_of(path)
        if ours(imported) and package_of(imported) not in PARTY_SIDE_MAY_IMPORT
    ]
    assert problems == []


def test_below_the_api_nothing_imports_the_web_framework() -> None:
    problems = [
        f"{name} imports {imported}"
        for name, path in modules().items()
        if name != "sonata_dlt" and package_of(name).split(".")[0] in FRAMEWORK_FREE
        for imported in imports_of(path)
        if imported.split(".")[0] in WEB_FRAMEWORKS
    ]
    assert problems == []


@pytest.mark.parametrize("pure", sorted(PURE))
def test_pure_packages_import_only_the_standard_library(pure: str) -> None:
    problems = []
    for name, path in modules().items():
        if package_of(name) != pure:
            continue
        for imported in imports_of(path):
            top = imported.split(".")[0]
            if ours(imported):
                if package_of(imported) not in PURE[pure]:
                    problems.append(f"{name} imports {imported}")
            elif top not in sys.stdlib_module_names and top not in PURE_THIRD_PARTY and top != "__future__":
                problems.append(f"{name} imports {imported}")
    assert problems == []


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (or a module importing itself): Tarjan's."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_import_cycle_finder_finds_cycles() -> None:
    # A guard that cannot fail protects nothing: it must see a planted cycle, and nothing in a tree.
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_no_import_cycles_anywhere() -> None:
    graph = {
        name: {imported for imported in imports_of(path) if imported in modules() and imported != name}
        for name, path in modules().items()
    }
    assert import_cycles(graph) == []


def lines_of(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_no_hand_written_module_is_over_600_lines() -> None:
    long = {name: lines_of(path) for name, path in modules().items() if lines_of(path) > 600}
    assert long == {}


def test_no_direct_subpackage_holds_over_30_percent_of_the_lines() -> None:
    total = sum(lines_of(path) for path in modules().values())
    shares = {}
    for child in PACKAGE.iterdir():
        if child.is_dir() and (child / "__init__.py").exists():
            lines = sum(lines_of(path) for name, path in modules().items() if path.is_relative_to(child))
            shares[child.name] = lines / total
    assert shares and {name: f"{share:.0%}" for name, share in shares.items() if share > 0.30} == {}


def test_the_guard_sees_modules() -> None:
    # A guard that scans nothing passes vacuously; make sure it reads the real tree.
    assert "sonata_dlt.verifiable_log.recording" in modules() and "sonata_dlt.storage.log" in modules()
    assert "sonata_dlt.storage.log" in imports_of(modules()["sonata_dlt.verifiable_log.recording"])
    assert "sonata_dlt.core.runtime" in imports_of(modules()["sonata_dlt.startup.wiring"])
