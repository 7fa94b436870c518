"""Parse policies and the rewards under them: hand-made tables of completions with the (tag, JSON, IoU) terms
each policy gives, read off the released Think2Seg-RS code (training parser = ``released-train``, evaluation
parser = ``released-test``) and this project's ``lenient`` parser.

The segmenter fills boxes (and, for an instance without a box, the box spanned by its positive points), so
IoUs are hand-computable. The ground truth is the square x, y in [0, 49] of a 100 x 100 image (2,500 px).
"""

import json
import pickle

import numpy as np
import pytest
from PIL import Image

from think2seg.core.parsing import POLICIES, parse_completion
from think2seg.rewards import REWARD_WEIGHTS, build_reward_funcs, think2seg_rewards
from think2seg.segmenters.boxfill import BoxFillSegmenter

SIZE = 100
IMG = Image.fromarray(np.zeros((SIZE, SIZE, 3), np.uint8))
GT = np.zeros((SIZE, SIZE), bool)
GT[0:50, 0:50] = True
EMPTY = np.zeros((SIZE, SIZE), bool)


def inst(box, pts=((10, 10), (20, 20)), neg=None):
    obj = {} if box is None else {"bbox_2d": list(box)}
    if pts is not None:
        obj["positive_points"] = [list(p) for p in pts]
    if neg is not None:
        obj["negative_points"] = [list(p) for p in neg]
    return obj


def js(*objs):
    return json.dumps(list(objs))


def fenced(body):
    return f"```json{body}```"


def tagged(answer, think="the target"):
    return f"<think>{think}</think>\n<answer>{answer}</answer>"


A = inst((0, 0, 49, 49))  # the target exactly: IoU 1
HALF = inst((0, 0, 24, 49), ((5, 5), (6, 6)))  # half of it: IoU 0.5
OUT = inst((50, 50, 99, 99), ((60, 60), (70, 70)))  # disjoint, same area: IoU 0 alone, 0.5 with A
WIDE = inst((0, 0, 59, 49))  # box IoU with A 0.83 (a duplicate for NMS); mask IoU 2500 / 3000
STR_A = {"bbox_2d": ["0", "0", "49", "49"], "positive_points": [["10", "10"], ["20", "20"]]}
STR_BOX = {"bbox_2d": ["0", "0", "49", "49"], "positive_points": [[10, 10], [20, 20]]}  # issue 25's shape
STR_PTS = {"bbox_2d": [0, 0, 49, 49], "positive_points": [["10", "10"], [20, 20]]}
NEG_A = inst((0, 0, 49, 49), neg=((60, 60), (70, 70)))

