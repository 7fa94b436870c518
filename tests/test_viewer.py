"""The reasoning-trace viewer: filters, order and selection (pure state), lazy cached decoding of runs, the
panels, the ipywidgets view driven from Python, and the ``think2seg gallery`` page."""

import json
import re
import shutil

import numpy as np
import pytest

from think2seg.cli import main
from think2seg.core.geometry import resize_mask
from think2seg.core.io import read_mask
from think2seg.core.records import decode_rle
from think2seg.evaluation.engine import EvalConfig, evaluate
from think2seg.reports.viewer import (
    Filter,
    MissingMasks,
    TraceRun,
    TraceState,
    open_runs,
    outcome,
    write_gallery,
)
from think2seg.reports.viewer.render import BOX_RGB, panel_array, panel_text


@pytest.fixture(scope="module")
def runs(synth_root, tmp_path_factory):
    """Two runs with stored masks on the same 10 val samples (oracle, constant box), one run without masks."""
    root = tmp_path_factory.mktemp("viewer_runs")
    common = dict(data=f"earthreason:{synth_root}", split="val", segmenter="grabcut", questions="all")
    out = {}
    for name, spec in (("oracle", "oracle?image_size=128"), ("fixed", "fixed?image_size=112")):
        evaluate(EvalConfig(prompter=spec, out=str(root / name), limit=10, keep_masks=True, **common),
                 progress=False)
        out[name] = root / name
    evaluate(EvalConfig(prompter="fixed?image_size=112", out=str(root / "nomasks"), limit=2, **common),
             progress=False)
    out["nomasks"] = root / "nomasks"
    return out


def _rec(**kw):
    base = dict(iou=0.5, gt_empty=False, answer_empty=False, format_ok=True, parse_error=None,
                extra={"category": "road", "kind": "implicit"})
    return {**base, **kw}


def test_outcome_and_filter_on_records():
    assert outcome(_rec()) == "answered"
    assert outcome(_rec(answer_empty=True)) == "false_rejection"
    assert outcome(_rec(gt_empty=True, answer_empty=True)) == "true_rejection"
    assert outcome(_rec(gt_empty=True)) == "missed_rejection"
    assert Filter(outcome="true_rejection").accepts(_rec(gt_empty=True, answer_empty=True))
    assert not Filter(outcome="true_rejection").accepts(_rec(gt_empty=True))
    assert Filter(iou=(0.5, 0.7)).accepts(_rec()) and not Filter(iou=(0.51, 1)).accepts(_rec())
    assert Filter(parse="failed").accepts(_rec(parse_error="no <answer>", format_ok=False))
    assert Filter(parse="failed").accepts(_rec(format_ok=False)) and not Filter(parse="failed").accepts(_rec())
    assert Filter(parse="ok").accepts(_rec()) and not Filter(parse="ok").accepts(_rec(format_ok=False))
    assert Filter(category="road", kind="implicit").accepts(_rec())
    assert not Filter(category="runway").accepts(_rec()) and not Filter(kind="explicit").accepts(_rec())
    assert not Filter(category="road").accepts(_rec(extra={}))  # data without categories
    f = Filter.parse_args(["category=road", "iou=0:0.25", "parse=failed", "outcome=false_rejection"])
    assert f == Filter(category="road", iou=(0.0, 0.25), parse="failed", outcome="false_rejection")
    for bad, msg in (("iou=0.5", "iou=LOW:HIGH"), ("colour=red", "KEY=VALUE"), ("outcome=maybe", "outcome"),
                     ("parse", "KEY=VALUE")):
        with pytest.raises(ValueError, match=msg):
            Filter.parse_args([bad])


