"""The headroom control of issue #23: what mask-only GRPO can reach from a warm start, measured before
training. Tables for the geometry (margin taken out, component counts, the rules on the ground truth), and
one small end-to-end run whose subsets must add up to its overall scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from think2seg.core.records import append_records
from think2seg.core.types import Sample
from think2seg.warmstart.headroom import (
    ROWS,
    SUBSETS,
    RulesOracle,
    UnmarginedReplay,
    by_components,
    component_count,
    headroom,
    sampled_support,
    unmargin_box,
)
from think2seg.warmstart.targets import ZEROSHOT_JITTER, ZEROSHOT_MARGIN


def _sample(mask: np.ndarray, sid: str = "s:0") -> Sample:
    image = np.zeros((*mask.shape, 3), np.uint8)
    return Sample(id=sid, image_id=sid, question="q", image_path=Path("mem.png"), dataset="t", split="val",
                  mask_loader=lambda: mask, image_loader=lambda: image)


@pytest.mark.parametrize(
    "box, expected",
    [
        ((0, 0, 130, 130), (15, 15, 115, 115)),        # 130 wide -> 100 wide, same centre
        ((50, 60, 76, 86), (53, 63, 73, 83)),          # 26 x 26 -> 20 x 20
        ((10, 10, 10, 10), (10, 10, 10, 10)),          # a point stays a point
        ((200, 0, 223, 26), (203, 3, 220, 23)),        # 23 wide -> 17.7, rounded
    ],
)
def test_unmargin_box_takes_the_rules_mean_margin_back_out(box, expected):
    assert unmargin_box(box, (224, 224)) == expected


def test_unmargin_box_inverts_the_mean_zero_shot_margin():
    # a box grown by exactly the mean margin on every side comes back to the tight box
    x1, y1, x2, y2 = 60.0, 80.0, 160.0, 120.0
    w, h = x2 - x1, y2 - y1
    grown = (x1 - ZEROSHOT_MARGIN * w, y1 - ZEROSHOT_MARGIN * h, x2 + ZEROSHOT_MARGIN * w, y2 + ZEROSHOT_MARGIN * h)
    assert unmargin_box(grown, (224, 224)) == (60, 80, 160, 120)


def _blobs(*boxes, size=64):
    m = np.zeros((size, size), bool)
    for x1, y1, x2, y2 in boxes:
        m[y1:y2 + 1, x1:x2 + 1] = True
    return m


@pytest.mark.parametrize(
    "mask, count",
    [
        (_blobs(), 0),
        (_blobs((10, 10, 30, 30)), 1),
        (_blobs((2, 2, 12, 12), (40, 40, 55, 55)), 2),
        (_blobs((2, 2, 12, 12), (13, 13, 20, 20)), 1),          # touching diagonally: 8-connected, one
        (_blobs((2, 2, 12, 12), (40, 40, 42, 42)), 1),          # a 9-px speck is not a component
        (_blobs((0, 0, 3, 3), (40, 40, 42, 42)), 1),            # ... unless everything is a speck
        (_blobs((0, 0, 9, 9), (20, 0, 29, 9), (40, 0, 49, 9)), 3),
    ],
)
def test_component_count_follows_the_oracle_rule(mask, count):
    assert component_count(mask) == count


@pytest.mark.parametrize("sid", ["a:0", "a:1", "b:3"])
def test_rules_oracle_puts_one_loose_box_over_every_instance_and_answers_nothing_when_absent(sid):
    mask = _blobs((10, 20, 19, 29), (40, 30, 49, 39))  # two instances: tight box over both (10, 20, 49, 39)
    (inst,) = RulesOracle(64).prompts(_sample(mask, sid))
    x1, y1, x2, y2 = inst.box
    lo, hi = ZEROSHOT_MARGIN - ZEROSHOT_JITTER, ZEROSHOT_MARGIN + ZEROSHOT_JITTER
    assert 10 - hi * 40 - 1 <= x1 <= 10 - lo * 40 + 1 and 49 + lo * 40 - 1 <= x2 <= 49 + hi * 40 + 1
    assert 20 - hi * 20 - 1 <= y1 <= 20 - lo * 20 + 1 and 39 + lo * 20 - 1 <= y2 <= 39 + hi * 20 + 1
    assert len(inst.positive) == 2 and not inst.negative
    assert RulesOracle(64).prompts(_sample(mask, sid)) == [inst]           # same id, same jitter
    assert RulesOracle(64).prompts(_sample(_blobs(), sid)) == []


def test_unmargined_replay_shrinks_every_box_and_keeps_points_and_think(tmp_path):
    rec = {"id": "s:0", "think": "The request refers to lakes.",
           "instances": [{"bbox_2d": [0, 0, 130, 130], "positive_points": [[40, 40], [90, 90]]},
                         {"positive_points": [[5, 6]]}]}
    append_records(tmp_path / "records.jsonl", [rec])
    replay = UnmarginedReplay(tmp_path, (224, 224))
    first, second = replay.prompts(_sample(_blobs(), "s:0"))
    assert first.box == (15, 15, 115, 115) and first.positive == ((40, 40), (90, 90))
    assert second.box is None and second.positive == ((5, 6),)
    (text,) = replay.generate([_sample(_blobs(), "s:0")])[0]
    assert text.startswith("<think>The request refers to lakes.</think>") and "[15,15,115,115]" in text
    with pytest.raises(KeyError, match="s:9"):
        replay.prompts(_sample(_blobs(), "s:9"))


@pytest.mark.parametrize(
    "counts, ious, expected",
    [
        ({"a": 0, "b": 1, "c": 2, "d": 5}, [1.0, 0.8, 0.2, 0.4],
         {"empty": (100.0, 1), "1 component": (80.0, 1), "2+ components": (30.0, 2)}),
        ({"a": 1, "b": 1, "c": 1, "d": 1}, [1.0, 0.5, 0.0, 0.5],
         {"empty": (None, 0), "1 component": (50.0, 4), "2+ components": (None, 0)}),
    ],
)
def test_by_components_splits_gIoU_by_the_targets_component_count(counts, ious, expected):
    recs = [{"id": k, "iou": v} for k, v in zip(counts, ious, strict=True)]
    got = by_components(recs, counts)
    for name, (g, n) in expected.items():
        assert got[name]["n"] == n
        assert got[name]["gIoU"] == (None if g is None else pytest.approx(g))


class _Scripted:
    """Test-only prompter: answers from a fixed list, cycling, whatever the sample."""

    image_size = (64, 64)

    def __init__(self, texts):
        self.texts = texts

    def generate(self, samples, n=1, temperature=0.0, seed=0):
        return [[self.texts[(i * n + j) % len(self.texts)] for j in range(n)] for i in range(len(samples))]


def test_sampled_support_counts_answer_shapes():
    a = '{"bbox_2d": [1,1,9,9], "positive_points": [[3, 3], [6, 6]]}'
    b = '{"bbox_2d": [30,30,40,40], "positive_points": [[33, 33], [36, 36]]}'
    one = f"<think>t</think><answer>```json[{a}]```</answer>"
    two = f"<think>t</think><answer>```json[{a}, {b}]```</answer>"
    empty = "<think>t</think><answer>```json[]```</answer>"
    broken = "no tags at all"
    got = sampled_support(_Scripted([one, two, empty, broken, one]), [_sample(_blobs())] * 3, n=5)
    assert got == {"0": 3, "1": 6, "2+": 3, "error": 3}


def test_headroom_rows_and_subsets_add_up(synth_root, tmp_path):
    rep = headroom("fixed?image_size=128", tmp_path / "hr", segmenter="boxfill", data=f"earthreason:{synth_root}",
                   question_kind=None, support_every=3, support_n=2, progress=False)
    n = rep["n"]
    assert set(rep["rows"]) == set(ROWS) and sum(rep["subset_sizes"].values()) == n
    for row in ROWS:
        r = rep["rows"][row]
        subsets = r["by_components"]
        assert sum(subsets[s]["n"] for s in SUBSETS) == n == r["n"]
        weighted = sum(subsets[s]["gIoU"] * subsets[s]["n"] for s in SUBSETS if subsets[s]["n"]) / n
        assert weighted == pytest.approx(r["gIoU"])
    # boxfill's mask is the box: per-component boxes beat one box over all, and both beat a constant box
    rows = rep["rows"]
    assert rows["oracle"]["gIoU"] >= rows["oracle_whole"]["gIoU"] > rows["warm"]["gIoU"]
    assert rep["support"] == {"0": 0, "1": 2 * len(range(0, n, 3)), "2+": 0, "error": 0}
    assert json.loads((tmp_path / "hr" / "headroom.json").read_text())["rows"] == rows


def test_rules_per_instance_gives_each_component_its_own_loose_box():
    mask = _blobs((10, 20, 19, 29), (40, 30, 49, 39))
    boxes = sorted(i.box for i in RulesOracle(64, per_instance=True).prompts(_sample(mask)))
    assert len(boxes) == 2
    for (x1, y1, x2, y2), (tx1, ty1, tx2, ty2) in zip(boxes, [(10, 20, 19, 29), (40, 30, 49, 39)], strict=True):
        assert x1 < tx1 and y1 < ty1 and x2 > tx2 and y2 > ty2          # loose around its own component
        assert x2 - x1 < 10 * (1 + 2 * (ZEROSHOT_MARGIN + ZEROSHOT_JITTER)) + 2
