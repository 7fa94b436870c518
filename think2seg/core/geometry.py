"""Image, mask and prompt resizing between coordinate spaces.

Two spaces matter: the *native* image (H, W as on disk) and the *model* space the LVLM saw (e.g. 840x840,
aspect ratio NOT kept, as released for Qwen2.5-VL; 896 for InternVL3). Prompts come out of the model in
model space; :func:`prompts_to_native` maps them back.

>>> import numpy as np
>>> m = np.zeros((100, 200), bool); m[10:20, 50:150] = True
>>> resize_mask(m, (840, 840)).shape
(840, 840)
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from think2seg.core.types import Instance

DEFAULT_MODEL_SIZE = 840


def as_size(size: int | Sequence[int]) -> tuple[int, int]:
    """``840`` or ``(W, H)`` -> ``(W, H)``."""
    if isinstance(size, int):
        return (size, size)
    w, h = size
    return int(w), int(h)


def resize_image(image: np.ndarray, size: int | Sequence[int]) -> np.ndarray:
    """Resize an (H, W, 3) image to ``size=(W, H)`` (bicubic; area when shrinking), aspect not kept."""
    w, h = as_size(size)
    if image.shape[1] == w and image.shape[0] == h:
        return image
    shrink = w < image.shape[1] and h < image.shape[0]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def resize_mask(mask: np.ndarray, size: int | Sequence[int]) -> np.ndarray:
    """Resize an (H, W) mask to ``size=(W, H)`` with nearest neighbour, returning bool."""
    w, h = as_size(size)
    if mask.shape[1] == w and mask.shape[0] == h:
        return mask.astype(bool, copy=False)
    return cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)


def scale_prompts(
    instances: Sequence[Instance], src: int | Sequence[int], dst: int | Sequence[int]
) -> list[Instance]:
    """Map prompts from an image of size ``src=(W, H)`` to one of size ``dst=(W, H)``, clipped."""
    (sw, sh), (dw, dh) = as_size(src), as_size(dst)
    return [inst.scaled(dw / sw, dh / sh, size=(dw, dh)) for inst in instances]


def prompts_to_native(
    instances: Sequence[Instance], model_size: int | Sequence[int], native_hw: tuple[int, int]
) -> list[Instance]:
    """Map model-space prompts back to the native image whose ``shape[:2]`` is ``native_hw``."""
    return scale_prompts(instances, model_size, (native_hw[1], native_hw[0]))


def reflect_prompts(instances: Sequence[Instance], size: int | Sequence[int]) -> list[Instance]:
    """The prompts reflected through the centre of a ``size=(W, H)`` image, inclusive pixels:
    ``x -> W - 1 - x``, ``y -> H - 1 - y`` (boxes keep ``x1 <= x2``, ``y1 <= y2``).

    >>> reflect_prompts([Instance(box=(0, 0, 9, 19), positive=((2, 3),))], 64)[0].to_json()
    {'bbox_2d': [54, 44, 63, 63], 'positive_points': [[61, 60]]}
    """
    w, h = as_size(size)
    flip = lambda pts: tuple((w - 1 - x, h - 1 - y) for x, y in pts)  # noqa: E731
    out = []
    for inst in instances:
        box = None if inst.box is None else (w - 1 - inst.box[2], h - 1 - inst.box[3], w - 1 - inst.box[0],
                                             h - 1 - inst.box[1])
        out.append(Instance(box=box, positive=flip(inst.positive), negative=flip(inst.negative)))
    return out


def clip_box(box: Sequence[float], w: int, h: int) -> tuple[int, int, int, int] | None:
    """Sorted, rounded, clipped inclusive pixel box ``(x1, y1, x2, y2)`` of a (W=w, H=h) image; None when
    it misses the image."""
    x1, x2 = sorted((int(round(box[0])), int(round(box[2]))))
    y1, y2 = sorted((int(round(box[1])), int(round(box[3]))))
    if x2 < 0 or y2 < 0 or x1 > w - 1 or y1 > h - 1:
        return None
    return max(0, x1), max(0, y1), min(w - 1, x2), min(h - 1, y2)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two inclusive-corner pixel boxes ``(x1, y1, x2, y2)`` (a box of one pixel has area 1);
    0 when the union is empty."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    inter = ix * iy
    union = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter
    return inter / union if union > 0 else 0.0
