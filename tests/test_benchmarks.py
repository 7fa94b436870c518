"""Evaluation options behind Tables 1-3: replayed completions, empty-target subsets, native segmentation."""

from __future__ import annotations

import json

import pytest

from think2seg.core.records import read_records
from think2seg.evaluation.engine import EvalConfig, evaluate
from think2seg.prompters import build_prompter, parse_spec


def _eval(synth_root, out, **kw):
    opts = dict(data=f"earthreason:{synth_root}", split="test", prompter="oracle?image_size=128", segmenter="grabcut",
                questions="all", question_kind="implicit", limit=4)
    opts.update(kw)
    return evaluate(EvalConfig(out=str(out), **opts), progress=False)


def test_replay_scores_the_same_completions(synth_root, tmp_path):
    first = _eval(synth_root, tmp_path / "a", protocol="authors")
    again = _eval(synth_root, tmp_path / "b", protocol="authors", prompter=f"replay:{tmp_path / 'a'}")
    assert again["gIoU"] == first["gIoU"] and again["n"] == first["n"] == 4
    a, b = read_records(tmp_path / "a" / "records.jsonl"), read_records(tmp_path / "b" / "records.jsonl")
    assert [r["completion"] for r in a] == [r["completion"] for r in b]
    p = build_prompter(f"replay:{tmp_path / 'a'}")
    assert p.image_size == (128, 128)
    with pytest.raises(KeyError, match="no completion"):
        _eval(synth_root, tmp_path / "c", prompter=f"replay:{tmp_path / 'a'}", limit=6)


def test_segment_native_equals_native_scoring_on_upsampled_protocol(synth_root, tmp_path):
    """segearth-r1 scores at long side 1024; the fixture's 128 px images upsampled 8x by nearest neighbour
    keep every IoU, so segmenting at native size gives the native-resolution IoUs exactly."""
    native = _eval(synth_root, tmp_path / "n", protocol="segzero", limit=3)  # scored at native size
    up = _eval(synth_root, tmp_path / "u", protocol="segearth-r1", segment_native=True, limit=3)
    ious_n = [r["iou"] for r in read_records(tmp_path / "n" / "records.jsonl") if not r["gt_empty"]]
    ious_u = [r["iou"] for r in read_records(tmp_path / "u" / "records.jsonl") if not r["gt_empty"]]
    assert ious_u == pytest.approx(ious_n) and up["n"] == native["n"] == 3
    assert read_records(tmp_path / "u" / "records.jsonl")[0]["score_size"] == [1024, 1024]


def test_targets_empty_keeps_only_absent_targets(synth_root, tmp_path):
    from think2seg.data import load_dataset

    ds = load_dataset(f"earthreason:{synth_root}", "val", questions="all", question_kind="implicit")
    n_empty = sum(not s.load_mask().any() for s in ds)
    m = _eval(synth_root, tmp_path / "e", split="val", targets="empty", limit=None, prompter="oracle?image_size=128")
    assert m["n"] == m["empty_total"] == n_empty > 0
    assert m["empty_true"] == n_empty  # the oracle answers [] for an absent target
    cfg = json.loads((tmp_path / "e" / "config.json").read_text())
    assert cfg["result_options"]["targets"] == "empty"
    with pytest.raises(ValueError, match="targets"):
        _eval(synth_root, tmp_path / "x", targets="some")


def test_shipped_policy_specs():
    from think2seg.prompters.tiny import SHIPPED, shipped_dir
    from think2seg.training.shipped import READS_QUESTION_DROP

    assert parse_spec("tiny-grpo-segzero?batch_size=4") == ("tiny-grpo-segzero", None, {"batch_size": 4})
    for name in SHIPPED:
        d = shipped_dir(name)
        assert (d / "model.safetensors").stat().st_size < 10_000_000  # float16, as the warm start
        report = json.loads((d / "training_report.json").read_text())
        assert report["name"] == name and report["steps"] > 0
        for row in (name, f"{name}, questions of other images", "constant box (fixed)", "warm start (tiny)"):
            assert 0 <= report["controls"][row]["gIoU"] <= 100
        drop = report["drop_with_other_images_questions"]
        assert report["reads_the_question"] == (drop >= READS_QUESTION_DROP)  # issue #23's bar: a 10-point drop
    p = build_prompter("tiny-grpo")
    assert p.name == "tiny-grpo" and p.image_size == (112, 112)
