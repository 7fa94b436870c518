"""Segmenter specs, checkpoint discovery, shared helpers and the GrabCut backend (all fast, no torch model)."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from think2seg.core.types import Instance
from think2seg.segmenters import (
    ENV_VAR,
    CheckpointNotFoundError,
    GrabCutSegmenter,
    Segmenter,
    build_segmenter,
    find_sam2_checkpoints,
    image_key,
    parse_segmenter_spec,
    released_style_segment,
    resolve_sam2_checkpoint,
    segment_many,
)
from think2seg.segmenters.base import as_rgb, instance_arrays
from think2seg.segmenters.grabcut import GrabCutFallbackWarning

# ---------------------------------------------------------------------------------------------- specs


@pytest.mark.parametrize(
    "text, backend, size, checkpoint, canonical",
    [
        ("grabcut", "grabcut", None, None, "grabcut"),
        (" GrabCut ", "grabcut", None, None, "grabcut"),
        ("boxfill", "boxfill", None, None, "boxfill"),
        ("BoxFill ", "boxfill", None, None, "boxfill"),
        ("sam2", "sam2", "small", None, "sam2:small"),
        ("sam2:", "sam2", "small", None, "sam2:small"),
        ("sam2:t", "sam2", "tiny", None, "sam2:tiny"),
        ("sam2:small:random", "sam2", "small", "random", "sam2:small:random"),
        ("sam2:S:RANDOM", "sam2", "small", "random", "sam2:small:random"),
        ("sam2:b+", "sam2", "base+", None, "sam2:base+"),
        ("sam2:base_plus:random", "sam2", "base+", "random", "sam2:base+:random"),
        ("sam2:large:/ckpt/dir", "sam2", "large", "/ckpt/dir", "sam2:large:/ckpt/dir"),
        ("sam2:l:/a:b/c.pt", "sam2", "large", "/a:b/c.pt", "sam2:large:/a:b/c.pt"),
    ],
)
def test_parse_segmenter_spec(text, backend, size, checkpoint, canonical):
    spec = parse_segmenter_spec(text)
    assert (spec.backend, spec.size, spec.checkpoint) == (backend, size, checkpoint)
    assert str(spec) == canonical
    assert parse_segmenter_spec(str(spec)) == spec


@pytest.mark.parametrize(
    "text, words",
    [
        ("", ["empty"]),
        ("sam9", ["sam9", "grabcut"]),
        ("sam2:huge", ["huge", "tiny, small, base+, large"]),
        ("grabcut:5", ["grabcut", "no size"]),
        ("boxfill:small", ["boxfill", "no size"]),
    ],
)
def test_parse_segmenter_spec_errors(text, words):
    with pytest.raises(ValueError) as err:
        parse_segmenter_spec(text)
    for w in words:
        assert w in str(err.value)


# --------------------------------------------------------------------------------------- checkpoints


def test_find_sam2_checkpoints(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "sam2.1_hiera_small.pt").write_bytes(b"x")
    (b / "sam2.1_hiera_small.pt").write_bytes(b"x")
    (b / "sam2.1_hiera_large.pt").write_bytes(b"x")
    (b / "sam2_hiera_tiny.pt").write_bytes(b"x")  # SAM 2.0 name: not a SAM2.1 checkpoint
    found = find_sam2_checkpoints([a, b])
    assert found == {"tiny": None, "small": a / "sam2.1_hiera_small.pt", "base+": None,
                     "large": b / "sam2.1_hiera_large.pt"}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ENV_VAR, f"{b}{os.pathsep}{a}")
    assert find_sam2_checkpoints()["small"] == b / "sam2.1_hiera_small.pt"
    assert resolve_sam2_checkpoint("large") == b / "sam2.1_hiera_large.pt"
    assert resolve_sam2_checkpoint("small", a) == a / "sam2.1_hiera_small.pt"  # a folder
    assert resolve_sam2_checkpoint("small", b / "sam2.1_hiera_small.pt") == b / "sam2.1_hiera_small.pt"


def test_missing_checkpoint_error_names_file_env_and_url(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(CheckpointNotFoundError) as err:
        build_segmenter("sam2:base+")
    msg = str(err.value)
    for part in ["sam2.1_hiera_base_plus.pt", ENV_VAR, "unset",
                 "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_base_plus.pt",
                 "sam2:base+:random"]:
        assert part in msg
    with pytest.raises(CheckpointNotFoundError, match=r"nope.*sam2\.1_hiera_large\.pt"):
        resolve_sam2_checkpoint("large", tmp_path / "nope.pt")
    with pytest.raises(CheckpointNotFoundError, match="sam2.1_hiera_tiny.pt does not exist"):
        build_segmenter(f"sam2:tiny:{tmp_path}")  # a folder without the official file


# ------------------------------------------------------------------------------------------- helpers


def test_as_rgb_and_image_key():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert as_rgb(gray).shape == (3, 4, 3)
    rgba = np.zeros((3, 4, 4), np.uint8)
    assert as_rgb(rgba).shape == (3, 4, 3) and as_rgb(rgba).flags.c_contiguous
    with pytest.raises(ValueError, match="uint8"):
        as_rgb(np.zeros((3, 4, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        as_rgb(np.zeros((3, 4, 2), np.uint8))
    img = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    assert image_key(img) == image_key(img.copy())
    assert image_key(img[:, ::-1]) == image_key(np.ascontiguousarray(img[:, ::-1]))
    other = img.copy()
    other[7, 9, 1] ^= 1
    assert image_key(other) != image_key(img)
    assert image_key(img.reshape(30, 20, 3)) != image_key(img)


def test_instance_arrays_positives_first():
    coords, labels, box = instance_arrays(Instance(box=(1, 2, 3, 4), positive=((5, 6),), negative=((7, 8),)))
    assert coords.tolist() == [[5, 6], [7, 8]] and labels.tolist() == [1, 0] and box.tolist() == [1, 2, 3, 4]
    assert instance_arrays(Instance()) == (None, None, None)
    c, lab, b = instance_arrays(Instance(negative=((1, 1), (2, 2))))
    assert c.shape == (2, 2) and lab.tolist() == [0, 0] and b is None


def test_build_segmenter_is_cached_per_spec():
    a = build_segmenter("grabcut")
    assert a is build_segmenter(" grabcut", device="cuda")  # grabcut is CPU-only: one instance
    assert isinstance(a, Segmenter) and isinstance(a, GrabCutSegmenter)


# ------------------------------------------------------------------------------------------- GrabCut


def scene(h=128, w=160, seed=0):
    """Noise background, a red disc (centre 80,60 r 25) and a green block touching the top-left corner."""
    rng = np.random.default_rng(seed)
    img = rng.normal(100, 15, (h, w, 3)).clip(0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:h, :w]
    disc = (xx - 80) ** 2 + (yy - 60) ** 2 < 25**2
    corner = (xx < 30) & (yy < 40)
    img[disc] = (200, 60, 60)
    img[corner] = (40, 170, 60)
    return img, disc, corner


def iou(a, b):
    return (a & b).sum() / max(1, (a | b).sum())


DISC_BOX = (52, 32, 108, 88)
CORNER_BOX = (0, 0, 29, 39)


@pytest.mark.parametrize(
    "prompts, target, min_iou",
    [
        ([Instance(box=DISC_BOX)], "disc", 0.95),
        ([Instance(box=DISC_BOX, positive=((80, 60), (90, 70)), negative=((54, 34),))], "disc", 0.95),
        ([Instance(box=(108, 88, 52, 32))], "disc", 0.95),  # inverted corners are sorted
        ([Instance(positive=((78, 58), (88, 66)))], "disc", 0.9),  # points only: guessed rectangle
        ([Instance(box=CORNER_BOX)], "corner", 0.95),  # touches the border
        ([Instance(box=(-20, -10, 29, 39))], "corner", 0.95),  # partly outside the image
        ([Instance(box=DISC_BOX), Instance(box=CORNER_BOX)], "both", 0.95),  # union
    ],
)
def test_grabcut_recovers_objects(prompts, target, min_iou):
    img, disc, corner = scene()
    gt = {"disc": disc, "corner": corner, "both": disc | corner}[target]
    seg = GrabCutSegmenter()
    (mask,) = seg.segment(img, [prompts])
    assert mask.shape == disc.shape and mask.dtype == bool
    assert iou(mask, gt) >= min_iou
    assert seg.stats.get("fallbacks", 0) == 0


@pytest.mark.parametrize(
    "prompts",
    [
        [],
        [Instance()],
        [Instance(box=(300, 300, 400, 400))],  # misses the image
        [Instance(negative=((10, 10), (50, 50)))],  # negatives alone select nothing
        [Instance(positive=((-5, -5), (999, 10)))],  # points outside the image are dropped
    ],
)
def test_grabcut_empty_results(prompts):
    img, _, _ = scene()
    (mask,) = GrabCutSegmenter().segment(img, [prompts])
    assert mask.shape == img.shape[:2] and mask.dtype == bool and not mask.any()


def test_grabcut_degenerate_boxes_and_fallback():
    img, _, _ = scene()
    seg = GrabCutSegmenter()
    zero, thin = seg.segment(img, [[Instance(box=(5, 7, 5, 7))], [Instance(box=(40, 10, 41, 90))]])
    assert np.argwhere(zero).tolist() == [[7, 5]]  # a zero-area box is its own pixel
    assert thin.sum() == 2 * 81 and thin[10:91, 40:42].all()
    assert seg.stats["tiny_boxes"] == 2 and seg.stats.get("fallbacks", 0) == 0
    # a box over the whole image leaves GrabCut no background sample: fall back to the box, warn, count
    with pytest.warns(GrabCutFallbackWarning, match="no background"):
        (whole,) = seg.predict([[Instance(box=(0, 0, 159, 127))]])
    assert whole.all() and seg.stats["fallbacks"] == 1
    # ... unless a negative point gives it one
    with warnings.catch_warnings():
        warnings.simplefilter("error", GrabCutFallbackWarning)
        (neg,) = seg.predict([[Instance(box=(0, 0, 159, 127), negative=((140, 110),))]])
    assert not neg[110, 140] and seg.stats["fallbacks"] == 1
    # a flat image does not crash either
    (flat,) = GrabCutSegmenter().segment(np.full((40, 50, 3), 7, np.uint8), [[Instance(box=(10, 10, 30, 30))]])
    assert flat.shape == (40, 50)


def test_grabcut_is_deterministic_and_set_image_is_cached():
    img, _, _ = scene()
    seg = GrabCutSegmenter()
    sets = [[Instance(box=DISC_BOX)], [Instance(positive=((80, 60), (70, 50)))]]
    first = seg.segment(img, sets)
    second = seg.segment(img.copy(), sets)
    assert all((a == b).all() for a, b in zip(first, second, strict=True))
    assert seg.stats["images"] == 2 and seg.stats["cache_hits"] == 1


def test_grabcut_cuts_identical_instances_once():
    img, disc, _ = scene()
    seg = GrabCutSegmenter()
    a = Instance(box=DISC_BOX)
    m1, m2, m3 = seg.segment(img, [[a], [Instance(box=tuple(DISC_BOX))], [a, Instance(box=CORNER_BOX)]])
    assert seg.stats["grabcut_calls"] == 2 and seg.stats["duplicates"] == 2
    assert np.array_equal(m1, m2) and np.array_equal(m3 & disc, m1 & disc) and (m3 & ~m1).any()


def test_segment_many_groups_by_content_and_keeps_order():
    img_a, _, _ = scene(seed=0)
    img_b, _, _ = scene(seed=1)
    sets = [[Instance(box=DISC_BOX)], [Instance(box=CORNER_BOX)], [], [Instance(box=(60, 40, 100, 80))]]
    images = [img_a, img_b, img_a.copy(), img_a]
    seg = GrabCutSegmenter()
    got = segment_many(seg, images, sets)
    assert seg.stats["images"] == 2  # one set_image per distinct content
    want = [GrabCutSegmenter().segment(im, [ps])[0] for im, ps in zip(images, sets, strict=True)]
    assert all((g == w).all() for g, w in zip(got, want, strict=True))
    assert not got[2].any() and got[0].any() and got[1].any()
    with pytest.raises(ValueError, match="2 images but 1 prompt sets"):
        segment_many(seg, [img_a, img_b], [[]])


def test_released_style_generic_path_matches():
    img, _, _ = scene()
    sets = [[Instance(box=DISC_BOX), Instance(box=CORNER_BOX)], [], [Instance(positive=((80, 60), (85, 65)))]]
    seg = GrabCutSegmenter()
    fast = seg.segment(img, sets)
    before = seg.stats["images"]
    slow = released_style_segment(seg, img, sets)
    assert seg.stats["images"] - before == 3  # the image is set again for every completion
    assert all((a == b).all() for a, b in zip(fast, slow, strict=True))


def test_predict_before_set_image_is_a_clear_error():
    with pytest.raises(RuntimeError, match="set_image"):
        GrabCutSegmenter().predict([[Instance(box=(1, 1, 5, 5))]])


points = st.tuples(st.integers(-10, 70), st.integers(-10, 60))
instances = st.builds(
    Instance,
    box=st.none() | st.tuples(*[st.integers(-20, 80)] * 4),
    positive=st.lists(points, max_size=3).map(tuple),
    negative=st.lists(points, max_size=2).map(tuple),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=instances)
def test_grabcut_never_crashes_and_keeps_definite_seeds(inst):
    img = np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    seg = GrabCutSegmenter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GrabCutFallbackWarning)
        (mask,) = seg.segment(img, [[inst]])
    assert mask.shape == (48, 64) and mask.dtype == bool
    for x, y in inst.positive:  # positive seeds are definite foreground
        if 0 <= x < 64 and 0 <= y < 48:
            assert mask[y, x]
    pos = {(x, y) for x, y in inst.positive}
    for x, y in inst.negative:  # negative seeds are definite background (unless a positive sits near)
        near = any(abs(x - px) <= 4 and abs(y - py) <= 4 for px, py in pos)
        if 0 <= x < 64 and 0 <= y < 48 and not near:
            assert not mask[y, x]
    if not inst.positive and inst.box is None:
        assert not mask.any()


# ----------------------------------------------------------------------------------------------- boxfill
@pytest.mark.parametrize(
    "prompts, pixels, inside, outside",
    [
        ([Instance(box=(1, 2, 3, 5))], 12, [(1, 2), (3, 5)], [(4, 5), (3, 6)]),  # inclusive corners, (x, y)
        ([Instance(box=(3, 5, 1, 2))], 12, [(1, 2), (3, 5)], [(0, 0)]),  # corners sorted
        ([Instance(box=(-4, -4, 1, 1))], 4, [(0, 0), (1, 1)], [(2, 2)]),  # clipped to the image
        ([Instance(box=(20, 20, 30, 30))], 0, [], [(9, 9)]),  # wholly outside: nothing
        ([Instance(positive=[(2, 2), (4, 3)])], 6, [(2, 2), (4, 3)], [(5, 3)]),  # no box: the points' rectangle
        ([Instance(box=(0, 0, 1, 1)), Instance(box=(8, 8, 9, 9))], 8, [(0, 0), (9, 9)], [(5, 5)]),  # union
        ([Instance(box=(0, 0, 9, 9), negative=[(5, 5)])], 100, [(5, 5)], []),  # negatives ignored
        ([], 0, [], [(0, 0)]),
    ],
)
def test_boxfill_table(prompts, pixels, inside, outside):
    m = build_segmenter("boxfill").segment(np.zeros((10, 10, 3), np.uint8), [prompts])[0]
    assert m.shape == (10, 10) and m.dtype == bool and int(m.sum()) == pixels
    assert all(m[y, x] for x, y in inside) and not any(m[y, x] for x, y in outside)


def test_boxfill_big_box_pays_only_its_overlap():
    """The reason to train with it: a near-whole-image box scores the target's share of the image."""
    from think2seg.core.metrics import record, sample_iou

    gt = np.zeros((100, 100), bool)
    gt[10:20, 10:20] = True
    seg = build_segmenter("boxfill")
    tight, big = seg.segment(np.zeros((100, 100, 3), np.uint8), [[Instance(box=(10, 10, 19, 19))],
                                                                  [Instance(box=(0, 0, 99, 99))]])
    assert sample_iou(record(tight, gt)) == 1.0 and sample_iou(record(big, gt)) == pytest.approx(0.01)
