"""Dependencies point one way: api -> services -> {storage, transparency, signing, ledger, notify}.

Checked statically from the import statements of every module, so a violation fails before anyone runs it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "sonata_dlt"
WEB_FRAMEWORKS = ("connexion", "starlette", "uvicorn")

# layer -> packages of ours it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "services": ("sonata_dlt.api", "sonata_dlt.cli", "sonata_dlt.client", "sonata_dlt.sandbox"),
    "storage": ("sonata_dlt.api", "sonata_dlt.cli", "sonata_dlt.services", "sonata_dlt.notify", "sonata_dlt.ledger"),
    "notify": ("sonata_dlt.api", "sonata_dlt.cli", "sonata_dlt.services"),
    "ledger": ("sonata_dlt.api", "sonata_dlt.cli", "sonata_dlt.services", "sonata_dlt.storage", "sonata_dlt.notify"),
}
# The pure layers take and return bytes: only the standard library, cryptography, each other and errors.py.
PURE = ("transparency", "signing")
PURE_ALLOWED_OURS = ("sonata_dlt.errors", "sonata_dlt.transparency", "sonata_dlt.signing")
PURE_ALLOWED_THIRD_PARTY = ("cryptography",)


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def modules_in(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_lower_layers_do_not_import_upper_layers_or_the_web_framework(layer: str) -> None:
    problems = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in modules_in(layer)
        for name in imports_of(path)
        if _within(name, FORBIDDEN[layer]) or _within(name, WEB_FRAMEWORKS)
    ]
    assert problems == []


@pytest.mark.parametrize("layer", PURE)
def test_pure_layers_import_only_the_standard_library_and_cryptography(layer: str) -> None:
    import sys

    problems = []
    for path in modules_in(layer):
        for name in imports_of(path):
            top = name.split(".")[0]
            if top == "sonata_dlt":
                if not _within(name, PURE_ALLOWED_OURS):
                    problems.append(f"{path.relative_to(PACKAGE)} imports {name}")
            elif top not in sys.stdlib_module_names and top not in PURE_ALLOWED_THIRD_PARTY and top != "__future__":
                problems.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert problems == []


def test_the_guard_sees_modules() -> None:
    # A guard that scans nothing passes vacuously; make sure it reads the real tree.
    assert modules_in("services") and modules_in("storage")
    assert "sonata_dlt.storage.log" in imports_of(PACKAGE / "services" / "recording.py")
