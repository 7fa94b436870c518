"""The embedded tiny prompter: a small Qwen2.5-VL warm-started on SynthEarth, shipped in the package.

    >>> from think2seg.prompters.tiny import TinyPrompter
    >>> p = TinyPrompter()                 # the shipped checkpoint (think2seg/assets/tiny_prompter/)
    >>> p = TinyPrompter("/runs/grpo/ckpt") # any save_pretrained dir of a Qwen2.5-VL + processor  # doctest: +SKIP
    >>> p.image_size                        # coordinates of the completions refer to this size
    (112, 112)
    >>> p.generate(samples)                               # [[greedy completion], ...]  # doctest: +SKIP
    >>> p.generate(samples, n=8, temperature=1.0, seed=0)  # 8 seeded samples per sample  # doctest: +SKIP

Prompter spec strings: ``tiny`` (shipped checkpoint) and ``tiny:/path`` (see :func:`from_spec`).
:class:`TinyPrompter` is an :class:`~think2seg.prompters.hf.HFPrompter` (family ``qwen2.5-vl``), so the
model is driven exactly as a real Qwen2.5-VL: messages from :func:`think2seg.core.styles.build_messages`
(template ``compact`` unless the checkpoint's ``think2seg_prompter.json`` says otherwise) rendered by the
processor's chat template, the image squashed to ``image_size`` first, batched left-padded ``generate``. Rebuild the shipped checkpoint with ``think2seg warmstart``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from think2seg.core.model_dirs import check_model_dir
from think2seg.core.styles import DEFAULT_STYLE
from think2seg.prompters.families import META_FILE, read_checkpoint_meta, read_meta
from think2seg.prompters.hf import HFPrompter

__all__ = ["ASSET_DIR", "META_FILE", "SHIPPED", "TinyPrompter", "check_checkpoint", "from_spec", "load_tiny", "read_meta", "shipped_dir"]

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent / "assets"
ASSET_DIR = ASSETS / "tiny_prompter"
SHIPPED = {  # prompter spec -> (asset folder, reward scheme it was trained with); `think2seg ship-policies`
    "tiny-grpo": ("tiny_grpo", "think2seg"),
    "tiny-grpo-segzero": ("tiny_grpo_segzero", "segzero"),
    "tiny-grpo-visionreasoner": ("tiny_grpo_visionreasoner", "visionreasoner"),
    "tiny-grpo-remotereasoner": ("tiny_grpo_remotereasoner", "remotereasoner"),
}
REBUILD_HINT = "think2seg warmstart --config configs/warmstart.yaml --out think2seg/assets/tiny_prompter"


def check_checkpoint(path: str | Path | None = None) -> Path:
    """The checkpoint folder (default: the shipped one) if it holds a config, a tokenizer and weights;
    otherwise a :class:`~think2seg.core.errors.ModelNotFoundError` naming it."""
    p = Path(path) if path is not None else ASSET_DIR
    return check_model_dir(p, "tiny prompter checkpoint", ("config.json", "tokenizer.json"), weights=True,
                           hint=f"rebuild: {REBUILD_HINT}")


def load_tiny(path: str | Path | None = None, dtype: str = "float32"):
    """``(model, processor)`` from a checkpoint dir (default: the shipped one), offline, eval mode."""
    import torch
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    p = check_checkpoint(path)
    processor = AutoProcessor.from_pretrained(p, local_files_only=True)
    processor.tokenizer.padding_side = "left"
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
        p, dtype=getattr(torch, dtype), local_files_only=True
    )
    model.eval()
    return model, processor


def processor_image_size(processor) -> int:
    """The square input size a tiny processor was built for (its fixed pixel count)."""
    size = processor.image_processor.size
    pixels = size.get("longest_edge") or size.get("max_pixels")
    return int(round(math.sqrt(pixels)))


class TinyPrompter(HFPrompter):
    """A tiny-Qwen2.5-VL checkpoint (default: the shipped one) driven by :class:`HFPrompter`.

    Only the defaults differ: the checkpoint dir defaults to the package asset, and the template, style,
    input size and completion budget come from the checkpoint's ``think2seg_prompter.json`` (written by
    the warm start and by ``think2seg train``) unless given. Loading, batching, left padding, seeding
    and decoding are HFPrompter's, so a tiny model is evaluated exactly as a real Qwen2.5-VL is.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        batch_size: int = 32,
        max_new_tokens: int | None = None,
        template: str | None = None,
        style: str | None = None,
        image_size: int | Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        ckpt = check_checkpoint(path)
        meta = read_checkpoint_meta(ckpt, f"tiny:{path}")
        size = image_size or meta.get("image_size")
        if size is None:
            from transformers import AutoProcessor

            size = processor_image_size(AutoProcessor.from_pretrained(ckpt, local_files_only=True))
        super().__init__(
            ckpt,
            family="qwen2.5-vl",
            image_size=size,
            style=style or meta.get("style", DEFAULT_STYLE),
            template=template or meta.get("template", "compact"),
            max_new_tokens=max_new_tokens or int(meta.get("max_new_tokens", 200)),
            batch_size=batch_size,
            **kwargs,
        )
        self.path = ckpt
        self.name = "tiny" if path is None else f"tiny:{ckpt}"


def shipped_dir(name: str) -> Path:
    """The asset folder of a shipped GRPO policy (``tiny-grpo``, ``tiny-grpo-segzero``, ...)."""
    if name not in SHIPPED:
        raise ValueError(f"unknown shipped policy {name!r}; one of {', '.join(SHIPPED)}")
    path = ASSETS / SHIPPED[name][0]
    if not path.is_dir():
        raise FileNotFoundError(f"shipped policy {name!r}: {path} is missing (rebuild: think2seg ship-policies)")
    return path


def from_spec(spec: str) -> TinyPrompter:
    """``"tiny"`` -> the shipped warm start; ``"tiny-grpo[-SCHEME]"`` -> a shipped GRPO policy;
    ``"tiny:/path"`` -> that checkpoint dir."""
    if spec == "tiny":
        return TinyPrompter()
    if spec in SHIPPED:
        p = TinyPrompter(shipped_dir(spec))
        p.name = spec
        return p
    if spec.startswith("tiny:"):
        path = spec[len("tiny:") :]
        if not path:
            raise ValueError("prompter spec 'tiny:' needs a path, e.g. tiny:/runs/grpo/checkpoint-100")
        return TinyPrompter(path)
    raise ValueError(f"not a tiny prompter spec: {spec!r} (use 'tiny' or 'tiny:/path')")
