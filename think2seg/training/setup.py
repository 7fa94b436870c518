"""What a training run fixes before trl sees the model: attention kernel, the processor's pixel count,
and (after training) a LoRA adapter merged into a model that ``hf:<output_dir>`` loads.

    >>> from think2seg.training.setup import attention_fallback, pin_image_processor, merge_lora
    >>> attention_fallback({"attn_implementation": "flash_attention_2"})   # without flash_attn installed
    ('sdpa', 'flash_attention_2 requested but the flash_attn package is not installed: using sdpa')
    >>> pin_image_processor(processor, 840)      # Qwen: min = max pixels = 840 * 840  # doctest: +SKIP
    >>> merge_lora("runs/x/adapter", "runs/x")   # base + adapter -> runs/x/model.safetensors  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from think2seg.core.errors import UserError
from think2seg.core.metrics import DEFAULT_PROTOCOL

log = logging.getLogger(__name__)

FLASH = "flash_attention_2"


class ImageSizeError(UserError, ValueError):
    """An image size the model's processor would round (the one-line message names the option)."""


def flash_attention_status() -> str | None:
    """None when flash-attention 2 can run here, else why not (one line)."""
    import torch

    if importlib.util.find_spec("flash_attn") is None:
        return "the flash_attn package is not installed"
    if not torch.cuda.is_available():
        return "no CUDA device"
    return None


def attention_fallback(model_init_kwargs: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """``(attn_implementation to use, warning or None)``: a requested flash-attention 2 that cannot run
    here becomes ``sdpa`` (same results up to numerics, more memory at long sequences)."""
    asked = (model_init_kwargs or {}).get("attn_implementation")
    if asked != FLASH:
        return asked, None
    why = flash_attention_status()
    if why is None:
        return asked, None
    return "sdpa", f"{FLASH} requested but {why}: using sdpa"


def patch_factor(processor: Any) -> int | None:
    """The pixel multiple a Qwen-VL image processor needs (patch x merge = 28), None for other processors."""
    ip = getattr(processor, "image_processor", None)
    if ip is None or getattr(ip, "merge_size", None) is None or getattr(ip, "patch_size", None) is None:
        return None
    return int(ip.patch_size) * int(ip.merge_size)


def pin_image_processor(processor: Any, image_size: int, option: str = "--image_size") -> None:
    """Make a Qwen-VL processor resize nothing: min = max pixels = ``image_size``², so an image already
    squashed to ``image_size`` is patched as is (a saved processor may cap pixels lower, which would
    downscale the images while the rewards stay in full-size coordinates). Raises ``ValueError`` naming
    ``option`` for a size that is not a multiple of patch x merge (the processor would round it).
    Processors of other families are left as they are."""
    factor = patch_factor(processor)
    if factor is None:
        return
    if image_size % factor:
        lo, hi = image_size // factor * factor, -(-image_size // factor) * factor
        raise ImageSizeError(
            f"{option} {image_size}: must be a multiple of {factor} (patch x merge of this model's "
            f"processor), e.g. {lo or factor} or {hi}"
        )
    ip = processor.image_processor
    pixels = int(image_size) * int(image_size)
    ip.size = {**dict(ip.size or {}), "shortest_edge": pixels, "longest_edge": pixels}
    for attr in ("min_pixels", "max_pixels"):
        if hasattr(ip, attr):
            setattr(ip, attr, pixels)


def check_saved_pixels(processor: Any, image_size: int, source: str) -> None:
    """For generators that reload the processor from disk (vLLM): refuse a saved Qwen-VL processor whose
    pixel cap would downscale ``image_size`` images (the pin of :func:`pin_image_processor` lives in
    this process only)."""
    if patch_factor(processor) is None:
        return
    size = dict(processor.image_processor.size or {})
    cap = size.get("longest_edge") or size.get("max_pixels")
    if cap is not None and int(cap) < image_size * image_size:
        raise ValueError(
            f"{source}: its processor caps images at {cap} pixels, below {image_size}x{image_size}; vLLM "
            "reloads it from disk, so raise max_pixels / size.longest_edge in its preprocessor config"
        )


def merge_lora(adapter_dir: str | Path, out: str | Path, dtype: str = "auto") -> Path:
    """Load the base model named by ``adapter_dir/adapter_config.json``, apply the adapter, merge it and
    ``save_pretrained`` the full model to ``out`` (config.json + weights): a LoRA run is then evaluated
    with ``hf:<out>`` like any checkpoint. Runs on CPU; returns ``out``."""
    import transformers
    from peft import PeftModel

    adapter_dir, out = Path(adapter_dir), Path(out)
    base_path = json.loads((adapter_dir / "adapter_config.json").read_text())["base_model_name_or_path"]
    config = transformers.AutoConfig.from_pretrained(base_path)
    cls = getattr(transformers, (config.architectures or ["AutoModelForImageTextToText"])[0])
    base = cls.from_pretrained(base_path, dtype=dtype, device_map="cpu")
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(out)
    return out


EVAL_PROTOCOL = DEFAULT_PROTOCOL  # the protocol of the in-training evaluations (training.heldout_eval)


def eval_segmenter_of(t2s: Any) -> str:
    """The segmenter spec of held-out evaluations: ``eval_segmenter`` when set, else the reward's
    ``segmenter``. ``t2s``: the options (:class:`~think2seg.training.grpo.Think2SegArgs`), or their saved form (``think2seg_train_config.json``'s
    ``"think2seg"`` dict)."""
    get = t2s.get if isinstance(t2s, Mapping) else lambda k: getattr(t2s, k, None)
    return get("eval_segmenter") or get("segmenter")
