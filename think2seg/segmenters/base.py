"""The segmenter protocol: embed an image once, then turn many prompt sets into one mask each.

>>> seg = build_segmenter("grabcut")                       # doctest: +SKIP
>>> seg.set_image(image)                                   # (H, W, 3) uint8 RGB; cached by content  # doctest: +SKIP
>>> masks = seg.predict([prompts_a, prompts_b, []])        # list of (H, W) bool; [] -> all False  # doctest: +SKIP
>>> masks = segment_many(seg, images, prompt_sets)         # a reward batch: one embedding per distinct image  # doctest: +SKIP

Prompts are in the pixel space of the image passed to ``set_image`` (x = column, y = row, boxes
``(x1, y1, x2, y2)`` with inclusive corners). Each returned mask is the OR-union of the instance masks of
its prompt set (the paper's union rule); instances with no box and no points are ignored, so an empty
prompt set gives an all-False mask of the image size. ``segment(image, prompt_sets)`` is ``set_image`` +
``predict``. Implementations are frozen (no gradients), never keep more than a bounded cache, and count
their work in ``stats`` (``images`` set, ``encoder_calls``, ``decoder_calls``, ``fallbacks`` ...).

:func:`released_style_segment` is the path of the released code (one embedding per completion,
instances one by one); the reward benchmark and the tests compare it with the fast path.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from think2seg.core.types import Instance, PromptSet

ImageKey = tuple[tuple[int, ...], str]


@runtime_checkable
class Segmenter(Protocol):
    name: str
    stats: dict[str, int]

    def set_image(self, image: np.ndarray) -> None:
        """Embed an (H, W, 3) uint8 RGB image (a no-op when the same content is already embedded)."""

    def predict(self, prompt_sets: Sequence[PromptSet]) -> list[np.ndarray]:
        """One (H, W) bool mask per prompt set, for the image of the last ``set_image``."""

    def segment(self, image: np.ndarray, prompt_sets: Sequence[PromptSet]) -> list[np.ndarray]:
        """``set_image(image)`` then ``predict(prompt_sets)``."""

    def clear_cache(self) -> None:
        """Forget every cached embedding (the next ``set_image`` recomputes)."""


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Validate an image and return it as a C-contiguous (H, W, 3) uint8 array (gray and RGBA accepted)."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"segmenter images must be uint8 RGB, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"segmenter images must have shape (H, W, 3), got {np.asarray(image).shape}")
    return np.ascontiguousarray(arr)


def image_key(image: np.ndarray) -> ImageKey:
    """A content key (shape + 128-bit BLAKE2b of the bytes; ~2 ms for 840x840x3) for embedding caches."""
    arr = np.ascontiguousarray(image)
    return (arr.shape, hashlib.blake2b(memoryview(arr).cast("B"), digest_size=16).hexdigest())


def usable(inst: Instance) -> bool:
    """An instance counts when it has a box or at least one point."""
    return inst.box is not None or bool(inst.positive) or bool(inst.negative)


def instance_key(inst: Instance) -> tuple:
    """A hashable key of an instance's prompts (identical prompts decode to identical masks)."""
    box = tuple(int(v) for v in inst.box) if inst.box is not None else None
    return (box, tuple(tuple(p) for p in inst.positive), tuple(tuple(p) for p in inst.negative))


def instance_arrays(inst: Instance) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """SAM-style arrays for one instance, as the released code builds them.

    Returns ``(coords (N, 2) float32 xy | None, labels (N,) int32 with 1 = positive, 0 = negative | None,
    box (4,) float32 xyxy | None)``; positives come before negatives. Coordinates are passed as given.
    """
    pts = list(inst.positive) + list(inst.negative)
    coords = labels = box = None
    if pts:
        coords = np.asarray(pts, dtype=np.float32).reshape(-1, 2)
        labels = np.asarray([1] * len(inst.positive) + [0] * len(inst.negative), dtype=np.int32)
    if inst.box is not None:
        box = np.asarray(inst.box, dtype=np.float32).reshape(4)
    return coords, labels, box