LENIENT, TRAIN, TEST = POLICIES
# name: (completion, gt, style, {policy: (tag, json, iou)})
TABLE = {
    "valid": (tagged(fenced(js(A))), GT, "bbox+2pos", {p: (1, 1, 1.0) for p in POLICIES}),
    "valid_half": (tagged(fenced(js(HALF))), GT, "bbox+2pos", {p: (1, 1, 0.5) for p in POLICIES}),
    "valid_two_instances": (tagged(fenced(js(A, OUT))), GT, "bbox+2pos", {p: (1, 1, 0.5) for p in POLICIES}),
    "empty_on_empty_target": (tagged(fenced("[]")), EMPTY, "bbox+2pos", {p: (1, 1, 1.0) for p in POLICIES}),
    "answer_on_empty_target": (tagged(fenced(js(A))), EMPTY, "bbox+2pos", {p: (1, 1, 0.0) for p in POLICIES}),
    # the released quirk: [] passes the JSON check on a present target (lenient: option, off by default)
    "empty_on_target": (
        tagged(fenced("[]")),
        GT,
        "bbox+2pos",
        {LENIENT: (1, 0, 0.0), TRAIN: (1, 1, 0.0), TEST: (1, 1, 0.0)},
    ),
    "missing_fence": (
        tagged(js(A)),
        GT,
        "bbox+2pos",
        {LENIENT: (1, 1, 1.0), TRAIN: (1, 0, 0.0), TEST: (1, 1, 1.0)},
    ),
    "missing_fence_empty_on_empty_target": (
        tagged("[]"),
        EMPTY,
        "bbox+2pos",
        {LENIENT: (1, 1, 1.0), TRAIN: (1, 0, 0.0), TEST: (1, 1, 1.0)},
    ),
    "missing_fence_empty_on_target": (
        tagged("[]"),
        GT,
        "bbox+2pos",
        {LENIENT: (1, 0, 0.0), TRAIN: (1, 0, 0.0), TEST: (1, 1, 0.0)},
    ),
    "uppercase_fence": (
        tagged("```JSON" + js(A) + "```"),
        GT,
        "bbox+2pos",
        {LENIENT: (1, 1, 1.0), TRAIN: (1, 0, 0.0), TEST: (1, 1, 1.0)},
    ),
    "no_tags_bare_json": (
        js(A),
        GT,
        "bbox+2pos",
        {LENIENT: (0, 1, 1.0), TRAIN: (0, 0, 0.0), TEST: (0, 1, 1.0)},
    ),
    # a single object: the released slice cuts it to its inner lists, which are not instance objects
    "single_object": (
        tagged(fenced(json.dumps(A))),
        GT,
        "bbox+2pos",
        {LENIENT: (1, 1, 1.0), TRAIN: (1, 0, 0.0), TEST: (1, 0, 0.0)},
    ),
    "negative_points_in_default_style": (
        tagged(fenced(js(NEG_A))),
        GT,
        "bbox+2pos",
        {LENIENT: (1, 1, 1.0), TRAIN: (1, 0, 0.0), TEST: (1, 0, 0.0)},
    ),
    # strings pass the released checks (float("10") works) but SAM cannot take them: IoU 0
    "numbers_as_strings": (
        tagged(fenced(js(STR_A))),
        GT,
        "bbox+2pos",
        {LENIENT: (1, 1, 1.0), TRAIN: (1, 1, 0.0), TEST: (1, 1, 0.0)},
    ),
    # one string array is enough: the released code passes np.array(instance["bbox_2d"]) (dtype <U2) to
    # SAM2ImagePredictor.predict, whose torch.as_tensor raises; the reward swallows it (tests/
    # test_segmenters_sam2.py::test_string_coordinates_raise_in_sam2_as_the_released_code_passes_them)
    "numbers_as_strings_box_only": (
        tagged(fenced(js(STR_BOX))),
        GT,
        "bbox+2pos",
        {LENIENT: (1, 1, 1.0), TRAIN: (1, 1, 0.0), TEST: (1, 1, 0.0)},
    ),
    "numbers_as_strings_points_only": (
        tagged(fenced(js(STR_PTS))),
        GT,
        "bbox+2pos",
        {LENIENT: (1, 1, 1.0), TRAIN: (1, 1, 0.0), TEST: (1, 1, 0.0)},
    ),
    # ... and with two instances the released NMS computes areas of strings and fails the whole answer
    "numbers_as_strings_two_instances": (
        tagged(fenced(js(STR_A, OUT))),
        GT,
        "bbox+2pos",
        {LENIENT: (1, 1, 0.5), TRAIN: (1, 0, 0.0), TEST: (1, 0, 0.0)},
    ),
    "stray_closing_brackets": (
        tagged(fenced(js(A) + "]]")),
        GT,
        "bbox+2pos",
        {p: (1, 1, 1.0) for p in POLICIES},
    ),
    "trailing_comma_single_quotes": (
        tagged(fenced("[{'bbox_2d': [0, 0, 49, 49], 'positive_points': [[10, 10], [20, 20]]},]")),
        GT,
        "bbox+2pos",
        {p: (1, 1, 1.0) for p in POLICIES},
    ),
    # all-or-nothing: one broken instance voids the answer (lenient keeps the valid one)
    "partly_broken_list": (
        tagged(fenced(js(A, {"bbox_2d": [1, 2, 3]}))),
        GT,
        "bbox+2pos",
        {LENIENT: (1, 0, 1.0), TRAIN: (1, 0, 0.0), TEST: (1, 0, 0.0)},
    ),
    "one_positive_point": (
        tagged(fenced(js(inst((0, 0, 49, 49), ((10, 10),))))),
        GT,
        "bbox+2pos",
        {p: (1, 0, 0.0) for p in POLICIES},
    ),
    # a missing positive_points key: the training check runs anyway (fails), the test check is skipped
    "missing_positive_points": (
        tagged(fenced(js(inst((0, 0, 49, 49), None)))),
        GT,
        "bbox+2pos",
        {LENIENT: (1, 0, 0.0), TRAIN: (1, 0, 0.0), TEST: (1, 1, 1.0)},
    ),
    # no box in a box style: released accepts positive points alone (IoU of the 11 x 11 point box)
    "points_without_box": (
        tagged(fenced(js(inst(None)))),
        GT,
        "bbox+2pos",
        {LENIENT: (1, 0, 0.0), TRAIN: (1, 1, 121 / 2500), TEST: (1, 1, 121 / 2500)},
    ),
    # NMS: lenient keeps the first of two duplicates, released the larger box (area-sorted)
    "nms_duplicates": (
        tagged(fenced(js(A, WIDE))),
        GT,
        "bbox+2pos",
        {LENIENT: (1, 1, 1.0), TRAIN: (1, 1, 2500 / 3000), TEST: (1, 1, 2500 / 3000)},
    ),
    "cut_off_completion": (
        '<think>t</think>\n<answer>```json[{"bbox_2d": [0, 0, 49, 49], "positive_points": [[10, 10], [20, ',
        GT,
        "bbox+2pos",
        {p: (0, 0, 0.0) for p in POLICIES},
    ),
    "answer_is_a_number": (tagged(fenced("42")), GT, "bbox+2pos", {p: (1, 0, 0.0) for p in POLICIES}),
    # style-dependent point rules
    "bbox_style_with_points": (
        tagged(fenced(js(A))),
        GT,
        "bbox",
        {LENIENT: (1, 1, 1.0), TRAIN: (1, 0, 0.0), TEST: (1, 0, 0.0)},
    ),
    "bbox_style_box_only": (
        tagged(fenced(js(inst((0, 0, 49, 49), None)))),
        GT,
        "bbox",
        {p: (1, 1, 1.0) for p in POLICIES},
    ),
    "neg_style_without_negatives": (
        tagged(fenced(js(A))),
        GT,
        "bbox+2pos+2neg",
        {LENIENT: (1, 0, 0.0), TRAIN: (1, 0, 0.0), TEST: (1, 1, 1.0)},
    ),
    "neg_style_with_negatives": (
        tagged(fenced(js(NEG_A))),
        GT,
        "bbox+2pos+2neg",
        {p: (1, 1, 1.0) for p in POLICIES},
    ),
}

