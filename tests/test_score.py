"""Scoring completions produced elsewhere: score_completions, the released cIoU aggregation, think2seg score
on a JSONL and on a released evaluation output file, bad rows named or skipped."""

import json

import numpy as np
import pytest

from think2seg.cli import main
from think2seg.core.records import read_records
from think2seg.core.styles import format_answer
from think2seg.core.types import Instance
from think2seg.evaluation.engine import EvalConfig, evaluate
from think2seg.evaluation.scoring import score_completions
from think2seg.segmenters.boxfill import BoxFillSegmenter

SIZE = 40


def square(x1, y1, x2, y2):
    m = np.zeros((SIZE, SIZE), bool)
    m[y1 : y2 + 1, x1 : x2 + 1] = True
    return m


def answer(*boxes, fence=True):
    text = format_answer([Instance(b, ((b[0], b[1]), (b[2], b[3]))) for b in boxes], think="t")
    return text if fence else text.replace("```json", "").replace("```", "")


def released_aggregation(ious, pred_exists, inter, union, gt_area):
    """The released evaluation loop's gIoU and cIoU, from per-sample values (read from its code)."""
    total_i = total_u = 0.0
    for k in range(len(ious)):
        if pred_exists[k] and inter[k] is not None:
            total_i, total_u = total_i + inter[k], total_u + union[k]
        elif pred_exists[k]:
            pass  # an empty target answered with a valid answer: adds nothing
        else:
            total_u += gt_area[k]
    return sum(ious) / len(ious), total_i / total_u


def test_score_completions_matches_the_released_aggregation():
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    gt = square(0, 0, 19, 19)  # 400 px
    empty = np.zeros((SIZE, SIZE), bool)
    rows = [
        (answer((0, 0, 19, 19)), gt),  # IoU 1
        (answer((0, 0, 9, 19)), gt),  # IoU 0.5
        (answer((0, 0, 19, 19), fence=False), gt),  # no fence: fine at test time
        ("<think>t</think><answer>[]</answer>", empty),  # correct rejection
        (answer((20, 20, 39, 39)), empty),  # false positive on an empty target: invisible to cIoU
        ("<think>t</think><answer>nothing</answer>", gt),  # unparseable: GT area into U
        (
            answer((0, 0, 19, 19)).replace('"positive_points": [[0, 0], [19, 19]]', '"negative_points": []'),
            gt,
        ),
    ]
    texts, masks = [r[0] for r in rows], [r[1] for r in rows]
    m = score_completions(texts, [img] * len(rows), masks, segmenter=BoxFillSegmenter(), protocol="authors")
    # by hand, from the released loop: (iou, prediction exists, I, U, GT area)
    ious = [1.0, 0.5, 1.0, 1.0, 0.0, 0.0, 0.0]
    exists = [True, True, True, True, True, False, False]
    inter = [400, 200, 400, None, None, None, None]
    union = [400, 400, 400, None, None, None, None]
    g, c = released_aggregation(ious, exists, inter, union, [m.sum() for m in masks])
    assert m["gIoU"] == pytest.approx(g) and m["cIoU"] == pytest.approx(c)
    assert (m["gIoU"], m["cIoU"]) == pytest.approx((3.5 / 7, 1000 / 2000))
    assert m["protocol"]["parse_policy"] == "released-test"
    strict = score_completions(texts, [img] * len(rows), masks, segmenter=BoxFillSegmenter(), protocol="strict")
    assert strict["protocol"]["parse_policy"] == "lenient"
    assert strict["cIoU"] == pytest.approx(1000 / 2400)  # the false positive adds its 400 px to U
    with pytest.raises(ValueError, match="3 completions, 2 images"):
        score_completions(texts[:3], [img] * 2, masks[:3], segmenter=BoxFillSegmenter())


