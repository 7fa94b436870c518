"""Released checkpoints whose architecture this project knows without their weights: the hub name, its
family (:data:`think2seg.prompters.families.FAMILIES`) and the config values that set its size, so that
Table 4 can give the parameter count of a model that is not on this machine.

    >>> ckpt = checkpoint_for("hf:/models/Qwen3-VL-2B-Instruct?batch_size=2")    # matched by folder name
    >>> ckpt.name, ckpt.family
    ('Qwen3-VL-2B-Instruct', 'qwen3-vl')
    >>> count_parameters(ckpt)                 # (total, vision tower); meta device: no memory, no download
    (2127532032, 406957056)

The values are those of each checkpoint's ``config.json`` on the hub. That file cannot be read offline
here; where its values came from is said in docs/models.md. Everything not listed keeps transformers'
default for the class, which does not change the parameter count of these architectures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from think2seg.prompters.families import FAMILIES


@dataclass(frozen=True)
class Checkpoint:
    name: str  # the hub repository's name (Qwen/<name>), also the usual local folder name
    family: str  # a key of FAMILIES
    model_type: str  # config.model_type
    text: dict[str, Any] = field(default_factory=dict)
    vision: dict[str, Any] = field(default_factory=dict)
    tie_word_embeddings: bool = True


_QWEN25_VISION = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, patch_size=14,
                      spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                      fullatt_block_indexes=[7, 15, 23, 31])
_QWEN3_VISION = dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16, patch_size=16,
                     spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=2304,
                     deepstack_visual_indexes=[5, 11, 17])

CHECKPOINTS: dict[str, Checkpoint] = {
    c.name: c
    for c in (
        Checkpoint("Qwen2.5-VL-3B-Instruct", "qwen2.5-vl", "qwen2_5_vl",
                   dict(hidden_size=2048, num_hidden_layers=36, num_attention_heads=16, num_key_value_heads=2,
                        intermediate_size=11008, vocab_size=151936),
                   dict(_QWEN25_VISION, out_hidden_size=2048)),
        Checkpoint("Qwen2.5-VL-7B-Instruct", "qwen2.5-vl", "qwen2_5_vl",
                   dict(hidden_size=3584, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                        intermediate_size=18944, vocab_size=152064),
                   dict(_QWEN25_VISION, out_hidden_size=3584), tie_word_embeddings=False),
        Checkpoint("Qwen3-VL-2B-Instruct", "qwen3-vl", "qwen3_vl",
                   dict(hidden_size=2048, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
                        head_dim=128, intermediate_size=6144, vocab_size=151936),
                   dict(_QWEN3_VISION, out_hidden_size=2048)),
        Checkpoint("Qwen3-VL-4B-Instruct", "qwen3-vl", "qwen3_vl",
                   dict(hidden_size=2560, num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8,
                        head_dim=128, intermediate_size=9728, vocab_size=151936),
                   dict(_QWEN3_VISION, out_hidden_size=2560)),
    )
}


def checkpoint_for(spec: str) -> Checkpoint | None:
    """The catalogued checkpoint an ``hf:`` / ``vllm:`` spec or a path names (its last path component,
    case-insensitive, without the query), or None."""
    path = spec.split(":", 1)[1] if spec.startswith(("hf:", "vllm:")) else spec
    last = path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1].lower()
    return next((c for name, c in CHECKPOINTS.items() if name.lower() == last), None)


def build_config(ckpt: Checkpoint):
    """The transformers config of ``ckpt`` (its class from ``config.model_type``)."""
    from transformers import AutoConfig

    text = dict(ckpt.text, tie_word_embeddings=ckpt.tie_word_embeddings)
    return AutoConfig.for_model(ckpt.model_type, text_config=text, vision_config=dict(ckpt.vision),
                                tie_word_embeddings=ckpt.tie_word_embeddings)


def count_parameters(ckpt: Checkpoint) -> tuple[int, int]:
    """(all parameters, the vision tower's) of ``ckpt``'s family class built on the ``meta`` device
    (shapes only; tied embeddings counted once)."""
    import torch
    import transformers

    cls = getattr(transformers, FAMILIES[ckpt.family].model_class)
    with torch.device("meta"):
        model = cls(build_config(ckpt))
    return (sum(p.numel() for p in model.parameters()), sum(p.numel() for p in model.model.visual.parameters()))
