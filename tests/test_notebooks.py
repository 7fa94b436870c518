"""Every notebook of the smoke profile executes headless (``think2seg reproduce --profile smoke`` on the fixture
dataset, papermill) and writes tables with the rows and numbers the profile asks for, and an index that lists
every file written."""

import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from think2seg.cli import main
from think2seg.data import load_dataset

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SMOKE = yaml.safe_load((ROOT / "configs" / "profiles" / "smoke.yaml").read_text())["notebooks"]


def make_checkout(tmp: Path) -> Path:
    """A checkout-like copy of the repository: the package (its shipped assets linked, not copied),
    notebooks/ and configs/, as a user's clone; nothing of this worktree's runs/ or reports/."""
    co = tmp / "checkout"
    shutil.copytree(ROOT / "think2seg", co / "think2seg", ignore=shutil.ignore_patterns("assets", "__pycache__"))
    (co / "think2seg" / "assets").symlink_to(ROOT / "think2seg" / "assets")
    for d in ("notebooks", "configs"):
        shutil.copytree(ROOT / d, co / d)
    return co


def reproduce_in(checkout: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``think2seg reproduce ARGS`` run with ``checkout``'s package, from ``cwd``."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    return subprocess.run([sys.executable, "-m", "think2seg.cli", "reproduce", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def smoke_run(synth_formats, tmp_path_factory):
    """The smoke profile on the fixture (its referring formats stand in for Table 3's datasets), in a
    checkout-like copy of the repository, started from another directory with the default folders."""
    tmp = tmp_path_factory.mktemp("smoke")
    checkout, elsewhere = make_checkout(tmp), tmp / "elsewhere"
    elsewhere.mkdir()
    transfer = {"RRSIS-D": f"rrsisd:{synth_formats['rrsisd']}", "RISBench": f"risbench:{synth_formats['risbench']}",
                "RefSegRS": f"refsegrs:{synth_formats['refsegrs']}"}
    p = reproduce_in(checkout, elsewhere, "--profile", "smoke", "--data", f"earthreason:{synth_formats['earthreason']}",
                     "--set", f"04_benchmarks.transfer={json.dumps(transfer)}")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return checkout / "reports" / "smoke", synth_formats, checkout, elsewhere


@pytest.mark.notebooks
@pytest.mark.slow
def test_smoke_01_to_03(smoke_run):
    reports, *_ = smoke_run
    names = {p.name for p in (reports / "figures").glob("01_*.png")}
    assert names == {f"01_{n}.png" for n in ("split_counts", "categories", "mask_area", "question_lengths", "examples")}
    executed = json.loads((reports / "executed" / "01_dataset_exploration.ipynb").read_text())
    assert "image/png" in json.dumps(executed["cells"]) and "injected-parameters" in json.dumps(executed["cells"])
    table = (reports / "tables" / "02_zero_shot.md").read_text()
    assert all(w in table for w in ("oracle (components)", "tiny warm start", "explicit", "implicit"))
    t02 = pd.read_csv(reports / "tables" / "02_zero_shot.csv")
    assert set(t02["n"]) == {SMOKE["02_zero_shot_baselines"]["limit"]}
    assert (reports / "figures" / "03_training_curves.png").stat().st_size > 10_000
    table = (reports / "tables" / "03_before_after_smoke.md").read_text()
    for row in ("before (tiny)", "after GRPO (think2seg)", "constant box (fixed)", "before (tiny), explicit questions",
                "after GRPO (think2seg), questions of other images"):
        assert row in table
    diag = (reports / "tables" / "03_answer_diagnostics_smoke.md").read_text()
    assert all(c in diag for c in ("top answer share", "box area", "box IoU", "points on target"))
    page = (reports / "figures" / "03_gallery_smoke_think2seg.html").read_text()
    panels = page.count('<section class="panel">')
    assert 1 <= panels <= 2 * SMOKE["03_grpo_training"].get("gallery_n", 4)
    assert page.count('<div class="run">') == 2 * panels and "before (tiny)" in page and "after GRPO (think2seg)" in page


@pytest.mark.notebooks
@pytest.mark.slow
def test_smoke_04_tables(smoke_run):
    reports, roots, *_ = smoke_run
    p = SMOKE["04_benchmarks"]
    t1 = pd.read_csv(reports / "tables" / "04_table1_reasoning_segmentation.csv")
    labels = [*p["prompters"], *(f"{label} (T=1)" for label in p["sampled_prompters"])]
    assert {(a, b) for a, b in zip(t1["protocol"], t1["row"], strict=True)} == {
        (proto, label) for proto in ("authors", "segearth-r1") for label in labels}
    sampled = t1[t1["row"].str.endswith("(T=1)")]  # mean over seeds, ± std, seeds n
    assert set(sampled["val seeds"]) == {len(p["sample_seeds"])} and (sampled["val gIoU ±"] >= 0).all()
    for split in ("val", "test"):
        assert set(t1[f"{split} n"]) == {p["limit"]}
    oracle = t1[t1["row"] == "oracle (components, ceiling)"].set_index("protocol")
    # the fixture's first 4 implicit test questions: 3 target images (oracle IoU 0.8-1.0 each with GrabCut at
    # 128 px) and one absent-target question; measured 94.5 (authors) — a wrong space or protocol drops far below
    assert 80 <= oracle.loc["authors", "test gIoU"] <= 100
    assert 80 <= oracle.loc["segearth-r1", "test gIoU"] <= 100
    fixed = t1[t1["row"] == "constant box (fixed)"].set_index("protocol")
    assert (oracle["test gIoU"] > fixed["test gIoU"] + 20).all()

    t2 = pd.read_csv(reports / "tables" / "04_table2_rejection.csv")
    assert set(t2["row"]) == set(p["rejection_prompters"]) and set(t2["protocol"]) == {"authors", "segearth-r1"}
    for split in ("val", "test"):  # every empty-target implicit question of the fixture split, counted
        ds = load_dataset(f"earthreason:{roots['earthreason']}", split, questions="all", question_kind="implicit")
        n_empty = sum(1 for s in ds if not s.load_mask().any())
        assert set(t2[f"{split} cases"]) == {n_empty}
        assert (t2[f"{split} TRUE"] + t2[f"{split} FALSE"] == n_empty).all()

    t3 = pd.read_csv(reports / "tables" / "04_table3_zero_shot_transfer.csv")
    assert len(t3) == 2 * len(p["prompters"])
    for name in ("RRSIS-D", "RISBench", "RefSegRS"):
        assert set(t3[f"{name} n"]) == {p["transfer_limit"]}
    oracle3 = t3[t3["row"] == "oracle (components, ceiling)"]
    assert (oracle3["RRSIS-D gIoU"] >= 60).all()
    assert (reports / "figures" / "04_table1_gIoU.png").stat().st_size > 5_000


@pytest.mark.notebooks
@pytest.mark.slow
def test_smoke_05_tables(smoke_run):
    reports, *_ = smoke_run
    p = SMOKE["05_ablations"]
    t4 = pd.read_csv(reports / "tables" / "05_table4_lvlm_prompter.csv", index_col=0)
    assert list(t4.index) == list(p["lvlm_prompters"])
    assert t4.loc["Qwen2.5-VL-3B", "status"].startswith("needs weights")
    assert t4.loc["Qwen2.5-VL-3B", "params (M)"] == pytest.approx(3754.6, abs=0.1)  # the released 3B: 3.75 B
    assert t4.loc["tiny Qwen2.5-VL warm start", "val n"] == p["limit"]

    t5 = pd.read_csv(reports / "tables" / "05_table5_sam2_size.csv", index_col=0)
    assert list(t5.index) == ["sam2:tiny", "grabcut"]
    assert 38.5 < t5.loc["sam2:tiny", "params (M)"] < 39.5  # SAM2.1 Hiera-T (the paper: 38.9 M)
    assert t5.loc["sam2:tiny", "encoder ms"] > 0 and t5.loc["sam2:tiny", "peak - baseline (MiB)"] > 50
    assert "needs the checkpoint" in t5.loc["sam2:tiny", "status"]
    assert t5.loc["grabcut", "val n"] == p["limit"] and 0 <= t5.loc["grabcut", "test gIoU"] <= 100
    assert (reports / "figures" / "05_fig4_segmenter_sizes.png").stat().st_size > 5_000

    t6 = pd.read_csv(reports / "tables" / "05_table6_prompt_combination.csv")
    assert {(a, b) for a, b in zip(t6["style"], t6["prompter"], strict=True)} == {
        (s, label) for s in ("bbox", "2pos", "bbox+2pos", "bbox+4pos", "bbox+2pos+2neg") for label in p["style_prompters"]}
    assert set(t6["val n"]) == {p["limit"]} and set(t6["test n"]) == {p["limit"]}
    assert (t6["test tol"] >= 0).all() and "stable" in t6 and (t6["val flipping"] <= p["limit"]).all()


@pytest.mark.notebooks
@pytest.mark.slow
def test_smoke_index_lists_every_file(smoke_run):
    reports, *_ = smoke_run
    index = (reports / "index.md").read_text()
    written = sorted([str(f.relative_to(reports)) for d in ("tables", "figures") for f in (reports / d).iterdir()]
                     + [f.name for f in reports.glob("*.html")])
    assert "06_reasoning_traces.html" in written
    listed = re.findall(r"^\| \[([^\]]+)\]", index, flags=re.M)
    assert sorted(listed) == written
    assert "profile `smoke`" in index and "total wall time" in index and "peak memory" in index
    meta = json.loads((reports / "index.json").read_text())
    assert [e["notebook"] for e in meta["entries"]] == sorted(SMOKE)
    t1 = next(e for e in meta["entries"] if e["notebook"] == "04_benchmarks")
    assert t1["protocol"] == "authors, segearth-r1" and "tiny-grpo" in t1["models"] and "earthreason:" in t1["dataset"]


@pytest.mark.notebooks
def test_failing_notebook_stops_with_the_cell_error(synth_root, tmp_path, capsys):
    rc = main(["reproduce", "--profile", "smoke", "--only", "04", "--data", f"earthreason:{synth_root}",
               "--reports-dir", str(tmp_path / "r"), "--runs-dir", str(tmp_path / "runs"),
               "--set", '04_benchmarks.prompters={"bad": "nonsense:x"}'])
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert rc == 2 and len(err) == 1  # one line (papermill's progress bar aside), no traceback
    assert err[0].startswith("think2seg reproduce: error: 04_benchmarks: cell")
    assert "ValueError" in err[0] and "nonsense" in err[0] and "04_benchmarks.ipynb" in err[0]
    assert (tmp_path / "r" / "smoke" / "executed" / "04_benchmarks.ipynb").is_file()  # the partial output stays


def test_paper_profile_lists_every_missing_input(capsys, monkeypatch):
    monkeypatch.setenv("THINK2SEG_SAM2_DIR", "/nonexistent")
    rc = main(["reproduce", "--profile", "paper"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    for need in ("/data/EarthReason not found", "/data/RRSIS-D", "/models/Qwen2.5-VL-7B-Instruct",
                 "/models/think2seg-rs-3b", "SAM2 checkpoint for sam2:small", "sam2:large"):
        assert need in err
    assert err.count("/data/EarthReason not found") == 1  # one line per input, with the notebooks needing it


def test_unknown_parameter_is_refused(capsys):
    rc = main(["reproduce", "--profile", "smoke", "--list", "--set", "04_benchmarks.nope=1"])
    assert rc == 2 and "04_benchmarks has no parameter nope" in capsys.readouterr().err


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


def test_every_profile_names_existing_notebooks_and_parameters():
    from think2seg.reports.reproduce import notebook_defaults

    for prof in sorted((ROOT / "configs" / "profiles").glob("*.yaml")):
        books = yaml.safe_load(prof.read_text())["notebooks"]
        for nb, params in books.items():
            assert set(params or {}) <= set(notebook_defaults(nb)), f"{prof.name}: {nb}"


def _files(root: Path) -> dict[str, str]:
    """``{path relative to root: sha256}`` of every file under ``root``."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _listed(reports: Path) -> list[str]:
    return sorted(re.findall(r"^\| \[([^\]]+)\]", (reports / "index.md").read_text(), flags=re.M))


@pytest.mark.notebooks
@pytest.mark.slow
def test_reproduce_from_another_directory_writes_everything_under_the_repository(smoke_run):
    """Issue 25 item 6: tables, figures, executed notebooks and the index under one root, the repository's
    reports/ (smoke: reports/smoke/), whatever the current directory; the runs under runs/smoke/."""
    reports, _, checkout, elsewhere = smoke_run
    assert list(elsewhere.iterdir()) == []  # nothing written where the command was started
    assert (reports / "index.md").is_file() and (reports / "index.json").is_file()
    assert {p.stem for p in (reports / "executed").glob("*.ipynb")} == set(SMOKE)
    assert all((checkout / "reports" / "smoke" / f).is_file() for f in _listed(reports))
    assert not any((checkout / "reports" / d).exists() for d in ("tables", "figures", "executed", "index.md"))
    assert {p.name for p in (checkout / "runs").iterdir()} == {"smoke"}  # the embedded profile's runs/ untouched
    assert {"02_zero_shot", "03_grpo", "04_benchmarks", "05_ablations"} <= {p.name for p in (checkout / "runs" / "smoke").iterdir()}


VARIANT = """description: a second fast profile - notebook 02 with another prompter under the label smoke uses
notebooks:
  02_zero_shot_baselines:
    prompters: {"tiny warm start": "fixed?image_size=112"}
    question_kinds: [implicit]
    limit: 3
    n_examples: 1
"""


@pytest.mark.notebooks
@pytest.mark.slow
def test_a_second_profile_then_smoke_again_collide_nowhere(smoke_run):
    """Issue 25 item 5: in one checkout, smoke, a second profile (its notebook 02 row "tiny warm start" is
    another prompter: in a shared runs/ that is "existing run used different prompter"), then smoke again:
    all succeed, each index lists only its own files, and the second profile changes none of smoke's."""
    reports, roots, checkout, elsewhere = smoke_run
    data = f"earthreason:{roots['earthreason']}"
    (checkout / "configs" / "profiles" / "smoke_variant.yaml").write_text(VARIANT)
    smoke_before = _files(checkout / "reports" / "smoke") | {
        f"runs/{k}": v for k, v in _files(checkout / "runs" / "smoke").items()}
    p = reproduce_in(checkout, elsewhere, "--profile", "smoke_variant", "--data", data)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    variant = checkout / "reports" / "smoke_variant"
    listed = _listed(variant)
    assert listed and all((variant / f).is_file() for f in listed)
    assert "tables/02_zero_shot.csv" in listed
    assert [e["notebook"] for e in json.loads((variant / "index.json").read_text())["entries"]] == ["02_zero_shot_baselines"]
    smoke_after = _files(checkout / "reports" / "smoke") | {
        f"runs/{k}": v for k, v in _files(checkout / "runs" / "smoke").items()}
    assert smoke_after == smoke_before  # not one of smoke's tables, figures or runs changed
    t_variant = pd.read_csv(variant / "tables" / "02_zero_shot.csv")
    assert set(t_variant["n"]) == {3}

    p = reproduce_in(checkout, elsewhere, "--profile", "smoke", "--only", "02", "--data", data)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert set(pd.read_csv(reports / "tables" / "02_zero_shot.csv")["n"]) == {SMOKE["02_zero_shot_baselines"]["limit"]}
    assert all((reports / f).is_file() for f in _listed(reports))
    assert [e["notebook"] for e in json.loads((reports / "index.json").read_text())["entries"]] == sorted(SMOKE)
    assert _listed(variant) == listed and list(elsewhere.iterdir()) == []
