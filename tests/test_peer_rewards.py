"""Peer reward schemes (Seg-Zero, VisionReasoner, RemoteReasoner) and the scheme registry, table-driven.

Masks are 100x100 rectangles, so pseudo boxes, IoUs and distances are hand-computable. Each table row is
(completion, ground truth, expected value of every reward function of the scheme, in ``reward_funcs``
order: think format, JSON format, then the scheme's accuracy terms).
"""

import math
import pickle

import numpy as np
import pytest
from PIL import Image

from think2seg.core.styles import format_answer
from think2seg.core.types import Instance
from think2seg.rewards import (
    REWARD_WEIGHTS,
    SCHEMES,
    MaskIoUReward,
    RemoteReasonerScheme,
    SegZeroScheme,
    VisionReasonerScheme,
    build_reward_funcs,
    component_boxes,
    dbscan_instances,
    matched_point_distance,
    non_repeat_reward,
    peers,
    segzero_pseudo_gt,
)

SIZE = 100
IMG = Image.fromarray(np.zeros((SIZE, SIZE, 3), np.uint8))


def rect(*rects, size=SIZE):
    """Mask with inclusive rectangles given as (x1, y1, x2, y2)."""
    m = np.zeros((size, size), bool)
    for x1, y1, x2, y2 in rects:
        m[y1 : y2 + 1, x1 : x2 + 1] = True
    return m


def ans(*instances, think="Looking at the scene"):
    """instances: (box, (p1, p2)) pairs."""
    return format_answer([Instance(tuple(b), tuple(map(tuple, p))) for b, p in instances], think=think)


EMPTY = np.zeros((SIZE, SIZE), bool)
A40 = rect((30, 20, 69, 59))  # 40x40; Seg-Zero pseudo: box (30,20,69,59), points (49,39) (59,49)
B80 = rect((10, 10, 89, 89))  # 80x80; Seg-Zero pseudo: box (10,10,89,89), points (49,49) (69,69)
TWO = rect((10, 10, 39, 39), (50, 60, 79, 89))  # two 30x30 blobs, 20+ px apart
BIG = rect((0, 0, 79, 79))
A_BOX, B_BOX = (10, 10, 39, 39), (50, 60, 79, 89)
A_PT, B_PT = (24, 24), (64, 74)  # deepest pixels of the two blobs (first in row order)
NOPE = "<think>x</think><answer>nope</answer>"
EMPTY_ANSWER = format_answer([], think="No such target")


def run_scheme(scheme, text, gt, image=IMG):
    funcs = scheme.reward_funcs()
    return tuple(f([text], image=[image], gt_mask=[gt])[0] for f in funcs)


# ------------------------------------------------------------------------------------------ pseudo GT


def test_pseudo_ground_truths_by_hand():
    sz = segzero_pseudo_gt(A40)
    assert sz.box == (30, 20, 69, 59) and sz.positive == ((49, 39), (59, 49))
    assert all(A40[y, x] for x, y in sz.positive)
    assert segzero_pseudo_gt(TWO).box == (10, 10, 79, 89)  # ONE box around both blobs
    assert segzero_pseudo_gt(EMPTY) is None
    assert [(i.box, i.positive) for i in dbscan_instances(TWO)] == [(A_BOX, (A_PT,)), (B_BOX, (B_PT,))]
    speck = TWO.copy()
    speck[95, 95] = True
    assert component_boxes(speck) == [A_BOX, B_BOX]  # 1-px speck dropped
    assert component_boxes(rect((5, 5, 6, 6))) == [(5, 5, 6, 6)]  # ...unless nothing else is left
    assert component_boxes(EMPTY) == [] and dbscan_instances(EMPTY) == []