def test_state_filters_sorts_and_navigates(runs):
    state = open_runs([runs["oracle"], runs["fixed"]], labels=["oracle", "box"])
    recs = {r.label: r.records for r in state.runs}
    assert len(state) == 10 and state.current == state.all_ids[0] and state.position == 0
    cats = sorted({r["extra"]["category"] for r in recs["oracle"].values()})
    assert state.choices("category") == cats and state.choices("kind") == ["explicit", "implicit"]

    state.update(sort="iou")
    ious = [recs["oracle"][i]["iou"] for i in state.ids]
    assert ious == sorted(ious) and len(state.ids) == 10
    state.update(sort="delta", descending=True)
    deltas = [recs["box"][i]["iou"] - recs["oracle"][i]["iou"] for i in state.ids]
    assert deltas == sorted(deltas, reverse=True)
    assert state.delta(state.current) == pytest.approx(deltas[0])

    state.go(3)
    chosen = state.current
    cat = recs["oracle"][chosen]["extra"]["category"]
    state.update(category=cat)  # the selection survives a filter it passes
    want = [i for i in state.all_ids if recs["oracle"][i]["extra"]["category"] == cat]
    assert sorted(state.ids) == sorted(want) and state.current == chosen
    other = next(c for c in cats if c != cat)
    state.update(category=other)  # ... and falls back to the first sample when it does not
    assert state.position == 0 and recs["oracle"][state.current]["extra"]["category"] == other
    other_first = state.current

    state.update(category=None, sort="order", descending=False)
    assert state.ids == state.all_ids and state.current == other_first  # kept while it still passes
    state.go(0)
    assert state.prev() == state.all_ids[0]  # clamped at both ends
    assert state.next() == state.all_ids[1] and state.go(99) == state.all_ids[-1] and state.next() == state.all_ids[-1]
    state.update(iou=(2.0, 3.0))
    assert len(state) == 0 and state.current is None and state.next() is None
    with pytest.raises(ValueError, match="sort="):
        state.update(sort="random")

    state.update(iou=None, sort="iou")
    assert state.pick(worst=2, best=3) == state.ids[:2] + state.ids[-3:][::-1]
    both = state.pick(worst=8, best=8)  # overlapping ends: each id once
    assert len(both) == 10 and sorted(both) == sorted(state.ids) and both[:8] == state.ids[:8]
    assert state.pick() == state.ids


def test_state_joins_runs_on_shared_ids(runs):
    big, small = TraceRun(runs["oracle"]), TraceRun(runs["fixed"])
    small.ids = small.ids[3:6]
    assert TraceState([big, small]).all_ids == big.ids[3:6]
    small.ids = ["nope"]
    with pytest.raises(ValueError, match="share no sample"):
        TraceState([big, small])


def test_run_decodes_lazily_and_caches(runs, monkeypatch):
    import think2seg.core.io as io

    reads = []
    real = io.read_image
    monkeypatch.setattr(io, "read_image", lambda p: reads.append(p) or real(p))
    run = TraceRun(runs["oracle"], cache=2)
    assert reads == []  # opening reads only the records
    a, b, c = run.ids[:3]
    r = run.record(a)
    img, pred, gt = run.arrays(a)
    w, h = r["score_size"]
    assert img.shape == (h, w, 3) and img.dtype == np.uint8 and pred.shape == gt.shape == (h, w)
    assert (pred == decode_rle(r["pred_rle"])).all()
    assert (gt == resize_mask(read_mask(r["mask_path"]), (w, h))).all()
    assert run.arrays(a)[0] is img and len(reads) == 1  # cached
    run.arrays(b), run.arrays(c)  # a is evicted (cache of 2)
    run.arrays(a)
    assert len(reads) == 4


