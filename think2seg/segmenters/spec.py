"""Segmenter spec strings: one text names a backend, its size and its weights, everywhere.

    grabcut                      weightless OpenCV GrabCut (the embedded default)
    boxfill                      the prompt's box as the mask (no image used; benchmarks, training)
    sam2                         = sam2:small (the paper's SAM2.1 Hiera-S), checkpoint found by name
    sam2:<size>                  checkpoint found in $THINK2SEG_SAM2_DIR or ./checkpoints (official names)
    sam2:<size>:random           RANDOM weights of the real model: tests and benchmarks only
    sam2:<size>:/path/to/file.pt a checkpoint file, or a folder holding the official file name
    sam2:mini-t, sam2:mini-s     think2seg's own mini SAM2s (sam2's classes), trained on SynthEarth, shipped
    hf-sam2[:DIR_OR_HUB_ID]      transformers' SAM2 port (Sam2Model), default facebook/sam2.1-hiera-small
    samhq[:DIR_OR_HUB_ID]        SAM-HQ (SamHQModel), default syscv-community/sam-hq-vit-base
    sam3[:DIR_OR_HUB_ID]         SAM3's tracker image path (Sam3TrackerModel), default facebook/sam3

Official sizes: tiny (t), small (s), base+ (b+, base_plus, base-plus), large (l). Shipped sizes
(``SHIPPED_SAM2``): mini-t, mini-s; their configs and float16 weights live in ``think2seg/assets/sam2_mini``.

>>> parse_segmenter_spec("sam2:s")
SegmenterSpec(backend='sam2', size='small', checkpoint=None)
>>> str(parse_segmenter_spec("sam2:b+:random"))
'sam2:base+:random'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RANDOM = "random"
# transformers' interactive SAM models: backend -> default hub id (think2seg.segmenters.hf_sam; docs/models.md)
HF_SAM_BACKENDS: dict[str, str] = {
    "hf-sam2": "facebook/sam2.1-hiera-small",
    "samhq": "syscv-community/sam-hq-vit-base",
    "sam3": "facebook/sam3",
}
BACKENDS = ("grabcut", "boxfill", "sam2", *HF_SAM_BACKENDS)
WEIGHTLESS = ("grabcut", "boxfill")
DEFAULT_SAM2_SIZE = "small"
DEFAULT_SEGMENTER = "grabcut"  # the embedded default: every option, signature and config that takes a segmenter

# size -> (hydra config inside the sam2 package, official checkpoint file name)
SAM2_SIZES: dict[str, tuple[str, str]] = {
    "tiny": ("configs/sam2.1/sam2.1_hiera_t.yaml", "sam2.1_hiera_tiny.pt"),
    "small": ("configs/sam2.1/sam2.1_hiera_s.yaml", "sam2.1_hiera_small.pt"),
    "base+": ("configs/sam2.1/sam2.1_hiera_b+.yaml", "sam2.1_hiera_base_plus.pt"),
    "large": ("configs/sam2.1/sam2.1_hiera_l.yaml", "sam2.1_hiera_large.pt"),
}
# parameters of each SAM2.1 model as the sam2 package builds it (counted from the built models, 1.1.0)
SAM2_PARAMS: dict[str, int] = {"tiny": 38_962_498, "small": 46_060_354, "base+": 80_850_178, "large": 224_446_642}
# size -> (hydra config, float16 checkpoint), both relative to think2seg/assets/sam2_mini; built by
# `think2seg sam2-train --config configs/sam2_mini/<size>.yaml` (docs/sam2.md)
SHIPPED_SAM2: dict[str, tuple[str, str]] = {
    "mini-t": ("mini-t.yaml", "mini-t.pt"),
    "mini-s": ("mini-s.yaml", "mini-s.pt"),
}
ALL_SAM2_SIZES = (*SAM2_SIZES, *SHIPPED_SAM2)
_SIZE_ALIASES = {
    "t": "tiny",
    "s": "small",
    "b+": "base+",
    "base": "base+",
    "base_plus": "base+",
    "base-plus": "base+",
    "baseplus": "base+",
    "l": "large",
    "mini_t": "mini-t",
    "minit": "mini-t",
    "mini_s": "mini-s",
    "minis": "mini-s",
}
SPEC_HELP = (
    "segmenter spec: 'grabcut', 'boxfill', 'sam2', 'sam2:<size>', 'sam2:<size>:random' or 'sam2:<size>:<checkpoint>' "
    f"with <size> one of {', '.join(ALL_SAM2_SIZES)}, or '{'|'.join(HF_SAM_BACKENDS)}[:<dir or hub id>]'"
)


@dataclass(frozen=True)
class SegmenterSpec:
    """A parsed spec. ``checkpoint`` is None (find by official name), ``"random"``, or a user path."""

    backend: str
    size: str | None = None
    checkpoint: str | None = None

    @property
    def random(self) -> bool:
        return self.checkpoint == RANDOM

    def __str__(self) -> str:
        parts = [self.backend] + [p for p in (self.size, self.checkpoint) if p is not None]
        return ":".join(parts)


def parse_segmenter_spec(spec: str) -> SegmenterSpec:
    """Parse ``backend[:size[:checkpoint]]``; raises ``ValueError`` naming the bad part."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"empty segmenter spec; expected a {SPEC_HELP}")
    parts = spec.strip().split(":", 2)
    backend = parts[0].strip().lower()
    if backend not in BACKENDS:
        raise ValueError(f"unknown segmenter backend {parts[0]!r} in spec {spec!r}; expected a {SPEC_HELP}")
    if backend in HF_SAM_BACKENDS:  # backend[:dir or hub id]: the rest of the spec is the source
        source = spec.strip().split(":", 1)[1].strip() if ":" in spec else ""
        return SegmenterSpec(backend, None, source or HF_SAM_BACKENDS[backend])
    if backend in WEIGHTLESS:
        if len(parts) > 1:
            raise ValueError(f"segmenter {backend!r} takes no size or checkpoint (got {spec!r})")
        return SegmenterSpec(backend)
    size = parts[1].strip().lower() if len(parts) > 1 and parts[1].strip() else DEFAULT_SAM2_SIZE
    size = _SIZE_ALIASES.get(size, size)
    if size not in ALL_SAM2_SIZES:
        raise ValueError(f"unknown SAM2 size {parts[1]!r} in spec {spec!r}; expected a {SPEC_HELP}")
    checkpoint = None
    if len(parts) > 2 and parts[2].strip():
        raw = parts[2].strip()
        checkpoint = RANDOM if raw.lower() == RANDOM else str(Path(raw).expanduser())
    return SegmenterSpec("sam2", size, checkpoint)