# answers the released training parser accepts without any repair of meaning: every policy must agree
RELEASED_VALID = [
    "valid",
    "valid_half",
    "valid_two_instances",
    "empty_on_empty_target",
    "answer_on_empty_target",
    "stray_closing_brackets",
    "trailing_comma_single_quotes",
    "bbox_style_box_only",
    "neg_style_with_negatives",
]


def terms(completion, gt, style, policy):
    funcs = think2seg_rewards(BoxFillSegmenter(), style, policy=policy)
    return tuple(f([completion], image=[IMG], gt_mask=[gt])[0] for f in funcs)


class TestParsePolicyTable:
    @pytest.mark.parametrize("name", sorted(TABLE))
    @pytest.mark.parametrize("policy", POLICIES)
    def test_terms(self, name, policy):
        completion, gt, style, expected = TABLE[name]
        tag, json_ok, iou = terms(completion, gt, style, policy)
        assert (tag, json_ok) == expected[policy][:2], (name, policy)
        assert iou == pytest.approx(expected[policy][2]), (name, policy)

    @pytest.mark.parametrize("name", RELEASED_VALID)
    def test_released_valid_answers_score_the_same_under_every_policy(self, name):
        completion, gt, style, _ = TABLE[name]
        totals = {}
        for policy in POLICIES:
            t = terms(completion, gt, style, policy)
            totals[policy] = sum(w * v for w, v in zip(REWARD_WEIGHTS, t, strict=True))
        assert len(set(totals.values())) == 1, totals
        assert parse_completion(completion, style, SIZE, policy=TRAIN).json_ok

    def test_table_covers_every_difference_of_policies(self):
        differ = {n for n, (_, _, _, e) in TABLE.items() if len(set(e.values())) > 1}
        assert len(differ) >= 15 and not differ & set(RELEASED_VALID)


