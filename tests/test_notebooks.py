"""Notebooks 02 and 03 execute headless with papermill (smoke parameters, fixture data) and write their
tables and figures."""

import ast
import json
from pathlib import Path

import pytest

from think2seg.reproduce import run_notebook

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]


def test_notebook_02_zero_shot(synth_root, tmp_path):
    reports = tmp_path / "reports"
    run_notebook(
        "02",
        {
            "data": f"earthreason:{synth_root}",
            "prompters": {"oracle": "oracle?image_size=128", "tiny": "tiny"},
            "limit": 4,
            "runs_dir": str(tmp_path / "runs"),
            "reports_dir": str(reports),
            "n_examples": 2,
        },
        executed_dir=tmp_path / "executed",
    )
    table = (reports / "tables" / "02_zero_shot.md").read_text()
    assert "oracle" in table and "tiny" in table and "explicit" in table and "implicit" in table
    for kind in ("explicit", "implicit"):
        assert (reports / "figures" / f"02_examples_{kind}.png").stat().st_size > 10_000


def test_notebook_03_grpo_smoke(synth_root, tmp_path):
    reports = tmp_path / "reports"
    run_notebook(
        "03",
        {
            "config": "smoke",
            "data": f"earthreason:{synth_root}",
            "rewards": ["think2seg"],
            "max_steps": 2,
            "extra_args": ["--eval_limit", "2", "--max_completion_length", "48"],
            "runs_dir": str(tmp_path / "runs"),
            "reports_dir": str(reports),
            "eval_limit": 6,  # two images at least: the question control needs another image's questions
            "n_examples": 2,
        },
        executed_dir=tmp_path / "executed",
    )
    assert (reports / "figures" / "03_training_curves.png").stat().st_size > 10_000
    table = (reports / "tables" / "03_before_after_smoke.md").read_text()
    assert "before (tiny)" in table and "after GRPO (think2seg)" in table and "constant box (fixed)" in table
    assert "before (tiny), explicit questions" in table  # the reference: the question names the category
    assert "after GRPO (think2seg), questions of other images" in table  # the question-dependence control
    assert "before (tiny), explicit questions, questions of other images" in table
    diag = (reports / "tables" / "03_answer_diagnostics_smoke.md").read_text()
    assert "top answer share" in diag and "box area" in diag and "after GRPO (think2seg)" in diag
    assert (tmp_path / "runs" / "smoke-think2seg" / "think2seg_done.json").is_file()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_sees_every_parameter(path):
    """``papermill --help-notebook`` lists every name the parameters cell assigns (a comment holding ``=``
    or an apostrophe made papermill drop the line with "Unable to parse")."""
    import papermill

    cells = [c for c in json.loads(path.read_text())["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{path.name}: one cell tagged 'parameters'"
    tree = ast.parse("".join(cells[0]["source"]))
    assigned = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets}
    assert assigned and set(papermill.inspect_notebook(str(path))) == assigned
