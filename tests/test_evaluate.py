"""think2seg eval: oracle + grabcut on SynthEarth, resume after a real kill, config mismatch refused."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from think2seg.core.records import read_records
from think2seg.evaluation.engine import EvalConfig, evaluate

TIMING = {"gen_s", "seg_s"}


def _strip(rec):
    return {k: v for k, v in rec.items() if k not in TIMING}


def test_oracle_grabcut_on_synth(synth_root, tmp_path):
    cfg = EvalConfig(
        data=f"earthreason:{synth_root}",
        split="val",
        prompter="oracle?image_size=128",
        segmenter="grabcut",
        questions="all",
        out=str(tmp_path / "run"),
        keep_masks=True,
    )
    m = evaluate(cfg, progress=False)
    recs = read_records(tmp_path / "run" / "records.jsonl")
    assert m["n"] == len(recs) > 0
    # the oracle's prompts come from the GT mask: grabcut on them must overlap the target well
    assert m["gIoU"] > 0.5, m
    assert m["format_ok_rate"] == 1.0
    assert m["empty_true"] == m["empty_total"]  # the oracle answers [] exactly on empty targets
    for key in (
        "id",
        "question",
        "completion",
        "think",
        "instances",
        "iou",
        "intersection",
        "union",
        "gt_empty",
        "pred_empty",
        "pred_rle",
        "gen_s",
        "seg_s",
    ):
        assert key in recs[0]
    cfg_json = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg_json["result_options"]["segmenter"] == "grabcut"
    assert cfg_json["protocol"]["name"] == "authors" and "versions" in cfg_json
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["gIoU"] == m["gIoU"]


def test_resume_refuses_changed_options(synth_root, tmp_path):
    base = dict(
        data=f"earthreason:{synth_root}",
        split="val",
        prompter="oracle?image_size=128",
        limit=2,
        out=str(tmp_path / "run"),
    )
    evaluate(EvalConfig(**base), progress=False)
    with pytest.raises(ValueError, match="style='bbox'"):
        evaluate(EvalConfig(**base, style="bbox"), progress=False)


def _cli(out: Path, root: Path, batch: int = 1) -> list[str]:
    return [
        sys.executable,
        "-m",
        "think2seg.cli",
        "eval",
        "--data",
        f"earthreason:{root}",
        "--split",
        "train",
        "--prompter",
        "oracle?image_size=128",
        "--segmenter",
        "grabcut",
        "--questions",
        "all",
        "--batch-size",
        str(batch),
        "--out",
        str(out),
    ]


@pytest.mark.slow
def test_kill_and_resume_matches_uninterrupted_run(synth_root, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    full, part = tmp_path / "full", tmp_path / "part"
    subprocess.run(_cli(full, synth_root), check=True, env=env, capture_output=True)
    n_total = len(read_records(full / "records.jsonl"))

    proc = subprocess.Popen(
        _cli(part, synth_root), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    rec_file = part / "records.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if rec_file.is_file() and rec_file.read_text().count("\n") >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(read_records(rec_file))
    assert 0 < done_before < n_total, "the kill must land mid-run"
    with rec_file.open("a") as f:  # a torn final line, as a kill during write leaves it
        f.write('{"id": "torn", "interse')

    subprocess.run(_cli(part, synth_root, batch=4), check=True, env=env, capture_output=True)
    a = [_strip(r) for r in read_records(full / "records.jsonl")]
    b = [_strip(r) for r in read_records(rec_file)]
    assert len(b) == n_total and len({r["id"] for r in b}) == n_total  # no duplicate, none lost
    assert sorted(a, key=lambda r: r["id"]) == sorted(b, key=lambda r: r["id"])
    ma = json.loads((full / "metrics.json").read_text())
    mb = json.loads((part / "metrics.json").read_text())
    for k in ("gIoU", "cIoU", "P@0.5", "n", "empty_true", "format_ok_rate"):
        assert ma[k] == mb[k], k


def test_answer_diagnostics_tell_a_constant_answer_from_a_question_dependent_one(synth_root, tmp_path):
    from think2seg.reports.results import answer_diagnostics

    runs = {}
    for name, prompter in (("oracle", "oracle?image_size=128"), ("fixed", "fixed?image_size=128")):
        cfg = EvalConfig(data=f"earthreason:{synth_root}", split="val", prompter=prompter, segmenter="grabcut",
                         questions="all", out=str(tmp_path / name))
        evaluate(cfg, progress=False)
        runs[name] = tmp_path / name
    df = answer_diagnostics(runs)
    n = len(read_records(runs["fixed"] / "records.jsonl"))
    assert df.loc["fixed", "n"] == n > 3
    assert df.loc["fixed", "top answer share"] == 1.0 and df.loc["fixed", "distinct answers"] == 1 / n
    oracle = read_records(runs["oracle"] / "records.jsonl")
    images = {r["image_id"] for r in oracle}
    assert len(images) > 1 and df.loc["oracle", "top answer share"] < 1.0
    # the oracle answers from the mask: one answer per image (its questions share the mask)
    assert df.loc["oracle", "distinct answers"] == len(images) / len(oracle)
    # SynthEarth records carry the category; neither prompter writes it into <think>
    assert df.loc["fixed", "think names category"] == 0.0
    # the constant box spans pixels round(0.07 * 127) = 9 .. round(0.93 * 127) = 118 of a 128 px image
    assert df.loc["fixed", "box area"] == pytest.approx(110**2 / 128**2)
    assert 0 < df.loc["oracle", "box area"] < df.loc["fixed", "box area"]


def testbox_area_of_a_record():
    from think2seg.evaluation.diagnostics import box_area

    rec = {"model_size": [10, 20], "instances": [{"bbox_2d": [0, 0, 4, 9]}, {"bbox_2d": [3, 0, 9, 9]}]}
    assert box_area(rec) == pytest.approx(100 / 200)  # overlapping boxes counted once
    assert box_area({"model_size": [10, 10], "instances": [{"bbox_2d": [8, 8, 30, 30]}]}) == pytest.approx(0.04)
    assert box_area({"model_size": [10, 10], "instances": [{"positive_points": [[1, 1]]}]}) is None
    assert box_area({"instances": [{"bbox_2d": [0, 0, 1, 1]}]}) is None


def test_shuffle_questions_asks_each_sample_a_question_of_another_image(synth_root):
    from think2seg.data import load_dataset
    from think2seg.evaluation.engine import shuffle_questions

    ds = list(load_dataset(f"earthreason:{synth_root}", "val", questions="all"))
    by_id = {s.id: s for s in ds}
    out = shuffle_questions(ds, seed=3)
    assert [s.id for s in out] == [s.id for s in ds] and [s.image_path for s in out] == [s.image_path for s in ds]
    for s in out:
        donor = by_id[s.extra["question_from"]]
        assert donor.image_id != s.image_id and s.question == donor.question
    assert [s.question for s in shuffle_questions(ds, seed=3)] == [s.question for s in out]  # seeded
    one_image = [s for s in ds if s.image_id == ds[0].image_id]
    with pytest.raises(ValueError, match="two images"):
        shuffle_questions(one_image)


def test_question_control_leaves_a_question_blind_prompter_unchanged(synth_root, tmp_path):
    """The oracle answers from the mask: asked other images' questions it scores the same; the records
    say which question was asked."""
    common = dict(data=f"earthreason:{synth_root}", split="val", prompter="oracle?image_size=128",
                  segmenter="grabcut", questions="all")
    plain = evaluate(EvalConfig(out=str(tmp_path / "plain"), **common), progress=False)
    ctrl = evaluate(EvalConfig(out=str(tmp_path / "ctrl"), shuffle_questions=True, **common), progress=False)
    assert ctrl["gIoU"] == plain["gIoU"] and ctrl["n"] == plain["n"]
    a, b = read_records(tmp_path / "plain" / "records.jsonl"), read_records(tmp_path / "ctrl" / "records.jsonl")
    assert [r["id"] for r in a] == [r["id"] for r in b]
    assert sum(x["question"] != y["question"] for x, y in zip(a, b, strict=True)) > len(a) // 2
    assert all(r["extra"]["question_from"] for r in b)
    with pytest.raises(ValueError, match="shuffle_questions"):  # resuming as the other kind is refused
        evaluate(EvalConfig(out=str(tmp_path / "ctrl"), **common), progress=False)
    # the same control from the command line
    from think2seg.cli import main

    cli = tmp_path / "cli"
    assert main(["eval", "--data", common["data"], "--split", "val", "--prompter", common["prompter"],
                 "--questions", "all", "--shuffle-questions", "--out", str(cli)]) == 0
    assert json.loads((cli / "config.json").read_text())["result_options"]["shuffle_questions"] is True
    assert [r["question"] for r in read_records(cli / "records.jsonl")] == [r["question"] for r in b]