def test_dbscan_split_merge_and_noise():
    # two blobs separated by more than eps (2 px at 100x100) -> two pseudo instances
    assert len(dbscan_instances(rect((10, 10, 30, 30), (34, 10, 50, 30)))) == 2
    # a one-column gap (distance 2 <= eps) -> merged into one cluster, one box around both
    merged = dbscan_instances(rect((10, 10, 30, 30), (32, 10, 50, 30)))
    assert [i.box for i in merged] == [(10, 10, 50, 30)]
    # an isolated pixel is DBSCAN noise (fewer than min_samples neighbours) and dropped
    noisy = rect((10, 10, 30, 30))
    noisy[80, 80] = True
    assert [i.box for i in dbscan_instances(noisy)] == [(10, 10, 30, 30)]
    # ...unless everything is noise: then the whole mask is one instance
    tiny = rect((5, 5, 5, 5), (50, 50, 50, 50))
    assert [i.box for i in dbscan_instances(tiny)] == [(5, 5, 50, 50)]


def test_dbscan_on_a_pooled_840_mask_keeps_tight_boxes():
    m = np.zeros((840, 840), bool)
    m[100:300, 101:300] = True  # x 101..299, y 100..299
    m[500:701, 603:801] = True
    m[420, 50:790] = True  # a 1-px line: survives the 7x7 pooling
    got = dbscan_instances(m)
    assert [i.box for i in got] == [(101, 100, 299, 299), (603, 500, 800, 700), (50, 420, 789, 420)]
    for inst in got:
        (x, y) = inst.positive[0]
        assert m[y, x] and inst.box[0] <= x <= inst.box[2] and inst.box[1] <= y <= inst.box[3]


def test_matched_point_distance_is_seg_zeros_pairing():
    assert matched_point_distance([(0, 0), (10, 0)], [(10, 0), (0, 0)]) == 0.0
    assert matched_point_distance([(0, 0), (0, 8)], [(6, 0), (6, 8)]) == pytest.approx(6.0)
    assert matched_point_distance([], [(1, 1)]) == math.inf


# ------------------------------------------------------------------------------------------ Seg-Zero

PTS_A = ((49, 39), (59, 49))
# name: (scheme options, completion, gt, expected (think, json, box_iou, box_l1, points))
SEGZERO = {
    "perfect": ({}, ans(((30, 20, 69, 59), PTS_A)), A40, (1, 1, 1, 1, 1)),
    "box off by 3 px": ({}, ans(((27, 17, 72, 62), PTS_A)), A40, (1, 1, 1, 1, 1)),
    "box off by many px (IoU .29, L1 17.5)": ({}, ans(((30, 20, 99, 99), PTS_A)), A40, (1, 1, 0, 0, 1)),
    "shifted 10 px: IoU .62 but L1 not < 10": (
        {},
        ans(((0, 0, 79, 79), ((49, 49), (69, 69)))),
        B80,
        (1, 1, 1, 0, 1),
    ),
    "shifted 9 px: L1 9 < 10": ({}, ans(((1, 1, 80, 80), ((49, 49), (69, 69)))), B80, (1, 1, 1, 1, 1)),
    "points 59 px away pass the released 100 px": (
        {},
        ans(((10, 10, 89, 89), ((10, 89), (89, 10)))),
        B80,
        (1, 1, 1, 1, 1),
    ),
    "points 59 px away fail at point_thr=30": (
        {"point_thr": 30},
        ans(((10, 10, 89, 89), ((10, 89), (89, 10)))),
        B80,
        (1, 1, 1, 1, 0),
    ),
    "points outside the predicted box": (
        {},
        ans(((30, 20, 69, 59), ((29, 39), (70, 49)))),
        A40,
        (1, 1, 1, 1, 0),
    ),
    "best-matching of several instances is scored": (
        {},
        ans(((0, 0, 9, 9), ((1, 1), (5, 5))), ((30, 20, 69, 59), PTS_A)),
        A40,
        (1, 1, 1, 1, 1),
    ),
    "one box per blob vs the single whole-mask pseudo box": (
        {},
        ans((A_BOX, (A_PT, (30, 30))), (B_BOX, (B_PT, (70, 80)))),
        TWO,
        (1, 1, 0, 0, 1),
    ),
    "[] on a target": ({}, EMPTY_ANSWER, A40, (1, 0, 0, 0, 0)),
    "[] on an empty target": ({}, EMPTY_ANSWER, EMPTY, (1, 1, 1, 1, 1)),
    "box on an empty target": ({}, ans(((30, 20, 69, 59), PTS_A)), EMPTY, (1, 1, 0, 0, 0)),
    "unparseable on a target": ({}, NOPE, A40, (1, 0, 0, 0, 0)),
    "unparseable on an empty target": ({}, NOPE, EMPTY, (1, 0, 0, 0, 0)),
    "no tags, valid JSON": (
        {},
        '[{"bbox_2d": [30,20,69,59], "positive_points": [[49,39],[59,49]]}]',
        A40,
        (0, 1, 1, 1, 1),
    ),
}


