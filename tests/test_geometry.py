"""Coordinate spaces: model space (840 squash, aspect not kept) <-> native image."""

import numpy as np

from think2seg.core.geometry import prompts_to_native, resize_image, resize_mask, scale_prompts
from think2seg.core.types import Instance


def test_prompts_back_to_native_non_square():
    # a 1000 x 500 (W x H) image squashed to 840 x 840: x scales by 1000/840, y by 500/840
    inst = Instance(box=(84, 84, 420, 840), positive=((168, 420),), negative=((839, 0),))
    (native,) = prompts_to_native([inst], 840, native_hw=(500, 1000))
    assert native.box == (100, 50, 500, 499)  # x2 = 420 * 1000/840; y2 = 840 -> 500, clipped to row 499
    assert native.positive == ((200, 250),)
    assert native.negative == ((999, 0),)


def test_scale_round_trip_is_within_a_pixel():
    inst = Instance(box=(10, 20, 300, 400), positive=((50, 60), (70, 80)))
    there = scale_prompts([inst], (840, 840), (1234, 777))
    back = scale_prompts(there, (1234, 777), (840, 840))[0]
    assert all(abs(a - b) <= 1 for a, b in zip(back.box, inst.box, strict=True))


def test_mask_resize_is_nearest_and_image_resize_shapes():
    m = np.zeros((100, 200), bool)
    m[10:20, 50:150] = True
    r = resize_mask(m, (840, 840))
    assert r.shape == (840, 840) and r.dtype == bool and set(np.unique(r)) == {False, True}
    assert abs(r.mean() - m.mean()) < 0.01
    assert resize_image(np.zeros((100, 200, 3), np.uint8), (840, 420)).shape == (420, 840, 3)
