"""Oracle prompter: GT mask -> boxes / interior points / nearby negatives, for every prompt style."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from think2seg.core.mask_to_prompts import spread_points
from think2seg.core.parsing import parse_completion
from think2seg.core.styles import STYLES, get_style
from think2seg.core.types import Sample
from think2seg.prompters import OraclePrompter, build_prompter, mask_to_instances

YY, XX = np.mgrid[:100, :100]


def _empty():
    return np.zeros((100, 100), bool)


def _l_shape():
    m = _empty()
    m[10:90, 10:25] = True  # vertical arm
    m[75:90, 10:90] = True  # horizontal arm
    return m


def _ring():
    r = np.hypot(YY - 50, XX - 50)
    return (r >= 30) & (r < 40)


def _c_shape():  # concave: the ring with its right side cut away
    return _ring() & (XX < 60)


def _diagonal_line():  # 1 px wide, the thinnest possible shape
    m = _empty()
    idx = np.arange(5, 95)
    m[idx, idx] = True
    return m


def _border_rect():  # touches the image border
    m = _empty()
    m[0:30, 0:100] = True
    return m


def _two_discs():
    return (np.hypot(YY - 25, XX - 25) < 15) | (np.hypot(YY - 70, XX - 70) < 10)


def _single_pixel():
    m = _empty()
    m[40, 60] = True
    return m


# name -> (mask, number of components)
SHAPES = {
    "L": (_l_shape, 1),
    "ring": (_ring, 1),
    "C": (_c_shape, 1),
    "diagonal line": (_diagonal_line, 1),
    "border rect": (_border_rect, 1),
    "two discs": (_two_discs, 2),
    "single pixel": (_single_pixel, 1),
}


def _box_of(mask):
    ys, xs = np.nonzero(mask)
    return (xs.min(), ys.min(), xs.max(), ys.max())


@pytest.mark.parametrize("style", sorted(STYLES))
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_shape_and_style_gives_valid_prompts(shape, style):
    make, n_comp = SHAPES[shape]
    mask = make()
    st = get_style(style)
    insts = mask_to_instances(mask, style, min_area=1)
    assert len(insts) == n_comp
    import cv2

    _, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    for inst in insts:
        assert tuple(inst.to_json()) == st.keys
        assert len(inst.positive) == st.n_pos and len(inst.negative) == st.n_neg
        for x, y in inst.positive:
            assert mask[y, x], f"positive point {(x, y)} outside the {shape} mask"
        for x, y in inst.negative:
            assert not mask[y, x], f"negative point {(x, y)} inside the {shape} mask"
        if st.box:
            # the box is tight around exactly one component, and every positive point lies in it
            x1, y1, x2, y2 = inst.box
            comp = {labels[y, x] for x, y in inst.positive} if inst.positive else set()
            assert len(comp) <= 1
            if comp:
                assert _box_of(labels == comp.pop()) == inst.box
            for x, y in inst.positive:
                assert x1 <= x <= x2 and y1 <= y <= y2


@pytest.mark.parametrize(
    "shape, min_dist",
    [("L", 30), ("ring", 40), ("C", 20), ("diagonal line", 40), ("border rect", 20)],
)
def test_positive_points_are_spread_apart(shape, min_dist):
    ((p, q),) = [i.positive for i in mask_to_instances(SHAPES[shape][0](), "2pos")]
    assert np.hypot(p[0] - q[0], p[1] - q[1]) >= min_dist


def test_first_point_is_the_deepest_and_off_the_boundary():
    disc = np.hypot(YY - 50, XX - 40) < 20
    (p,) = spread_points(disc, 1)
    assert abs(p[0] - 40) <= 1 and abs(p[1] - 50) <= 1
    # points avoid the border of a mask touching the image edge (the border counts as background)
    (inst,) = mask_to_instances(_border_rect(), "bbox+4pos")
    assert all(y > 0 and 0 < x < 99 for x, y in inst.positive)


def test_four_points_on_a_ring_cover_its_four_quadrants():
    (inst,) = mask_to_instances(_ring(), "bbox+4pos")
    quadrants = {(x > 50, y > 50) for x, y in inst.positive}
    assert len(quadrants) == 4


def test_negatives_sit_in_the_concavity_of_an_l_within_the_margin():
    (inst,) = mask_to_instances(_l_shape(), "bbox+2pos+2neg", neg_margin=6)
    x1, y1, x2, y2 = inst.box
    m = _l_shape()
    for x, y in inst.negative:
        assert x1 <= x <= x2 and y1 <= y <= y2  # inside the box (the empty quadrant)
        near = m[max(y - 6, 0) : y + 7, max(x - 6, 0) : x + 7]
        assert near.any()  # within the margin of the component


def test_negatives_never_land_on_another_component():
    # a small square hugging a big one: the big one's ring overlaps the small one
    m = _empty()
    m[20:80, 20:60] = True
    m[40:50, 62:70] = True
    for inst in mask_to_instances(m, "bbox+2pos+2neg", neg_margin=10):
        assert all(not m[y, x] for x, y in inst.negative)


def test_negatives_for_a_filled_box_fall_just_outside_it():
    m = _empty()
    m[30:60, 40:70] = True
    (inst,) = mask_to_instances(m, "bbox+2pos+2neg", neg_margin=5)
    for x, y in inst.negative:
        assert not m[y, x]
        assert 35 <= x <= 74 and 25 <= y <= 64


def test_two_components_largest_first_and_whole_mode_gives_one():
    insts = mask_to_instances(_two_discs(), "bbox+2pos")
    assert len(insts) == 2
    assert insts[0].box == _box_of(np.hypot(YY - 25, XX - 25) < 15)
    (whole,) = mask_to_instances(_two_discs(), "bbox+2pos", mode="whole")
    assert whole.box == _box_of(_two_discs())
    assert all(_two_discs()[y, x] for x, y in whole.positive)


def test_specks_dropped_unless_everything_is_a_speck_and_max_instances_caps():
    m = _two_discs()
    m[95, 5] = True  # a 1-pixel speck
    assert len(mask_to_instances(m, "bbox", min_area=20)) == 2
    assert len(mask_to_instances(m, "bbox", min_area=1)) == 3
    assert len(mask_to_instances(m, "bbox", min_area=10_000)) == 1  # all "specks": keep the largest
    assert len(mask_to_instances(m, "bbox", min_area=1, max_instances=2)) == 2


@pytest.mark.parametrize("mode", ["components", "whole"])
@pytest.mark.parametrize("style", sorted(STYLES))
def test_empty_mask_gives_no_instance(mode, style):
    assert mask_to_instances(_empty(), style, mode) == []


def test_full_mask_with_negatives_does_not_crash():
    (inst,) = mask_to_instances(np.ones((20, 30), bool), "bbox+2pos+2neg")
    assert inst.box == (0, 0, 29, 19) and len(inst.negative) == 2


@pytest.mark.parametrize(
    "kwargs, error",
    [({"mode": "blobs"}, "unknown oracle mode"), ({"style": "bbox+3pos"}, "unknown prompt style")],
)
def test_bad_options_are_named(kwargs, error):
    with pytest.raises(ValueError, match=error):
        OraclePrompter(**kwargs)


# -- the prompter on samples ----------------------------------------------------------------------


def _sample(tmp_path, name, mask):
    h, w = mask.shape
    path = tmp_path / f"{name}.png"
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(path)
    return Sample(
        id=name,
        image_id=name,
        question="q",
        image_path=path,
        dataset="unit",
        split="test",
        gt_empty=not mask.any(),
        mask_loader=lambda: mask,
    )


@pytest.mark.parametrize("style", sorted(STYLES))
@pytest.mark.parametrize("mode", ["components", "whole"])
def test_generate_round_trips_through_the_parser(tmp_path, style, mode):
    native = np.zeros((50, 120), bool)  # non-square native size: squashed to 840x840
    native[5:20, 10:40] = True
    native[30:45, 70:110] = True
    native[25:28, 50:53] = True  # a speck (9 px native -> ~1300 px at 840: kept)
    p = OraclePrompter(mode=mode, style=style, image_size=840)
    s = _sample(tmp_path, "a", native)
    (texts,) = p.generate([s], n=3, temperature=1.0, seed=5)
    assert len(texts) == 3 and len(set(texts)) == 1
    expected = p.prompts(s)
    assert len(expected) == (3 if mode == "components" else 1)
    parsed = parse_completion(texts[0], style, 840)
    assert parsed.format_ok and parsed.error is None
    assert parsed.instances == expected
    from think2seg.core.geometry import resize_mask

    model_mask = resize_mask(native, 840)
    for inst in expected:
        assert all(model_mask[y, x] for x, y in inst.positive)
        assert all(0 <= v < 840 for v in (inst.box or ()))


def test_empty_sample_answers_the_empty_list(tmp_path):
    p = build_prompter("oracle")
    (texts,) = p.generate([_sample(tmp_path, "e", np.zeros((30, 30), bool))])
    assert texts[0].endswith("<answer>```json[]```</answer>")
    r = parse_completion(texts[0])
    assert r.is_empty and r.format_ok


@pytest.mark.parametrize(
    "spec, kwargs, name, mode, style, size",
    [
        ("oracle", {}, "oracle:components", "components", "bbox+2pos", (840, 840)),
        ("oracle:whole", {"style": "bbox"}, "oracle:whole", "whole", "bbox", (840, 840)),
        (
            "oracle:components?style=bbox+2pos+2neg&image_size=896",
            {},
            "oracle:components",
            "components",
            "bbox+2pos+2neg",
            (896, 896),
        ),
        (
            "oracle?image_size=64x32",
            {"image_size": 128},
            "oracle:components",
            "components",
            "bbox+2pos",
            (128, 128),
        ),
    ],
)
def test_oracle_specs(spec, kwargs, name, mode, style, size):
    p = build_prompter(spec, **kwargs)
    assert isinstance(p, OraclePrompter)
    assert (p.name, p.mode, p.style.name, p.image_size) == (name, mode, style, size)


def test_oracle_spec_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown oracle mode 'blob'"):
        build_prompter("oracle:blob")
    with pytest.raises(ValueError, match="bad option"):
        build_prompter("oracle?colour=red")
    with pytest.raises(ValueError, match="not key=value"):
        build_prompter("oracle?style")
