"""Released checkpoints whose architecture this project knows without their weights: the hub name, its
family (:data:`think2seg.prompters.families.FAMILIES`) and the config values that set its size, so that
Table 4 can give the parameter count of a model that is not on this machine.

    >>> ckpt = checkpoint_for("hf:/models/Qwen3-VL-2B-Instruct?batch_size=2")    # matched by folder name
    >>> ckpt.name, ckpt.family
    ('Qwen3-VL-2B-Instruct', 'qwen3-vl')
    >>> count_parameters(ckpt)                 # (total, vision tower); meta device: no memory, no download
    (2127532032, 406957056)
    >>> tower = vision_tower(ckpt)             # the real vision class at full size, random weights  # doctest: +SKIP
    >>> pixels, grid = vision_inputs(ckpt, 832)                                                     # doctest: +SKIP
    >>> tower(pixels, grid_thw=grid)           # one 832 px image: 52 x 52 = 2,704 patches           # doctest: +SKIP

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
        Checkpoint("Qwen3.5-0.8B", "qwen3.5", "qwen3_5",
                   dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=8, num_key_value_heads=2,
                        head_dim=256, intermediate_size=3584, vocab_size=248320, full_attention_interval=4,
                        linear_num_key_heads=16, linear_num_value_heads=16, linear_key_head_dim=128,
                        linear_value_head_dim=128, linear_conv_kernel_dim=4),
                   dict(depth=12, hidden_size=768, intermediate_size=3072, num_heads=12, patch_size=16,
                        spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=2304,
                        deepstack_visual_indexes=[], out_hidden_size=1024)),
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

    with torch.device("meta"):
        model = _family_class(ckpt)(build_config(ckpt))
    return (sum(p.numel() for p in model.parameters()), sum(p.numel() for p in model.model.visual.parameters()))


def _family_class(ckpt: Checkpoint):
    import transformers

    return getattr(transformers, FAMILIES[ckpt.family].model_class)


def vision_tower(ckpt: Checkpoint, dtype: Any = None):
    """``ckpt``'s vision tower (the class its family's model holds as ``model.visual``) at full size with
    random weights (seeded by the caller's torch RNG), in eval mode on the CPU; ``dtype`` e.g.
    ``torch.bfloat16`` (default float32). Only the tower is allocated: the language model is never built."""
    import torch

    config = build_config(ckpt)
    with torch.device("meta"):
        tower_cls = type(_family_class(ckpt)(config).model.visual)
    tower = tower_cls._from_config(config.vision_config, **({"dtype": dtype} if dtype is not None else {}))
    return tower.eval()


def vision_inputs(ckpt: Checkpoint, image_size: int, dtype: Any = None):
    """``(pixel_values, grid_thw)`` of one square ``image_size`` px image as the family's processor hands
    them to the tower: (N, C * T * P * P) patch rows, N = (image_size // P)^2 with P the patch size, and
    ``grid_thw`` = [[1, image_size // P, image_size // P]]. Random pixels: the cost does not depend on them.
    ``image_size`` must be a multiple of P x the merge size (the families pin it so)."""
    import torch

    v = build_config(ckpt).vision_config
    unit = v.patch_size * v.spatial_merge_size
    if image_size % unit:
        raise ValueError(f"image_size {image_size} is not a multiple of {unit} (patch {v.patch_size} x merge "
                         f"{v.spatial_merge_size}) for {ckpt.name}")
    g = image_size // v.patch_size
    pixels = torch.randn(g * g, v.in_channels * v.temporal_patch_size * v.patch_size ** 2)
    return (pixels.to(dtype) if dtype is not None else pixels), torch.tensor([[1, g, g]])
