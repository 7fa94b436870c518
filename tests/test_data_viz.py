"""think2seg.core.drawing: mask overlay and prompt drawing (array and matplotlib forms)."""

from __future__ import annotations

import numpy as np

from think2seg.core.drawing import BOX_RGB, NEG_RGB, POS_RGB, overlay, show
from think2seg.core.types import Instance


def test_overlay_draws_mask_box_and_points():
    img = np.full((100, 120, 3), 100, np.uint8)
    mask = np.zeros((100, 120), bool)
    mask[40:60, 40:80] = True
    inst = Instance(box=(10, 10, 90, 80), positive=((50, 50),), negative=((20, 70),))
    out = overlay(img, mask, [inst], contour=False)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert tuple(out[0, 0]) == (100, 100, 100)  # untouched outside
    assert out[45, 70, 0] > 100 and out[45, 70, 1] < 100  # red blend inside the mask
    assert tuple(out[10, 30]) == BOX_RGB and tuple(out[40, 90]) == BOX_RGB
    assert tuple(out[50, 50]) == POS_RGB
    assert tuple(out[70, 20]) == NEG_RGB
    assert (overlay(img, None) == img).all()


def test_show_on_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    img = np.zeros((50, 60, 3), np.uint8)
    show(ax, img, np.ones((50, 60), bool), [Instance(box=(1, 2, 30, 40), positive=((5, 5), (9, 9)))], title="q")
    assert len(ax.patches) == 1 and len(ax.lines) == 1 and ax.get_title() == "q"
    plt.close(fig)
