"""The LVLM families a prompter can drive, and the metadata file a trained checkpoint carries.

>>> from think2seg.prompters.families import FAMILIES, resolve_family
>>> resolve_family("qwen2_5_vl").image_size, FAMILIES["llava"].model_class
(840, 'LlavaForConditionalGeneration')

One registry (:data:`FAMILIES`): name -> ``config.model_type`` values it covers, the transformers class,
the default square input size in pixels, whether the processor's pixel count is pinned (Qwen-style
``min_pixels = max_pixels``; the size must then be a multiple of patch x merge: 28 for Qwen2/2.5-VL, 32
for Qwen3-VL / Qwen3.5), the LoRA target modules of its language model, and whether vLLM ships the
architecture (``vllm:`` specs; never run in this repository's tests). Hub ids per family: docs/models.md. :data:`META_FILE` (``think2seg_prompter.json``) records the
template / style / image size a checkpoint was trained with (:func:`read_meta`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from think2seg.core.errors import UserError

__all__ = [
    "FAMILIES",
    "LM_TARGETS",
    "META_FILE",
    "Family",
    "MissingMetaError",
    "family_of_model_type",
    "read_checkpoint_meta",
    "read_meta",
    "resolve_family",
]


# the language model's projections (attention + MLP) of every decoder family here
LM_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Qwen3.5's linear-attention (Gated DeltaNet) layers: 3 of every 4 decoder layers have these instead
LINEAR_ATTENTION_TARGETS = ("in_proj_qkv", "in_proj_z", "out_proj")


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]
    model_class: str
    image_size: int
    pin_pixels: bool = False  # Qwen-style processor: min = max pixels = W * H (multiples of patch x merge)
    lora_targets: tuple[str, ...] = LM_TARGETS
    vllm: bool = True  # vLLM lists the architecture (docs/models.md); not run here


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("qwen2.5-vl", ("qwen2_5_vl",), "Qwen2_5_VLForConditionalGeneration", 840, pin_pixels=True),
        Family("qwen2-vl", ("qwen2_vl",), "Qwen2VLForConditionalGeneration", 840, pin_pixels=True),
        # patch 16 x merge 2: 832 is the multiple of 32 nearest the paper's 840 (26 x 26 = 676 image tokens)
        Family("qwen3-vl", ("qwen3_vl",), "Qwen3VLForConditionalGeneration", 832, pin_pixels=True),
        Family(
            "qwen3.5",
            ("qwen3_5",),
            "Qwen3_5ForConditionalGeneration",
            832,
            pin_pixels=True,
            lora_targets=LM_TARGETS + LINEAR_ATTENTION_TARGETS,
        ),
        Family("internvl3", ("internvl",), "InternVLForConditionalGeneration", 896),
        Family("llava", ("llava",), "LlavaForConditionalGeneration", 336),
    )
}
_ALIASES = {
    "qwen25vl": "qwen2.5-vl",
    "qwen2_5_vl": "qwen2.5-vl",
    "qwen": "qwen2.5-vl",
    "qwen2vl": "qwen2-vl",
    "qwen2_vl": "qwen2-vl",
    "internvl": "internvl3",
    "llava15": "llava",
    "llava-1.5": "llava",
    "qwen3vl": "qwen3-vl",
    "qwen3_vl": "qwen3-vl",
    "qwen35": "qwen3.5",
    "qwen3_5": "qwen3.5",
}

META_FILE = "think2seg_prompter.json"  # template / style / image_size a checkpoint was trained with


def read_meta(path: str | Path) -> dict[str, Any]:
    """A checkpoint's ``think2seg_prompter.json`` (written by ``think2seg train`` and the warm start:
    ``template``, ``style``, ``image_size``...), or ``{}``."""
    f = Path(path) / META_FILE
    if not f.is_file():
        return {}
    try:
        return json.loads(f.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{f} is not valid JSON: {e}") from e


class MissingMetaError(UserError, ValueError):
    """A run's ``checkpoint-N`` without the ``think2seg_prompter.json`` its run directory has."""


def read_checkpoint_meta(path: str | Path, spec: str) -> dict[str, Any]:
    """:func:`read_meta` of a checkpoint to drive; raises :class:`MissingMetaError` (one line naming
    ``spec``) when ``path`` has no :data:`META_FILE` but its parent does: a ``checkpoint-N`` of a
    training run written before checkpoints carried the file would otherwise be driven at the family's
    default size (840 px for a 224 px run) and template."""
    meta = read_meta(path)
    parent = Path(path).resolve().parent / META_FILE
    if not meta and parent.is_file():
        raise MissingMetaError(
            f"{spec}: {Path(path).name} has no {META_FILE} but its run directory has one ({parent}); copy "
            f"that file into {path} so the checkpoint is driven at the size and template it was trained with"
        )
    return meta


def resolve_family(family: str) -> Family:
    """A family by name or alias (``qwen2.5-vl``, ``qwen2_5_vl``, ``internvl3``, ``internvl``, ``llava``...)."""
    key = family.strip().lower()
    key = _ALIASES.get(key, _ALIASES.get(key.replace(".", "").replace("-", ""), key))
    if key not in FAMILIES:
        raise ValueError(f"unknown LVLM family {family!r} (option family=); choose one of {sorted(FAMILIES)}")
    return FAMILIES[key]


def family_of_model_type(model_type: str | None, source: str) -> Family:
    for fam in FAMILIES.values():
        if model_type in fam.model_types:
            return fam
    hint = ""
    if model_type == "internvl_chat":
        hint = (
            " This is a remote-code InternVL checkpoint; use the transformers-native '-hf' variant "
            "(e.g. OpenGVLab/InternVL3-2B-hf)."
        )
    raise ValueError(
        f"{source}: config.json has model_type {model_type!r}, which is none of the supported families "
        f"{sorted(FAMILIES)}.{hint} Force one with family= (spec 'hf:PATH?family=NAME') if the "
        "architecture is compatible."
    )