@pytest.mark.parametrize("name", list(SEGZERO))
def test_segzero_table(name):
    options, text, gt, expected = SEGZERO[name]
    assert run_scheme(SegZeroScheme(**options), text, gt) == pytest.approx(expected)


# ------------------------------------------------------------------------------------------ VisionReasoner

JUNK = ((80, 0, 99, 20), ((85, 5), (90, 10)))
# name: (completion, gt, expected (think, json, box_iou, box_l1, points, non_repeat))
VISIONREASONER = {
    "perfect two instances": (
        ans((A_BOX, (A_PT, (30, 30))), (B_BOX, (B_PT, (70, 80)))),
        TWO,
        (1, 1, 1, 1, 1, 1),
    ),
    "one instance missing": (ans((A_BOX, (A_PT, (30, 30)))), TWO, (1, 1, 0.5, 0.5, 0.5, 1)),
    "one extra instance": (
        ans((A_BOX, (A_PT, (30, 30))), (B_BOX, (B_PT, (70, 80))), JUNK),
        TWO,
        (1, 1, 2 / 3, 2 / 3, 2 / 3, 1),
    ),
    "duplicate box counts as extra": (
        ans((A_BOX, (A_PT, (30, 30))), (A_BOX, (A_PT, (30, 30))), (B_BOX, (B_PT, (70, 80)))),
        TWO,
        (1, 1, 2 / 3, 2 / 3, 2 / 3, 1),
    ),
    "box off by 3 px": (
        ans(((13, 13, 42, 42), (A_PT, (30, 30))), (B_BOX, (B_PT, (70, 80)))),
        TWO,
        (1, 1, 1, 1, 1, 1),
    ),
    "box off by many px (IoU .35, L1 10.5)": (
        ans(((10, 10, 60, 60), (A_PT, (30, 30))), (B_BOX, (B_PT, (70, 80)))),
        TWO,
        (1, 1, 0.5, 0.5, 1, 1),
    ),
    "one box over both blobs": (ans(((10, 10, 79, 89), (A_PT, B_PT))), TWO, (1, 1, 0, 0, 0.5, 1)),
    "points outside their box": (
        ans((A_BOX, ((40, 24), (41, 24))), (B_BOX, (B_PT, (70, 80)))),
        TWO,
        (1, 1, 1, 1, 0.5, 1),
    ),
    "points over 30 px from the pseudo point": (
        ans(((0, 0, 79, 79), ((75, 75), (70, 5)))),
        BIG,
        (1, 1, 1, 1, 0, 1),
    ),
    "one repeated sentence is tolerated": (
        ans(((0, 0, 79, 79), ((39, 39), (20, 20))), think="A tank. A tank. A tank."),
        BIG,
        (1, 1, 1, 1, 1, 1),
    ),
    "two repeated sentences": (
        ans(((0, 0, 79, 79), ((39, 39), (20, 20))), think="A tank. A tank. A tank. A tank."),
        BIG,
        (1, 1, 1, 1, 1, 0),
    ),
    "[] on a target": (EMPTY_ANSWER, TWO, (1, 0, 0, 0, 0, 1)),
    "[] on an empty target": (EMPTY_ANSWER, EMPTY, (1, 1, 1, 1, 1, 1)),
    "box on an empty target": (ans((A_BOX, (A_PT, (30, 30)))), EMPTY, (1, 1, 0, 0, 0, 1)),
    "unparseable on a target": (NOPE, TWO, (1, 0, 0, 0, 0, 1)),
    "unparseable on an empty target": (NOPE, EMPTY, (1, 0, 0, 0, 0, 1)),
}


