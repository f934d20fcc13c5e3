"""Nothing in the repository points outside it: no sibling folders, no machine paths, no documents
that only exist on the machine it was written on (issue 11 item 6)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A sibling folder, a design document that is not in the repository, an absolute machine path.
OUTSIDE = re.compile(r"\.\./shared|\bPRODUCT\.md|\bARCHITECTURE\.md|(?<![\w.])/(?:work|home|Users|root|tmp)/\w")
SKIPPED = {".git", ".venv", ".ci-venv", "venv", "__pycache__", ".pytest_cache", "build", "dist"}
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def tracked() -> list[Path]:
    """The files a fresh clone has (every file under the root when git is not there)."""
    try:
        names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        names = []
    if names:
        return [ROOT / name for name in names]
    return [p for p in ROOT.rglob("*") if p.is_file() and not SKIPPED & set(p.relative_to(ROOT).parts) and ".egg-info" not in str(p)]


def shipped() -> list[Path]:
    """Tracked text files other than the tests (which must name the patterns they look for)."""
    files = [p for p in tracked() if p.relative_to(ROOT).parts[0] != "tests" and p.exists()]
    return [p for p in files if p.suffix in {".py", ".md", ".yml", ".yaml", ".toml", ".txt", ".cfg", ""}]


def test_no_tracked_file_points_outside_the_repository():
    found = []
    for path in shipped():
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


def test_every_relative_link_in_the_docs_resolves_inside_the_repository():
    broken = []
    for path in [p for p in shipped() if p.suffix == ".md"]:
        for target in LINK.findall(path.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            resolved = (path.parent / target).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert not broken, broken


def test_the_architecture_is_described_in_the_repository():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for topic in ("flows/", "storage/", "commands/", "bot/", "outbox", "lease", "gate", "How to add a command"):
        assert topic in text, topic
    assert "docs/architecture.md" in (ROOT / "README.md").read_text(encoding="utf-8")
