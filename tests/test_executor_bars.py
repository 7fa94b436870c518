"""The executor figures (oracle, reflected control, constant box, loose-box curve) tell a segmenter that reads
its prompts from one that does not: boxfill (the mask is the prompt's box) against a prompt-blind executor
that always returns the same mask."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from think2seg.core.types import Sample
from think2seg.evaluation.executor_bars import LooseBoxOracle, ReflectedOracle, executor_bars
from think2seg.segmenters.base import SegmenterBase


class PromptBlind(SegmenterBase):
    """Test-only: the centre square of every image, whatever the prompt (a salient-object executor)."""

    name = "prompt-blind"

    def _embed(self, key, image):
        pass

    def predict(self, prompt_sets):
        h, w = self._require_image()
        m = np.zeros((h, w), bool)
        m[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = True
        return [m.copy() for _ in prompt_sets]


def _sample(mask: np.ndarray) -> Sample:
    image = np.zeros((*mask.shape, 3), np.uint8)
    return Sample(id="s", image_id="s", question="q", image_path=Path("mem.png"), dataset="t", split="val",
                  mask_loader=lambda: mask, image_loader=lambda: image)


@pytest.mark.parametrize(
    "margin, box, expected",
    [
        (0.0, (10, 20, 19, 29), (10, 20, 19, 29)),   # a 10 x 10 box stays
        (0.2, (10, 20, 19, 29), (8, 18, 21, 31)),    # grown by 2 px a side
        (0.5, (0, 0, 9, 9), (0, 0, 14, 14)),         # clipped at the image's top left
    ],
)
def test_loose_box_grows_each_side_by_the_margin(margin, box, expected):
    mask = np.zeros((64, 64), bool)
    mask[box[1]: box[3] + 1, box[0]: box[2] + 1] = True
    (inst,) = LooseBoxOracle(margin, 64).prompts(_sample(mask))
    assert tuple(inst.box) == expected


@pytest.mark.parametrize(
    "box, reflected",
    [
        ((0, 0, 9, 9), (54, 54, 63, 63)),            # top left -> bottom right
        ((10, 40, 19, 59), (44, 4, 53, 23)),
        ((27, 27, 36, 36), (27, 27, 36, 36)),        # a centred box maps onto itself
    ],
)
def test_reflected_oracle_mirrors_box_and_points_through_the_centre(box, reflected):
    mask = np.zeros((64, 64), bool)
    mask[box[1]: box[3] + 1, box[0]: box[2] + 1] = True
    (orig,) = ReflectedOracle(64).oracle.prompts(_sample(mask))
    (inst,) = ReflectedOracle(64).prompts(_sample(mask))
    assert tuple(inst.box) == reflected
    assert [(63 - x, 63 - y) for x, y in orig.positive] == list(inst.positive)
    assert all(reflected[0] <= x <= reflected[2] and reflected[1] <= y <= reflected[3] for x, y in inst.positive)


def test_the_figures_separate_a_prompt_reading_executor_from_a_prompt_blind_one(synth_root, tmp_path):
    data = f"earthreason:{synth_root}"
    reads = executor_bars("boxfill", tmp_path / "boxfill", data=data, limit=6, margins=(0.0, 0.5), progress=False)
    blind = executor_bars(PromptBlind(), tmp_path / "blind", data=data, limit=6, margins=(0.0, 0.5),
                          progress=False)
    assert reads["segmenter"] == "boxfill" and blind["segmenter"] == "prompt-blind"
    assert reads["oracle"]["bbox"]["n"] == 6
    # boxfill reads the box: the reflected prompts lose most of it, a loose box scores below a tight one
    assert reads["reflected"]["gIoU"] < 0.5 * reads["oracle"]["bbox"]["gIoU"]
    curve = {p["margin"]: p["gIoU"] for p in reads["margin_curve"]}
    assert curve[0.5] < curve[0.0] - 0.05
    # the prompt-blind executor scores the same whatever the prompts
    assert blind["reflected"]["gIoU"] == pytest.approx(blind["oracle"]["bbox+2pos"]["gIoU"])
    assert {p["gIoU"] for p in blind["margin_curve"]} == {blind["oracle"]["bbox"]["gIoU"]}
    # a rerun resumes from the records instead of segmenting again
    again = executor_bars("boxfill", tmp_path / "boxfill", data=data, limit=6, margins=(0.0, 0.5), progress=False)
    assert again["reflected"] == reads["reflected"]
