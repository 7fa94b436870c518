"""Prompt geometry against the target (think2seg.core.prompt_geometry), as tables of inputs and outputs."""

from __future__ import annotations

import numpy as np
import pytest

from think2seg.core.prompt_geometry import (
    box_iou_with_target,
    component_boxes,
    points_on_target,
    prompt_geometry,
)
from think2seg.core.types import Instance


def two_squares() -> np.ndarray:
    gt = np.zeros((40, 40), bool)
    gt[0:10, 0:10] = True  # box (0, 0, 9, 9)
    gt[0:10, 30:40] = True  # box (30, 0, 39, 9)
    return gt


BOX_CASES = [
    ("one tight box per component", [Instance(box=(0, 0, 9, 9)), Instance(box=(30, 0, 39, 9))], 1.0),
    ("one component only", [Instance(box=(0, 0, 9, 9))], 0.5),
    ("one box over both (the gap counts against it)", [Instance(box=(0, 0, 39, 9))], 200 / 400),
    ("each box one pixel loose on every side", [Instance(box=(0, 0, 10, 10)), Instance(box=(29, 0, 39, 10))],
     200 / (121 + 121)),
    ("a box off the target", [Instance(box=(12, 20, 21, 29))], 0.0),
    ("a box past the image edge is clipped", [Instance(box=(-5, -5, 9, 9)), Instance(box=(30, 0, 60, 9))], 1.0),
    ("points only: no box to measure", [Instance(positive=((1, 1),))], None),
    ("no answer", [], None),
]


@pytest.mark.parametrize("name,instances,expected", BOX_CASES, ids=[c[0] for c in BOX_CASES])
def test_box_iou_with_target(name, instances, expected):
    got = box_iou_with_target(instances, two_squares())
    assert got == (None if expected is None else pytest.approx(expected))


POINT_CASES = [
    ("both on", [Instance(box=(0, 0, 9, 9), positive=((2, 2), (8, 8)))], 1.0),
    ("one in the gap between components", [Instance(box=(0, 0, 39, 9), positive=((5, 5), (20, 5)))], 0.5),
    ("points of two instances pooled", [Instance(positive=((5, 5),)), Instance(positive=((35, 5), (35, 30)))], 2 / 3),
    ("off the image counts as a miss", [Instance(positive=((50, 5), (5, 5)))], 0.5),
    ("negative points are not counted", [Instance(positive=((5, 5),), negative=((20, 20),))], 1.0),
    ("box only", [Instance(box=(0, 0, 9, 9))], None),
]


@pytest.mark.parametrize("name,instances,expected", POINT_CASES, ids=[c[0] for c in POINT_CASES])
def test_points_on_target(name, instances, expected):
    got = points_on_target(instances, two_squares())
    assert got == (None if expected is None else pytest.approx(expected))


def test_an_empty_target_has_no_geometry_and_components_are_8_connected():
    empty = np.zeros((40, 40), bool)
    assert prompt_geometry([Instance(box=(0, 0, 9, 9), positive=((1, 1),))], empty) == {
        "box_iou": None, "points_on_target": None}
    diag = np.zeros((10, 10), bool)
    diag[2, 2] = diag[3, 3] = True  # touching corners: one component
    assert component_boxes(diag) == [(2, 2, 3, 3)]
    assert sorted(component_boxes(two_squares())) == [(0, 0, 9, 9), (30, 0, 39, 9)]


def test_records_carry_the_geometry_in_model_space():
    from think2seg.core.styles import format_answer
    from think2seg.evaluation.scoring import score_text
    from think2seg.segmenters.boxfill import BoxFillSegmenter

    gt = np.zeros((80, 80), bool)  # native 80 px; the model saw 40 px
    gt[0:20, 0:20] = True
    gt[0:20, 60:80] = True
    text = format_answer([Instance(box=(0, 0, 9, 9), positive=((5, 5), (6, 6))),
                          Instance(box=(30, 0, 39, 9), positive=((20, 5), (21, 5)))])
    rec = score_text(text, np.zeros((80, 80, 3), np.uint8), gt, model_size=(40, 40), protocol="authors",
                     segmenter=BoxFillSegmenter(), style="bbox+2pos")
    assert rec["box_iou"] == pytest.approx(1.0) and rec["points_on_target"] == pytest.approx(0.5)