@pytest.mark.parametrize("name", list(VISIONREASONER))
def test_visionreasoner_table(name):
    text, gt, expected = VISIONREASONER[name]
    assert run_scheme(VisionReasonerScheme(), text, gt) == pytest.approx(expected)


def test_non_repeat_counts_sentences_of_the_whole_completion():
    assert non_repeat_reward(["a. b. c.", "a. a. b.", "a. a. a.", "x. y. x. y.", ""]) == [1, 1, 0, 0, 1]
    assert non_repeat_reward.__name__ == "non_repeat"


# ------------------------------------------------------------------------------------------ RemoteReasoner

IOU_SHIFT3 = 729 / 1071  # 27x27 overlap of two 30x30 boxes
IOU_WHOLE = 900 / 5600  # a 30x30 blob inside the 70x80 box around both
# name: (completion, gt, expected (think, json, box_iou, count))
REMOTEREASONER = {
    "perfect": (ans((A_BOX, (A_PT, (30, 30))), (B_BOX, (B_PT, (70, 80)))), TWO, (1, 1, 1, 1)),
    "one instance missing": (ans((B_BOX, (B_PT, (70, 80)))), TWO, (1, 1, 0.5, 0.5)),
    "one extra instance": (
        ans((A_BOX, (A_PT, (30, 30))), (B_BOX, (B_PT, (70, 80))), JUNK),
        TWO,
        (1, 1, 2 / 3, 2 / 3),
    ),
    "box off by 3 px": (
        ans(((13, 13, 42, 42), (A_PT, (30, 30))), (B_BOX, (B_PT, (70, 80)))),
        TWO,
        (1, 1, (IOU_SHIFT3 + 1) / 2, 1),
    ),
    "one box over both blobs": (ans(((10, 10, 79, 89), (A_PT, B_PT))), TWO, (1, 1, IOU_WHOLE / 2, 0.5)),
    "speck dropped from the pseudo boxes": (
        ans((A_BOX, (A_PT, (30, 30)))),
        rect(A_BOX, (95, 95, 96, 96)),
        (1, 1, 1, 1),
    ),
    "[] on a target": (EMPTY_ANSWER, TWO, (1, 0, 0, 0)),
    "[] on an empty target": (EMPTY_ANSWER, EMPTY, (1, 1, 1, 1)),
    "box on an empty target": (ans((A_BOX, (A_PT, (30, 30)))), EMPTY, (1, 1, 0, 0)),
    "unparseable on a target": (NOPE, TWO, (1, 0, 0, 0)),
}


@pytest.mark.parametrize("name", list(REMOTEREASONER))
def test_remotereasoner_table(name):
    text, gt, expected = REMOTEREASONER[name]
    assert run_scheme(RemoteReasonerScheme(), text, gt) == pytest.approx(expected)


# ------------------------------------------------------------------------------------------ contract


@pytest.mark.parametrize("scheme, total", [("segzero", 3), ("visionreasoner", 6), ("remotereasoner", 4)])
def test_conversational_completions_and_array_images(scheme, total):
    text = ans((A_BOX, (A_PT, (30, 30))), (B_BOX, (B_PT, (70, 80))))
    funcs, weights = build_reward_funcs(scheme)
    kw = {"image": [np.zeros((SIZE, SIZE, 3), np.uint8)], "gt_mask": [TWO]}
    plain = [[{"role": "assistant", "content": text}]]
    parts = [[{"role": "assistant", "content": [{"type": "text", "text": text}]}]]
    for conv in (plain, parts):
        got = [f(conv, **kw)[0] for f in funcs]
        assert got == [f([text], **kw)[0] for f in funcs]
        # weighted total; Seg-Zero's single whole-mask box misses per-blob boxes (box terms 0)
        assert sum(w * r for w, r in zip(weights, got, strict=True)) == pytest.approx(total)


def test_empty_json_quirk_reaches_the_json_term():
    funcs, _ = build_reward_funcs("remotereasoner", empty_json_ok_on_target=True)
    kw = {"image": [IMG], "gt_mask": [TWO]}
    assert [f([EMPTY_ANSWER], **kw)[0] for f in funcs] == [1, 1, 0, 0]


