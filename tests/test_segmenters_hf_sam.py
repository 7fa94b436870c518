"""transformers' SAM models as segmenters (hf-sam2, samhq, sam3 tracker): tiny random-init models of the
real classes saved with save_pretrained and built from their spec strings (no mocks, no downloads)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from tiny_sam import TINY_SAM_BACKENDS, build_tiny_sam

from think2seg.core.errors import ModelNotFoundError
from think2seg.core.types import Instance
from think2seg.rewards import think2seg_rewards
from think2seg.segmenters import build_segmenter, parse_segmenter_spec, released_style_segment, segment_many
from think2seg.segmenters.hf_sam import HFSamSegmenter, RandomWeightsWarning

H, W = 120, 200
BOX_A, BOX_B = (10, 10, 100, 80), (110, 30, 190, 115)


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_sam")
    for b in TINY_SAM_BACKENDS:
        build_tiny_sam(b, root / b)
    return {b: root / b for b in TINY_SAM_BACKENDS}


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    a[20:70, 30:90] = (220, 40, 40)
    return a, np.ascontiguousarray(a[::-1])


def _seg(tiny_dirs, backend) -> HFSamSegmenter:
    return build_segmenter(f"{backend}:{tiny_dirs[backend]}", device="cpu")


def test_specs_name_the_backend_and_default_hub_ids():
    assert str(parse_segmenter_spec("sam3")) == "sam3:facebook/sam3"
    assert parse_segmenter_spec("samhq:/m/sam-hq").checkpoint == "/m/sam-hq"
    assert parse_segmenter_spec("hf-sam2:facebook/sam2.1-hiera-large").checkpoint == "facebook/sam2.1-hiera-large"
    with pytest.raises(ModelNotFoundError, match="nope"):
        build_segmenter("samhq:/nonexistent/nope", device="cpu")


@pytest.mark.parametrize("backend", TINY_SAM_BACKENDS)
def test_reports_dtype_device_and_shares_one_embedding_per_image(tiny_dirs, images, backend):
    seg = _seg(tiny_dirs, backend)
    assert build_segmenter(f"{backend}:{tiny_dirs[backend]}", device="cpu") is seg  # one per process
    assert (seg.dtype, seg.device) == ("float32", "cpu")
    before = dict(seg.stats)
    sets = [[Instance(box=BOX_A, positive=((50, 40),))], [Instance(box=BOX_B)], [], [Instance()]]
    masks = seg.segment(images[0], sets)
    assert seg.stats["encoder_calls"] - before.get("encoder_calls", 0) <= 1
    assert [m.shape for m in masks] == [(H, W)] * 4 and all(m.dtype == bool for m in masks)
    assert not masks[2].any() and not masks[3].any()  # no usable instance: empty mask, no decoder call


@pytest.mark.parametrize("backend", TINY_SAM_BACKENDS)
def test_prompts_reach_the_model_in_the_processors_coordinate_space(tiny_dirs, images, backend):
    from transformers import AutoProcessor

    seg = _seg(tiny_dirs, backend)
    seg.set_image(images[0])
    entry = seg._cache[seg._key]
    inst = Instance(box=BOX_A, positive=((50, 40), (70, 60)), negative=((95, 75),))
    got = seg.prompt_tensors(entry, [inst])
    ref = AutoProcessor.from_pretrained(tiny_dirs[backend])(
        images=images[0], input_boxes=[[list(BOX_A)]], input_points=[[[[50, 40], [70, 60], [95, 75]]]],
        input_labels=[[[1, 1, 0]]], return_tensors="pt")
    for k in ("input_boxes", "input_points", "input_labels"):
        assert torch.equal(got[k].cpu(), ref[k]), k  # the library's own transform of the original pixels
    # a box prompt changes the mask, and moving the box moves it
    a, b, none = seg.predict([[Instance(box=BOX_A)], [Instance(box=BOX_B)], []])
    assert a.any() and not np.array_equal(a, b) and not none.any()


@pytest.mark.parametrize("backend", TINY_SAM_BACKENDS)
def test_cached_embedding_gives_the_masks_of_a_fresh_full_forward(tiny_dirs, images, backend):

    seg = _seg(tiny_dirs, backend)
    insts = [Instance(box=BOX_A, positive=((50, 40),)), Instance(box=BOX_B, positive=((150, 70),))]
    seg.set_image(images[1])  # another image in between: the first one comes from the cache
    hits = seg.stats.get("cache_hits", 0)
    (cached,) = seg.segment(images[0], [insts])
    assert seg.stats["cache_hits"] == hits + 1
    # fresh: the public transformers API, pixels -> masks in one forward per instance, OR-union
    model, proc = seg.load()
    fresh = np.zeros((H, W), bool)
    for inst in insts:
        enc = proc(images=images[0], input_boxes=[[list(inst.box)]], input_points=[[[list(p) for p in inst.positive]]],
                   input_labels=[[[1]]], return_tensors="pt")
        with torch.inference_mode():
            out = model(pixel_values=enc["pixel_values"], input_points=enc["input_points"],
                        input_labels=enc["input_labels"], input_boxes=enc["input_boxes"], multimask_output=False)
        extra = [enc["reshaped_input_sizes"]] if "reshaped_input_sizes" in enc else []
        fresh |= proc.post_process_masks(out.pred_masks, enc["original_sizes"], *extra)[0][0, 0].numpy()
    assert cached.any() and np.array_equal(cached, fresh)
    assert np.array_equal(released_style_segment(seg, images[0], [insts])[0], cached)


@pytest.mark.parametrize("backend", TINY_SAM_BACKENDS)
def test_union_rule_and_off_image_prompts(tiny_dirs, images, backend):
    seg = _seg(tiny_dirs, backend)
    seg.set_image(images[0])
    insts = [Instance(box=BOX_A), Instance(positive=((-20, 300), (5, 5)), negative=((250, 10),)),
             Instance(box=(300, 200, 400, 260)), Instance(box=BOX_A)]  # off the image: passed as given
    union, *singles = seg.predict([insts] + [[i] for i in insts])
    assert np.array_equal(union, np.logical_or.reduce(singles))
    assert seg.stats["duplicates"] >= 1  # the repeated box is decoded once


@pytest.mark.parametrize("backend", TINY_SAM_BACKENDS)
def test_reward_path_runs(tiny_dirs, images, backend):
    seg = _seg(tiny_dirs, backend)
    gt = np.zeros((H, W), bool)
    gt[20:70, 30:90] = True
    reward = think2seg_rewards(seg, "bbox")[2]
    good = '<think>x</think><answer>```json[{"bbox_2d": [30, 20, 89, 69]}]```</answer>'
    other = '<think>x</think><answer>```json[{"bbox_2d": [120, 30, 190, 110]}]```</answer>'
    r = reward([good, other, "no answer"], image=[images[0]] * 3, gt_mask=[gt] * 3)
    assert len(r) == 3 and all(0.0 <= x <= 1.0 for x in r) and r[2] == 0.0
    assert r[0] != r[1]
    masks = segment_many(seg, [images[0], images[1], images[0]], [[Instance(box=BOX_A)]] * 3)
    assert np.array_equal(masks[0], masks[2])


def test_random_weights_are_announced(tiny_dirs):
    with pytest.warns(RandomWeightsWarning, match="RANDOM WEIGHTS"):
        seg = HFSamSegmenter("samhq", "random", device="cpu")
    assert seg.name == "samhq:random" and seg._model is None  # loads lazily
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="unknown transformers SAM backend"):
            HFSamSegmenter("sam9")


def test_table5_probe_and_paper_preflight_check_hf_weights(tiny_dirs, tmp_path):
    from think2seg.reports.ablations import probe_sam2
    from think2seg.reports.resources import missing_inputs

    probe = probe_sam2("-", "-", spec=f"samhq:{tiny_dirs['samhq']}",
                       prompts=[[Instance(box=BOX_A).to_json()]], out=tmp_path / "m.npz")
    assert abs(probe["params_M"] - _seg(tiny_dirs, "samhq").num_parameters / 1e6) < 1e-9 and probe["encoder_ms"] > 0
    books = {"05_ablations": {"hf_segmenters": {"here": f"sam3:{tiny_dirs['sam3']}", "gone": "samhq:/nonexistent/sam-hq",
                                                "hub": "hf-sam2:no-such-org/no-such-sam"}}}
    missing = missing_inputs(books, repo=tmp_path)
    assert len(missing) == 2 and "samhq weights: /nonexistent/sam-hq" in missing[0]
    assert "no-such-org/no-such-sam: not in the local hub cache" in missing[1]