class TestCompatReleased:
    def test_compat_released_is_the_training_parser_and_the_total_is_the_released_one(self):
        funcs = think2seg_rewards(BoxFillSegmenter(), compat="released")
        assert funcs[1]._parse.policy == TRAIN and funcs[1]._parse is funcs[2]._parse
        for name, (completion, gt, style, expected) in TABLE.items():
            if style != "bbox+2pos":
                continue
            got = sum(
                w * f([completion], image=[IMG], gt_mask=[gt])[0] for w, f in zip(REWARD_WEIGHTS, funcs, strict=True)
            )
            tag, j, iou = expected[TRAIN]
            assert got == pytest.approx(tag + j + 2 * iou), name

    def test_unknown_compat_and_policy_are_named(self):
        with pytest.raises(ValueError, match="'authors'.*released"):
            think2seg_rewards(BoxFillSegmenter(), compat="authors")
        with pytest.raises(ValueError, match="'strict'.*lenient.*released-train.*released-test"):
            build_reward_funcs("think2seg", policy="strict")
        with pytest.raises(ValueError, match="think2seg scheme only"):
            build_reward_funcs("segzero", policy=TRAIN)

    def test_scheme_registry_passes_the_policy(self):
        funcs, weights = build_reward_funcs("think2seg", segmenter=BoxFillSegmenter(), policy=TEST)
        assert weights == REWARD_WEIGHTS and funcs[2].policy == TEST


class TestReleasedPrompts:
    """The released code hands SAM the numbers as written; the released policies keep them so."""

    def test_coordinates_are_kept_as_written(self):
        obj = {"bbox_2d": [60.5, 70, 10, 900], "positive_points": [[5.25, 6], [-3, 7]]}
        r = parse_completion(tagged(fenced(js(obj))), policy=TRAIN, image_size=100)
        assert r.json_ok and r.instances[0].box == (60.5, 70, 10, 900)
        assert r.instances[0].positive == ((5.25, 6), (-3, 7))
        lenient = parse_completion(tagged(fenced(js(obj))), image_size=100)
        assert lenient.instances[0].box == (10, 70, 60, 99)  # sorted, rounded, clipped

    def test_non_finite_instance_gets_no_mask_but_the_answer_stays_valid(self):
        text = tagged(
            fenced(
                '[{"bbox_2d": [0, 0, NaN, 49], "positive_points": [[1, 1], [2, 2]]}, '
                + json.dumps(HALF)
                + "]"
            )
        )
        r = parse_completion(text, policy=TEST, image_size=100)
        assert r.json_ok and [i.box for i in r.instances] == [(0, 0, 24, 49)]

    def test_policy_is_recorded(self):
        rec = parse_completion(tagged(fenced("[]")), policy=TEST).to_record()
        assert rec["parse_policy"] == TEST and rec["answer_empty"]
        with pytest.raises(ValueError, match="unknown parse policy 'loose'"):
            parse_completion("x", policy="loose")


def test_every_reward_function_pickles():
    """trl may send reward functions to other processes: each must survive pickling and still work."""
    for scheme in ("think2seg", "segzero", "visionreasoner", "remotereasoner"):
        for policy in POLICIES if scheme == "think2seg" else (LENIENT,):
            funcs, _ = build_reward_funcs(scheme, segmenter="grabcut", policy=policy)
            for f in funcs:
                clone = pickle.loads(pickle.dumps(f))
                if getattr(clone, "__name__", "") in ("think_format_reward", "json_format"):
                    text = tagged(fenced(js(A)))
                    assert clone([text], image=[IMG], gt_mask=[GT]) == f([text], image=[IMG], gt_mask=[GT])


@pytest.mark.parametrize("config", ["paper_qwen3b", "paper_qwen7b", "paper_qwen3b_vllm"])
def test_paper_configs_train_on_the_released_reward_and_record_it(config, tmp_path):
    from pathlib import Path

    from think2seg.training.grpo import parse_args, save_resolved_config

    path = Path(__file__).resolve().parent.parent / "configs" / "train" / f"{config}.yaml"
    t2s, cfg = parse_args(["--config", str(path), "--output_dir", str(tmp_path), "--bf16", "false"])
    assert t2s.parse_policy == TRAIN and t2s.reward == "think2seg"
    saved = json.loads(save_resolved_config(t2s, cfg).read_text())
    assert saved["think2seg"]["parse_policy"] == TRAIN
