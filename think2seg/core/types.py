"""Core value types shared by every stage of the pipeline.

    data (Sample) -> prompter (completion text) -> parsing (list[Instance]) -> segmenter (mask) -> metrics

Coordinate convention everywhere: pixels, ``x`` = column, ``y`` = row, origin top-left, in the space of
the image the coordinates were produced for (the model's input size, e.g. 840x840, unless a function
says otherwise). Boxes are ``(x1, y1, x2, y2)`` with ``x1 <= x2`` and ``y1 <= y2`` (inclusive corners,
as Qwen2.5-VL emits them). Masks are ``numpy`` arrays of shape ``(H, W)`` and dtype ``bool``; images
are ``(H, W, 3)`` ``uint8`` RGB.

>>> inst = Instance(box=(10, 20, 50, 60), positive=((30, 40), (35, 45)))
>>> inst.to_json()
{'bbox_2d': [10, 20, 50, 60], 'positive_points': [[30, 40], [35, 45]]}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from think2seg.core.io import read_image, read_mask

Point = tuple[int, int]
Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Instance:
    """Geometric prompts for one target instance (any field may be absent, depending on the style)."""

    box: Box | None = None
    positive: tuple[Point, ...] = ()
    negative: tuple[Point, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The answer-format object (keys ``bbox_2d``, ``positive_points``, ``negative_points``)."""
        out: dict[str, Any] = {}
        if self.box is not None:
            out["bbox_2d"] = [int(v) for v in self.box]
        if self.positive:
            out["positive_points"] = [[int(x), int(y)] for x, y in self.positive]
        if self.negative:
            out["negative_points"] = [[int(x), int(y)] for x, y in self.negative]
        return out

    def scaled(self, sx: float, sy: float, size: tuple[int, int] | None = None) -> Instance:
        """Multiply x by ``sx`` and y by ``sy`` (rounded); clip to ``size=(W, H)`` when given."""

        def px(x: float, y: float) -> Point:
            x, y = round(x * sx), round(y * sy)
            if size is not None:
                x, y = min(max(x, 0), size[0] - 1), min(max(y, 0), size[1] - 1)
            return int(x), int(y)

        box = None
        if self.box is not None:
            a, b = px(self.box[0], self.box[1]), px(self.box[2], self.box[3])
            box = (a[0], a[1], b[0], b[1])
        return Instance(
            box=box,
            positive=tuple(px(*p) for p in self.positive),
            negative=tuple(px(*p) for p in self.negative),
        )

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Instance:
        """Inverse of :meth:`to_json` for already-validated objects (use ``parsing`` for model text)."""
        box = obj.get("bbox_2d")
        return cls(
            box=tuple(int(v) for v in box) if box is not None else None,  # type: ignore[arg-type]
            positive=tuple((int(x), int(y)) for x, y in obj.get("positive_points", [])),
            negative=tuple((int(x), int(y)) for x, y in obj.get("negative_points", [])),
        )


PromptSet = list[Instance]
"""All instances of one answer; an empty list means "no target" (the model rejected the query)."""


@dataclass
class Sample:
    """One (image, question, ground-truth mask) triple, whatever dataset it came from.

    ``id`` is unique within a dataset split and stable across runs (image id plus question index), so
    evaluation records can be resumed and joined. ``extra`` carries what a format has beyond the
    EarthReason core (SynthEarth's ``category`` and ``kind``, RRSIS-D's ``ref_id``...); no code path
    may require it.
    """

    id: str
    image_id: str
    question: str
    image_path: Path
    dataset: str
    split: str
    mask_path: Path | None = None
    gt_empty: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    mask_loader: Callable[[], np.ndarray] | None = field(default=None, repr=False, compare=False)
    image_loader: Callable[[], np.ndarray] | None = field(default=None, repr=False, compare=False)

    def load_image(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB (from ``image_loader`` when set, e.g. a tile of a larger scene)."""
        if self.image_loader is not None:
            return np.asarray(self.image_loader())

        return read_image(self.image_path)

    def load_mask(self) -> np.ndarray:
        """(H, W) bool; all False for an empty target."""
        if self.mask_loader is not None:
            return np.asarray(self.mask_loader(), dtype=bool)
        if self.mask_path is None:
            raise ValueError(f"sample {self.id} has neither mask_path nor mask_loader")

        return read_mask(self.mask_path)
