"""Notebook 01 executes headless (papermill) on a tiny SynthEarth dataset and writes its figures."""

from __future__ import annotations

import json

import pytest

from think2seg.reproduce import find_notebook, run_notebook


@pytest.mark.notebooks
def test_notebook_01_runs_on_synth(synth_root, tmp_path):
    figures = tmp_path / "figures"
    out = run_notebook(
        "01_dataset_exploration",
        {"data": f"earthreason:{synth_root}", "split": "test", "n_examples": 4, "figures_dir": str(figures)},
        executed_dir=tmp_path / "executed",
        cwd=tmp_path,
    )
    assert out == tmp_path / "executed" / "01_dataset_exploration.ipynb"
    names = {p.name for p in figures.glob("*.png")}
    assert names == {f"01_{n}.png" for n in ("split_counts", "categories", "mask_area", "question_lengths",
                                             "examples")}
    assert all(p.stat().st_size > 5000 for p in figures.glob("*.png"))
    nb = json.loads(out.read_text())
    text = json.dumps(nb["cells"])
    assert "image/png" in text  # figures are shown as well as saved
    assert "injected-parameters" in text


def test_find_notebook_by_prefix_and_errors():
    assert find_notebook("01").stem == "01_dataset_exploration"
    with pytest.raises(FileNotFoundError, match="no notebook"):
        find_notebook("99_nothing")