def test_ground_truth_from_the_dataset_without_mask_path(runs, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(runs["oracle"], run_dir)
    recs = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    want = TraceRun(runs["oracle"]).arrays(recs[4]["id"])[2]
    (run_dir / "records.jsonl").write_text("".join(json.dumps({**r, "mask_path": None}) + "\n" for r in recs))
    assert (TraceRun(run_dir).arrays(recs[4]["id"])[2] == want).all() and want.any()


def test_run_without_masks_is_refused(runs, capsys, tmp_path):
    with pytest.raises(MissingMasks, match="2 of 2 records hold no predicted mask.*--keep-masks"):
        TraceRun(runs["nomasks"])
    partial = tmp_path / "partial"  # a run resumed without --keep-masks: a missing mask is not an empty one
    shutil.copytree(runs["oracle"], partial)
    recs = [json.loads(line) for line in (partial / "records.jsonl").read_text().splitlines()]
    recs[-1].pop("pred_rle")
    (partial / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    with pytest.raises(MissingMasks, match="1 of 10 records"):
        TraceRun(partial)
    assert main(["gallery", str(runs["nomasks"]), "--out", "/tmp/never.html"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "think2seg eval --keep-masks" in err[0] and str(runs["nomasks"]) in err[0]


def test_panel_draws_prompts_and_text(runs):
    run = TraceRun(runs["fixed"])
    sid = run.ids[0]
    arr = panel_array(run, sid, min_side=336)
    f = arr.shape[0] // run.record(sid)["score_size"][1]
    assert f == 3 and arr.shape == (336, 336, 3)  # 112 px enlarged x3
    x1, y1, x2, y2 = run.instances(sid)[0].box
    assert tuple(arr[(y1 + y2) // 2 * f, x1 * f]) == BOX_RGB  # the box's left edge, in red
    px, py = run.instances(sid)[0].positive[0]
    assert arr[py * f, px * f, 1] > 200 and arr[py * f, px * f, 0] < 100  # a positive point, green
    text = panel_text(run, sid)
    assert "The same prompt for every question." in text and "IoU <b>" in text and "&lt;answer&gt;" in text


def test_widget_steps_and_filters(runs):
    from think2seg.reports.viewer import view

    v = view([runs["oracle"], runs["fixed"]])
    first_img, first_head = v.images[0].value, v.header.value
    assert len(first_img) > 1000 and v.count.value == "1 / 10 samples" and v.prev_button.disabled
    v.next_button.click()
    assert v.state.position == 1 and v.slider.value == 2 and v.count.value == "2 / 10 samples"
    assert v.header.value != first_head and v.state.current in v.header.value
    v.slider.value = 10  # counts from 1, as the label does
    assert v.state.position == 9 and v.next_button.disabled and v.category.label == "all"
    cat = v.state.choices("category")[0]
    v.category.value = cat
    n = sum(r["extra"]["category"] == cat for r in v.state.runs[0].records.values())
    assert len(v.state) == n and v.count.value.endswith(f"/ {n} samples") and v.slider.max == n
    v.iou_range.value = (0.99, 1.0)
    v.category.value = ""
    v.iou_range.value = (2.0 / 3, 2.0 / 3)
    assert len(v.state) == 0 and "no sample passes" in v.header.value and v.images[0].value == b""


def test_gallery_command_writes_a_self_contained_page(runs, tmp_path):
    out = tmp_path / "g.html"
    assert main(["gallery", str(runs["oracle"]), str(runs["fixed"]), "--out", str(out), "--worst", "3",
                 "--best", "2", "--sort", "delta", "--labels", "oracle", "box"]) == 0
    page = out.read_text()
    assert page.count('<section class="panel">') == 5 and page.count('<div class="run">') == 10
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) == 10 and all(s.startswith("data:image/jpeg;base64,") for s in srcs)
    assert not re.search(r"(src|href)=\"https?:", page) and "<script" not in page and "ΔIoU" in page

    state = open_runs([runs["oracle"]], filters=Filter(kind="implicit"))
    write_gallery([runs["oracle"]], out, filters=Filter(kind="implicit"), progress=False)
    page = out.read_text()
    assert page.count('<section class="panel">') == len(state) < 10 and "ΔIoU" not in page
    assert main(["gallery", str(runs["oracle"]), "--sort", "delta", "--out", str(out)]) == 2


def test_before_after_gallery_pairs_the_start_with_each_policy(runs, tmp_path):
    from think2seg.reports.viewer.gallery import before_after_gallery

    labelled = {"before (tiny)": runs["fixed"], "after GRPO (think2seg)": runs["oracle"],
                "after GRPO (think2seg), questions of other images": runs["fixed"],  # a control row: no page
                "after GRPO (seg zero)": runs["oracle"]}
    pages = before_after_gallery(labelled, tmp_path, "cpu_demo", n=2)
    assert [p.name for p in pages] == ["03_gallery_cpu_demo_think2seg.html", "03_gallery_cpu_demo_seg_zero.html"]
    page = pages[0].read_text()
    assert page.count('<section class="panel">') == 4 and page.count('<div class="run">') == 8
    assert "before (tiny)" in page and "after GRPO (think2seg)" in page and "ΔIoU" in page
    with pytest.raises(ValueError, match="before"):
        before_after_gallery({"after GRPO (x)": runs["oracle"]}, tmp_path, "t")
