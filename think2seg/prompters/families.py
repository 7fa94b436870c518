"""The LVLM families a prompter can drive, and the metadata file a trained checkpoint carries.

>>> from think2seg.prompters.families import FAMILIES, resolve_family
>>> resolve_family("qwen2_5_vl").image_size, FAMILIES["llava"].model_class
(840, 'LlavaForConditionalGeneration')

One registry (:data:`FAMILIES`): name -> ``config.model_type`` values it covers, the transformers class and
the default square input size in pixels. :data:`META_FILE` (``think2seg_prompter.json``) records the
template / style / image size a checkpoint was trained with (:func:`read_meta`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FAMILIES", "META_FILE", "Family", "family_of_model_type", "read_meta", "resolve_family"]


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]
    model_class: str
    image_size: int


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("qwen2.5-vl", ("qwen2_5_vl",), "Qwen2_5_VLForConditionalGeneration", 840),
        Family("qwen2-vl", ("qwen2_vl",), "Qwen2VLForConditionalGeneration", 840),
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
