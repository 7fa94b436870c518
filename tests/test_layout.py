"""The layout's rules hold and are enforced: the import contracts (layers + no cycles) in pyproject.toml pass
on the package, fail when a back-edge is added, no module imports another's private name, and no module
grows past ~400 lines."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")

needs_lint = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed (the dev extra)")
MAX_MODULE_LINES = 410  # "one concept a module, under ~400 lines"


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300)


@needs_lint
def test_import_contracts_hold():
    r = _lint(REPO)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "2 kept, 0 broken" in r.stdout


@needs_lint
@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("core/geometry.py", "from think2seg.reports import results  # noqa: F401", "flows one way"),  # back-edge
        ("evaluation/engine.py", "from think2seg.training import grpo  # noqa: F401", "flows one way"),
        ("evaluation/shards.py", "from think2seg.evaluation import engine  # noqa: F401", "No import cycles"),
    ],
)
def test_a_back_edge_or_a_cycle_breaks_a_contract(tmp_path, module, line, broken):
    shutil.copytree(REPO / "think2seg", tmp_path / "think2seg", ignore=shutil.ignore_patterns("assets", "__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "think2seg" / module
    target.write_text(target.read_text() + f"\n{line}\n")
    r = _lint(tmp_path)
    assert r.returncode == 1, r.stdout[-2000:]
    section = r.stdout.split(broken, 1)[1].splitlines()[0]
    assert "BROKEN" in section, r.stdout[-2000:]


def test_no_module_imports_another_modules_private_name():
    offenders = []
    for path in sorted((REPO / "think2seg").rglob("*.py")) + sorted((REPO / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("think2seg"):
                offenders += [f"{path.relative_to(REPO)}: {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")]
    assert not offenders, offenders


def test_every_module_stays_under_about_400_lines():
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines()) for p in (REPO / "think2seg").rglob("*.py")}
    assert len(sizes) > 100  # the walk found the package
    over = {k: n for k, n in sizes.items() if n > MAX_MODULE_LINES}
    assert not over, f"split these modules by concept: {over}"
