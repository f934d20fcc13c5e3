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


def _modules(path: Path) -> set[str]:
    """Every module `path` imports, by full dotted name."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _platform_sdk(module: str) -> bool:
    top = module.split(".")[0]
    return top.startswith("slack") or top == "googleapiclient" or module == "google.auth" or module.startswith(("google.auth.", "google.oauth2"))


def test_no_platform_sdk_is_imported_outside_bot():
    # The product's own code reaches a platform only through bot/ (tests and benchmarks drive the real SDKs).
    outside = [p for package in ("commands", "flows", "storage") for p in (ROOT / package).rglob("*.py")]
    assert any(p.relative_to(ROOT).parts[0] == "commands" for p in outside)
    for path in outside:
        sdks = sorted(m for m in _modules(path) if _platform_sdk(m))
        assert not sdks, f"{path.relative_to(ROOT)} imports {sdks}: only bot/ may"


def test_the_sdk_check_knows_each_platform():
    assert all(_platform_sdk(m) for m in ("slack_sdk.web", "slack_bolt", "googleapiclient.discovery", "google.auth.transport", "google.oauth2.id_token"))
    assert not any(_platform_sdk(m) for m in ("flows.messages", "pydantic", "googlemaps_is_not_used"))


# Platform-only markup: a Slack channel link, a special mention (<!here>), a Slack-style link (<http…|…>).
SLACK_ONLY = ("<#", "<!", "<http")


def test_messages_use_only_the_neutral_markup():
    # flows/messages.py defines the markup (channel_ref writes <#…>); everything else writes it through those helpers.
    for layer in ("flows", "commands"):
        for path in sorted((ROOT / layer).rglob("*.py")):
            if path == ROOT / "flows" / "messages.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    found = [s for s in SLACK_ONLY if s in node.value]
                    assert not found, f"{path.relative_to(ROOT)}:{node.lineno} writes {found}: use flows.messages helpers"