@pytest.fixture(scope="module")
def oracle_run(synth_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("oracle") / "run"
    cfg = EvalConfig(
        data=f"earthreason:{synth_root}",
        split="val",
        prompter="oracle?image_size=128",
        segmenter="grabcut",
        questions="all",
        out=str(out),
    )
    metrics = evaluate(cfg, progress=False)
    return metrics, read_records(out / "records.jsonl")


def _score(args, capsys):
    code = main(["score", *args])
    return code, capsys.readouterr()


def test_score_jsonl_equals_eval_and_writes_runs(oracle_run, synth_root, tmp_path, capsys):
    metrics, recs = oracle_run
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": r["id"], "completion": r["completion"]}) + "\n" for r in recs))
    out = tmp_path / "scored"
    data = ["--data", f"earthreason:{synth_root}", "--split", "val", "--image-size", "128"]
    code, io = _score([str(preds), *data, "--protocol", "authors", "strict", "--out", str(out)], capsys)
    assert code == 0, io.err
    printed = json.loads(io.out[: io.out.rindex("}") + 1])
    assert printed["authors"]["gIoU"] == pytest.approx(metrics["gIoU"])
    got = json.loads((out / "authors" / "metrics.json").read_text())
    assert got["cIoU"] == pytest.approx(metrics["cIoU"]) and got["n"] == len(recs)
    cfg = json.loads((out / "strict" / "config.json").read_text())
    assert cfg["parse_policy"] == "lenient" and cfg["result_options"]["format"] == "jsonl"
    assert len(read_records(out / "strict" / "records.jsonl")) == len(recs)
    # resumed: nothing re-scored, same metrics
    code, io = _score([str(preds), *data, "--protocol", "authors", "--out", str(out)], capsys)
    assert code == 0 and json.loads((out / "authors" / "metrics.json").read_text())["gIoU"] == got["gIoU"]


def test_score_reads_the_released_output_format(oracle_run, synth_root, tmp_path, capsys):
    _, recs = oracle_run
    results = [
        {
            "sample_id": k,
            "image_path": f"/elsewhere/{r['image_path'].rsplit('/', 1)[-1]}",
            "question": f'Please find "{r["question"]}", identify the target. For each target instance, ...',
            "model_output": r["completion"],
            "mask_iou_reward": 0.0,
        }
        for k, r in enumerate(recs)
    ]
    path = tmp_path / "geo_results.json"
    path.write_text(json.dumps({"giou": 0.0, "ciou": 0.0, "results": results}))
    code, io = _score(
        [str(path), "--data", f"earthreason:{synth_root}", "--split", "val", "--image-size", "128"], capsys
    )
    assert code == 0, io.err
    printed = json.loads(io.out)
    assert printed["authors"]["n"] == len(recs) and printed["authors"]["skipped_rows"] == 0
    assert printed["authors"]["gIoU"] == pytest.approx(oracle_run[0]["gIoU"])


def test_bad_rows_are_named_or_skipped(oracle_run, synth_root, tmp_path, capsys):
    _, recs = oracle_run
    good = [json.dumps({"id": r["id"], "completion": r["completion"]}) for r in recs[:3]]
    lines = [
        good[0],
        json.dumps({"id": "nope", "completion": "x"}),
        json.dumps({"id": recs[1]["id"]}),
        good[2],
        good[2],
        '{"id": "torn", "comp',
    ]
    preds = tmp_path / "bad.jsonl"
    preds.write_text("\n".join(lines) + "\n")
    data = ["--data", f"earthreason:{synth_root}", "--split", "val", "--image-size", "128"]
    code, io = _score([str(preds), *data], capsys)
    assert code == 2 and "Traceback" not in io.err
    assert f"{preds}:line 3: no 'completion' field" in io.err and "3 more bad rows" in io.err
    code, io = _score([str(preds), *data, "--on-error", "skip", "--out", str(tmp_path / "o")], capsys)
    assert code == 0, io.err
    skipped = dict(json.loads((tmp_path / "o" / "authors" / "config.json").read_text())["skipped"])
    assert skipped == {
        f"{preds}:line 2": "id 'nope' is not a sample of " + f"earthreason:{synth_root} val",
        f"{preds}:line 3": "no 'completion' field",
        f"{preds}:line 5": f"sample {recs[2]['id']!r} already scored from {preds}:line 4",
        f"{preds}:line 6": "not valid JSON (a torn or partial line?)",
    }
    assert json.loads(io.out[: io.out.rindex("}") + 1])["authors"]["n"] == 2
    code, io = _score([str(tmp_path / "missing.jsonl"), *data], capsys)
    assert code == 2 and "missing.jsonl: predictions file not found" in io.err


def _released_file(path, rows):
    path.write_text(json.dumps({"giou": 0.0, "ciou": 0.0, "results": [
        {"sample_id": k, "image_path": f"/elsewhere/{r['image_path'].rsplit('/', 1)[-1]}", "question": q,
         "model_output": r["completion"]} for k, (r, q) in enumerate(rows)]}))
    return str(path)


def test_released_rows_holding_only_the_question_match_one_sample_each(oracle_run, synth_root, tmp_path, capsys):
    """Issue 25: a file with the bare question (not the instruction) stopped on an image whose questions
    contain one another ("the bridges" inside "Please locate the bridges.")."""
    metrics, recs = oracle_run
    by_image = {}
    for r in recs:
        by_image.setdefault(r["image_path"], []).append(r["question"])
    assert any(a != b and a in b for qs in by_image.values() for a in qs for b in qs)  # the fixture has the case
    path = _released_file(tmp_path / "bare.json", [(r, r["question"]) for r in recs])
    code, io = _score([path, "--data", f"earthreason:{synth_root}", "--split", "val", "--image-size", "128"], capsys)
    assert code == 0, io.err
    printed = json.loads(io.out)
    assert printed["authors"]["n"] == len(recs) and printed["authors"]["gIoU"] == pytest.approx(metrics["gIoU"])


def test_a_still_ambiguous_row_names_its_candidates(oracle_run, synth_root, tmp_path, capsys):
    _, recs = oracle_run
    first = [r for r in recs if r["image_path"] == recs[0]["image_path"]]
    a, b = first[0], first[1]
    rows = [(a, f"Either {a['question']} or {b['question']}")]  # holds two questions of one image
    path = _released_file(tmp_path / "amb.json", rows)
    code, io = _score([path, "--data", f"earthreason:{synth_root}", "--split", "val", "--image-size", "128"], capsys)
    err = io.err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "results[0]" in err[0] and "matches 2 samples" in err[0]
    assert f"{a['id']} ({a['question']!r})" in err[0] and f"{b['id']} ({b['question']!r})" in err[0]