class SegmenterBase:
    """Shared plumbing: image validation + content key, ``segment``, the empty-mask rule, ``stats``."""

    name: str = "segmenter"

    def __init__(self) -> None:
        self.stats: dict[str, int] = {}
        self._key: ImageKey | None = None
        self._hw: tuple[int, int] | None = None

    def _count(self, what: str, n: int = 1) -> None:
        self.stats[what] = self.stats.get(what, 0) + n

    def set_image(self, image: np.ndarray) -> None:
        rgb = as_rgb(image)
        key = image_key(rgb)
        self._count("images")
        self._embed(key, rgb)
        self._key, self._hw = key, (int(rgb.shape[0]), int(rgb.shape[1]))

    def _embed(self, key: ImageKey, image: np.ndarray) -> None:
        raise NotImplementedError

    def _require_image(self) -> tuple[int, int]:
        if self._hw is None:
            raise RuntimeError(f"{self.name}: call set_image(image) before predict(prompt_sets)")
        return self._hw

    def _empty_masks(self, n: int) -> list[np.ndarray]:
        h, w = self._require_image()
        return [np.zeros((h, w), dtype=bool) for _ in range(n)]

    def segment(self, image: np.ndarray, prompt_sets: Sequence[PromptSet]) -> list[np.ndarray]:
        self.set_image(image)
        return self.predict(prompt_sets)

    def predict(self, prompt_sets: Sequence[PromptSet]) -> list[np.ndarray]:
        raise NotImplementedError

    def clear_cache(self) -> None:
        self._key = self._hw = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class EncoderCache(SegmenterBase):
    """A segmenter whose image encoder runs once per image content: an LRU of ``cache_size`` entries, each
    what :meth:`_encode` returns for an image; ``stats`` counts ``encoder_calls`` and ``cache_hits``. A
    lowered ``cache_size`` applies from the next ``set_image``."""

    def __init__(self, cache_size: int = 4) -> None:
        super().__init__()
        self.cache_size = max(1, int(cache_size))
        self._cache: OrderedDict[ImageKey, Any] = OrderedDict()

    def _encode(self, image: np.ndarray) -> Any:
        """The cache entry of an (H, W, 3) uint8 RGB image (one encoder pass)."""
        raise NotImplementedError

    def _embed(self, key: ImageKey, image: np.ndarray) -> None:
        if key in self._cache:
            self._cache.move_to_end(key)
            self._count("cache_hits")
        else:
            self._cache[key] = self._encode(image)
            self._count("encoder_calls")
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def clear_cache(self) -> None:
        super().clear_cache()
        self._cache.clear()


def segment_many(
    seg: Segmenter, images: Sequence[np.ndarray], prompt_sets: Sequence[PromptSet]
) -> list[np.ndarray]:
    """Masks for ``(images[i], prompt_sets[i])`` pairs, one ``segment`` call per distinct image content.

    This is the reward path: trl hands a batch whose image column repeats each image G times; the G
    prompt sets of one image share one embedding and are decoded together. Order is preserved.
    """
    if len(images) != len(prompt_sets):
        raise ValueError(f"segment_many: {len(images)} images but {len(prompt_sets)} prompt sets")
    groups: dict[Any, list[int]] = {}
    first: dict[Any, np.ndarray] = {}
    ids: dict[int, Any] = {}
    for i, img in enumerate(images):
        key = ids.get(id(img))
        if key is None:  # identical objects are hashed once
            key = image_key(as_rgb(img))
            ids[id(img)] = key
        groups.setdefault(key, []).append(i)
        first.setdefault(key, img)
    out: list[np.ndarray | None] = [None] * len(images)
    for key, idx in groups.items():
        masks = seg.segment(first[key], [prompt_sets[i] for i in idx])
        for i, m in zip(idx, masks, strict=True):
            out[i] = m
    return out  # type: ignore[return-value]


def released_style_segment(
    seg: Segmenter, image: np.ndarray, prompt_sets: Sequence[PromptSet]
) -> list[np.ndarray]:
    """The released code's path: a fresh embedding per prompt set (completion), instances one at a time.

    Backends may provide ``segment_released`` (SAM2 does: the package's own predictor API, call for call
    as released); otherwise the cache is cleared before every completion and each instance is predicted
    alone. Returns one (H, W) bool mask per prompt set, like :meth:`Segmenter.segment`.
    """
    own = getattr(seg, "segment_released", None)
    if own is not None:
        return own(image, prompt_sets)
    rgb = as_rgb(image)
    out = []
    for ps in prompt_sets:
        seg.clear_cache()
        seg.set_image(rgb)
        union = np.zeros(rgb.shape[:2], dtype=bool)
        for inst in ps:
            if usable(inst):
                union |= seg.predict([[inst]])[0]
        out.append(union)
    return out