@pytest.mark.parametrize(
    "cls, patched", [(SegZeroScheme, "segzero_pseudo_gt"), (VisionReasonerScheme, "dbscan_instances")]
)
def test_pseudo_gt_derived_once_per_mask_and_parsed_once_per_completion(monkeypatch, cls, patched):
    calls = {"derive": 0, "parse": 0}
    real_derive, real_parse = getattr(peers, patched), peers.parse_completion

    def derive(*a, **k):
        calls["derive"] += 1
        return real_derive(*a, **k)

    def parse(*a, **k):
        calls["parse"] += 1
        return real_parse(*a, **k)

    monkeypatch.setattr(peers, patched, derive)
    monkeypatch.setattr(peers, "parse_completion", parse)
    scheme = cls()
    terms = scheme.reward_funcs()[2:]
    G = 8
    group = [ans((A_BOX, (A_PT, (30, 30)))), ans((B_BOX, (B_PT, (70, 80))))] * (G // 2)
    masks = [TWO.copy() for _ in range(G)]  # equal content, distinct objects (as after collation)
    for f in terms:
        f(group, image=[IMG] * G, gt_mask=masks)
    assert calls == {"derive": 1, "parse": G}
    other = [A40.copy() for _ in range(G)]
    for f in terms:
        f(group, image=[IMG] * G, gt_mask=other)
    terms[0](group[:1], image=[IMG], gt_mask=[TWO])  # back to the first mask: cached
    assert calls["derive"] == 2 and scheme.derive_calls == 2


def test_pseudo_gt_cached_by_path_and_rle(tmp_path):
    from pycocotools import mask as mask_utils

    p = tmp_path / "m.png"
    Image.fromarray((TWO * 255).astype(np.uint8)).save(p)
    rle = mask_utils.encode(np.asfortranarray(TWO.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode()
    scheme = RemoteReasonerScheme()
    f = scheme.reward_funcs()[2]
    text = ans((A_BOX, (A_PT, (30, 30))), (B_BOX, (B_PT, (70, 80))))
    assert f([text] * 4, image=[IMG] * 4, gt_mask=[str(p)] * 4) == [1.0] * 4
    assert f([text] * 4, image=[IMG] * 4, gt_mask=[dict(rle) for _ in range(4)]) == [1.0] * 4
    assert scheme.derive_calls == 2


def test_registry_names_weights_and_errors():
    names = {}
    for scheme in SCHEMES:
        funcs, weights = build_reward_funcs(scheme)
        assert len(funcs) == len(weights)
        names[scheme] = [getattr(f, "__name__", None) for f in funcs]
        assert len(set(names[scheme])) == len(funcs)  # trl logs each under its own name
    assert names["segzero"] == [
        "think_format_reward",
        "json_format",
        "segzero_box_iou",
        "segzero_box_l1",
        "segzero_points",
    ]
    assert names["visionreasoner"][-1] == "non_repeat" and len(names["visionreasoner"]) == 6
    assert names["remotereasoner"][2:] == ["remotereasoner_box_iou", "remotereasoner_count"]
    funcs, weights = build_reward_funcs("think2seg", segmenter="grabcut")
    assert weights == REWARD_WEIGHTS and isinstance(funcs[2], MaskIoUReward)
    assert build_reward_funcs("segzero")[1] == [1.0] * 5
    with pytest.raises(ValueError, match=r"'segzro'.*think2seg.*segzero.*visionreasoner.*remotereasoner"):
        build_reward_funcs("segzro")
    with pytest.raises(ValueError, match="needs a prompt style with a box"):
        build_reward_funcs("visionreasoner", style="2pos")
    with pytest.raises(ValueError, match="gt_mask"):
        build_reward_funcs("segzero")[0][2](["x"])


def test_registry_forwards_options_and_funcs_pickle():
    funcs, _ = build_reward_funcs("segzero", point_thr=30)
    assert funcs[2].scheme.point_thr == 30
    clone = pickle.loads(pickle.dumps(funcs))
    text = ans(((10, 10, 89, 89), ((10, 89), (89, 10))))
    assert [f([text], image=[IMG], gt_mask=[B80])[0] for f in clone] == [1, 1, 1, 1, 0]
