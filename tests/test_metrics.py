"""Metrics and protocol presets against hand-computed cases."""

import numpy as np
import pytest

from think2seg.core.metrics import PROTOCOLS, get_protocol, mask_stats, record, sample_iou, summarize


def rec(i, u, gt_empty=False, pred_empty=False, format_ok=True, **kw):
    return {
        "intersection": i,
        "union": u,
        "gt_empty": gt_empty,
        "pred_empty": pred_empty,
        "format_ok": format_ok,
        **kw,
    }


# Five samples, hand-computed:
#  a: I=60 U=100  iou .6      b: I=40 U=100 iou .4     c: I=0 U=50 (answer [] on a target; pred empty)
#  d: empty GT, answer []      e: empty GT, false positive of 30 px (U=30), answer non-empty
RECORDS = [
    rec(60, 100),
    rec(40, 100),
    rec(0, 50, pred_empty=True, answer_empty=True, produced=False),
    rec(0, 0, gt_empty=True, pred_empty=True, answer_empty=True, produced=False),
    rec(0, 30, gt_empty=True, format_ok=False),
]


def test_authors_preset():
    s = summarize(RECORDS, "authors")
    # ious: .6 .4 0 1 0 -> mean .4
    assert s["gIoU"] == pytest.approx(0.4)
    # cIoU over non-empty GT only: (60+40+0)/(100+100+50)
    assert s["cIoU"] == pytest.approx(100 / 250)
    # P@0.5 over produced answers (a, b, e): a hits -> 1/3
    assert s["P@0.5"] == pytest.approx(1 / 3)
    assert (s["empty_total"], s["empty_true"], s["empty_false"]) == (2, 1, 1)
    assert s["false_rejections"] == 1 and s["n"] == 5 and s["n_produced"] == 3
    assert s["format_ok_rate"] == pytest.approx(0.8)
    assert s["protocol"]["name"] == "authors"


def test_segearth_preset():
    s = summarize(RECORDS, "segearth-r1", thresholds=(0.4, 0.5))
    # empty rule 'mask': d has empty union -> 1, e -> 0; ious .6 .4 0 1 0
    assert s["gIoU"] == pytest.approx(0.4)
    # cIoU counts e's false positives: 100 / (250 + 30)
    assert s["cIoU"] == pytest.approx(100 / 280)
    # strict '>' over all 5: P@0.4 -> .6 and 1.0 -> 2/5 (0.4 is not > 0.4); P@0.5 -> 2/5
    assert s["P@0.4"] == pytest.approx(2 / 5)
    assert s["P@0.5"] == pytest.approx(2 / 5)


def test_segzero_preset_empty_vs_empty_is_zero():
    s = summarize(RECORDS, "segzero", thresholds=(0.4,))
    assert s["gIoU"] == pytest.approx((0.6 + 0.4) / 5)
    assert s["P@0.4"] == pytest.approx(2 / 5)  # '>=': .6 and .4


def test_overrides_are_named():
    p = get_protocol("authors", p_strict=True)
    assert p.p_strict and p.name == "authors+p_strict=True"
    assert summarize(RECORDS, p, thresholds=(0.6,))["P@0.6"] == 0.0


def test_answer_rule_differs_from_mask_rule():
    # empty GT, model answered boxes but the segmenter produced nothing: authors 0, SegEarth-R1 1
    r = rec(0, 0, gt_empty=True, pred_empty=True, answer_empty=False)
    assert sample_iou(r, "authors") == 0.0
    assert sample_iou(r, "segearth-r1") == 1.0
    assert sample_iou(r, "segzero") == 0.0


def test_mask_stats_and_record():
    gt = np.zeros((10, 10), bool)
    gt[2:6, 2:6] = True  # 16 px
    pred = np.zeros((10, 10), bool)
    pred[4:8, 4:8] = True  # 16 px, overlap 4
    assert mask_stats(pred, gt) == (4, 28)
    r = record(pred, gt, format_ok=False)
    assert r["gt_empty"] is False and r["pred_empty"] is False and r["format_ok"] is False
    with pytest.raises(ValueError, match="shapes differ"):
        mask_stats(pred, gt[:5])


def test_bad_inputs_named():
    with pytest.raises(ValueError, match="no records"):
        summarize([])
    with pytest.raises(ValueError, match="lacks"):
        summarize([{"intersection": 1}])
    with pytest.raises(ValueError, match="unknown protocol 'lisa'"):
        summarize(RECORDS, "lisa")


def test_all_presets_run():
    for name in PROTOCOLS:
        s = summarize(RECORDS, name)
        assert 0 <= s["gIoU"] <= 1 and 0 <= s["cIoU"] <= 1
