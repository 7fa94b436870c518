"""Segmenters: prompts (boxes / points per instance) -> one binary mask per prompt set.

    >>> from think2seg.segmenters import build_segmenter, segment_many
    >>> seg = build_segmenter("sam2:small")           # once per process per (spec, device)  # doctest: +SKIP
    >>> seg.set_image(image)                          # (H, W, 3) uint8, cached by content  # doctest: +SKIP
    >>> masks = seg.predict([prompts_a, prompts_b])   # list of (H, W) bool  # doctest: +SKIP
    >>> masks = segment_many(seg, images, prompt_sets)   # the reward batch path  # doctest: +SKIP

Specs (see ``spec.py``): ``grabcut``, ``sam2``, ``sam2:<size>``, ``sam2:<size>:random``,
``sam2:<size>:/path/to/ckpt``; transformers' models ``hf-sam2[:dir|hub id|random]``, ``samhq[:...]``,
``sam3[:...]`` (:mod:`.hf_sam`). Importing this package is light: torch and sam2 load on first build.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from think2seg.segmenters.base import (
    Segmenter,
    SegmenterBase,
    as_rgb,
    image_key,
    released_style_segment,
    segment_many,
    usable,
)
from think2seg.segmenters.boxfill import BoxFillSegmenter
from think2seg.segmenters.checkpoints import (
    ENV_VAR,
    OFFICIAL_URL,
    CheckpointNotFoundError,
    find_sam2_checkpoints,
    resolve_sam2_checkpoint,
)
from think2seg.segmenters.grabcut import GrabCutSegmenter
from think2seg.segmenters.spec import (
    DEFAULT_SEGMENTER,
    HF_SAM_BACKENDS,
    SAM2_SIZES,
    SPEC_HELP,
    WEIGHTLESS,
    SegmenterSpec,
    parse_segmenter_spec,
)

if TYPE_CHECKING:
    from think2seg.segmenters.sam2 import SAM2Segmenter

__all__ = [
    "DEFAULT_SEGMENTER",
    "ENV_VAR",
    "OFFICIAL_URL",
    "SAM2_SIZES",
    "SPEC_HELP",
    "CheckpointNotFoundError",
    "GrabCutSegmenter",
    "SAM2Segmenter",
    "Segmenter",
    "SegmenterBase",
    "SegmenterSpec",
    "as_rgb",
    "build_segmenter",
    "find_sam2_checkpoints",
    "image_key",
    "parse_segmenter_spec",
    "released_style_segment",
    "resolve_sam2_checkpoint",
    "resolve_segmenter",
    "segment_many",
    "segmenter_name",
    "usable",
]

_BUILT: dict[tuple[str, str], Segmenter] = {}
_LOCK = threading.Lock()


def build_segmenter(spec: str | SegmenterSpec, device: str | None = None) -> Segmenter:
    """The segmenter for ``spec`` on ``device`` (None: CUDA if available, else CPU), built once per process.

    Raises ``ValueError`` for a malformed spec and
    :class:`~think2seg.segmenters.checkpoints.CheckpointNotFoundError` for a missing checkpoint (at once;
    the model itself loads on first use).
    """
    parsed = spec if isinstance(spec, SegmenterSpec) else parse_segmenter_spec(spec)
    if parsed.backend in WEIGHTLESS:
        key = (str(parsed), "cpu")
    elif parsed.backend in HF_SAM_BACKENDS:
        from think2seg.segmenters.hf_sam import HFSamSegmenter

        key = (str(parsed), device or ("cuda" if _cuda() else "cpu"))
        with _LOCK:
            seg = _BUILT.get(key)
            if seg is None:
                seg = _BUILT[key] = HFSamSegmenter(parsed.backend, parsed.checkpoint, device=key[1])
        return seg
    else:
        from think2seg.segmenters.sam2 import default_device

        ckpt = parsed.checkpoint
        if ckpt is not None and ckpt != "random":
            ckpt = str(resolve_sam2_checkpoint(parsed.size, ckpt).resolve())
        elif ckpt is None:
            ckpt = str(resolve_sam2_checkpoint(parsed.size).resolve())
        parsed = SegmenterSpec("sam2", parsed.size, ckpt)
        key = (str(parsed), device or default_device())
    with _LOCK:
        seg = _BUILT.get(key)
        if seg is None:
            if parsed.backend == "grabcut":
                seg = GrabCutSegmenter()
            elif parsed.backend == "boxfill":
                seg = BoxFillSegmenter()
            else:
                from think2seg.segmenters.sam2 import SAM2Segmenter

                seg = SAM2Segmenter(parsed.size, parsed.checkpoint, device=key[1])
            _BUILT[key] = seg
    return seg


def resolve_segmenter(segmenter: str | SegmenterSpec | Segmenter, device: str | None = None) -> Segmenter:
    """The one place a segmenter given as a spec (``"grabcut"``, ``"sam2:small"``, a :class:`SegmenterSpec`)
    or as an object with ``segment(image, prompt_sets)`` becomes an object: specs are built once per process
    (:func:`build_segmenter`), objects are returned as they are."""
    if isinstance(segmenter, (str, SegmenterSpec)):
        return build_segmenter(segmenter, device=device)
    return segmenter


def segmenter_name(segmenter: str | SegmenterSpec | Segmenter) -> str:
    """The name records and tables show for a segmenter spec or object."""
    if isinstance(segmenter, (str, SegmenterSpec)):
        return str(segmenter)
    return getattr(segmenter, "name", type(segmenter).__name__)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def __getattr__(name: str) -> Any:  # lazy: keep torch / sam2 out of `import think2seg.segmenters`
    if name == "SAM2Segmenter":
        from think2seg.segmenters.sam2 import SAM2Segmenter

        return SAM2Segmenter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
