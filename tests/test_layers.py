"""The layers of ARCHITECTURE.md, checked on every import in the code: flows knows no platform."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STDLIB_AND_MODELS = {"pydantic", "yaml", "__future__"}
ALLOWED = {
    "flows": {"flows"},
    "storage": {"flows", "storage", "sqlite_utils"},
    "commands": {"flows", "storage", "commands"},
}
PLATFORMS = {"slack_bolt", "slack_sdk", "googleapiclient", "google", "apscheduler", "waitress", "bot"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_what_it_may(layer):
    import sys

    stdlib = set(sys.stdlib_module_names)
    files = sorted((ROOT / layer).rglob("*.py"))
    assert files
    for path in files:
        foreign = imports(path) - stdlib - STDLIB_AND_MODELS - ALLOWED[layer]
        assert not foreign, f"{path.relative_to(ROOT)} imports {sorted(foreign)}"
        assert not imports(path) & PLATFORMS, f"{path.relative_to(ROOT)} imports a platform"


def test_flows_never_reads_the_clock():
    for path in (ROOT / "flows").rglob("*.py"):
        text = path.read_text()
        assert "datetime.now(" not in text and "time.time(" not in text and "date.today(" not in text, path


def test_only_storage_touches_sqlite():
    for layer in ("flows", "commands"):
        for path in (ROOT / layer).rglob("*.py"):
            assert ".conn." not in path.read_text() and "sqlite3" not in path.read_text(), path
