"""The house rules that keep each job in one home (docs/architecture.md), checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("physics", "validation", "app", "benchmarks")


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """``(module, names)`` of every import statement in ``path`` (relative imports resolved to the package)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                module = ".".join(path.relative_to(ROOT).parts[: -node.level]) + (f".{module}" if module else "")
            out.append((module, [a.name for a in node.names]))
    return out


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("physics", ("validation", "app", "benchmarks", "lightning")), ("validation", ("app", "benchmarks"))],
)
def test_imports_only_point_down(package, forbidden):
    bad = [f"{p.relative_to(ROOT)} imports {m}" for p in _modules(package) for m, _ in _imports(p)
           if m.split(".")[0] in forbidden]  # fmt: skip
    assert not bad, bad


def test_no_module_imports_a_private_name_of_another():
    bad = [f"{p.relative_to(ROOT)}: from {m} import {n}" for pkg in PACKAGES for p in _modules(pkg)
           for m, names in _imports(p) if m.split(".")[0] in PACKAGES for n in names if n.startswith("_")]  # fmt: skip
    assert not bad, bad


def test_every_module_is_small():
    big = [f"{p.relative_to(ROOT)}: {n} lines" for pkg in PACKAGES for p in _modules(pkg)
           if (n := len(p.read_text().splitlines())) >= 400]  # fmt: skip
    assert not big, big


def test_the_physics_library_ships_no_scripts():
    assert not (ROOT / "physics" / "demo.py").exists()
    assert (ROOT / "benchmarks" / "physics_demo.py").is_file()


def test_docs_stand_alone():
    """No doc points outside the repository (``../`` paths or the background folder)."""
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    bad = [f"{p.relative_to(ROOT)}: {line.strip()[:80]}" for p in docs for line in p.read_text().splitlines()
           if "](../" in line or "shared/research" in line or "../shared" in line]  # fmt: skip
    assert not bad, bad
