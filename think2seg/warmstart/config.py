"""The warm-start recipe: :class:`WarmstartConfig` (defaults = the shipped ``tiny`` prompter), its YAML
loader and its command-line flags.

    >>> from think2seg.warmstart.config import load_config
    >>> cfg = load_config("configs/warmstart.yaml", {"sft_steps": 300})   # doctest: +SKIP

Why each default is what it is (and what was measured on the way) is in ``docs/warmstart.md``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from think2seg.core.styles import DEFAULT_STYLE
from think2seg.warmstart.targets import GEOMETRIES


@dataclass
class WarmstartConfig:
    out: str = "think2seg/assets/tiny_prompter"
    data: str | None = None  # an EarthReason-layout root with SynthEarth categories; None -> generate SynthEarth
    n_train: int = 1500
    n_val: int = 100
    data_size: int = 256  # SynthEarth image size (scenes are rendered at it, then resized to image_size)
    seed: int = 0
    image_size: int = 112  # model input: (image_size / 28)^2 image tokens; coordinates in 0..image_size-1
    template: str = "compact-qfirst"  # think2seg.core.styles.TEMPLATES
    style: str = DEFAULT_STYLE
    # tokenizer / model
    vocab_size: int = 700  # BPE merges (coordinate tokens and Qwen special tokens come on top)
    hidden_size: int = 256
    intermediate_size: int = 512
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    rope_theta: float = 10000.0
    vision_depth: int = 4
    vision_hidden_size: int = 128
    vision_intermediate_size: int = 256
    vision_num_heads: int = 4
    # vision warm-up (dense position / occupancy task), then ZCA whitening of the tower output
    vision_steps: int = 1500
    vision_scenes: int = 1000
    vision_batch: int = 32
    vision_lr: float = 2e-3
    vision_pos_weight: float = 10.0  # BCE weight of occupied sub-cells
    # question-side LLM warm-up (text-first templates): image tokens learn which of them hold the ASKED category
    lm_warmup_steps: int = 1000
    lm_warmup_layer: int = 2
    lm_warmup_lr: float = 1e-3
    lm_warmup_freeze: bool = False  # keep the warmed-up layers fixed during SFT
    # answer-side warm-up: the tokens after the category named in <think> attend to that category's image tokens
    think_warmup_steps: int = 0
    think_warmup_layer: int = 1  # the supervised attention layer (its first ``think_warmup_heads`` heads)
    think_warmup_heads: int = 1
    think_warmup_lr: float = 1e-3
    think_warmup_box_weight: float = 0.0  # also regress the target's box from the supervised layer's output
    think_warmup_freeze: bool = False  # keep the layers below and the supervised q/k fixed during SFT
    # SFT on a stream of fresh procedural scenes (rendered on the fly, never repeated)
    sft_scenes: int = 12000
    sft_per_scene: int = 2  # questions per scene: a random target category, then other present ones
    sft_blind_fraction: float = 0.3  # share of questions made category-blind (only <think> names the target)
    sft_implicit_fraction: float = 0.0  # of the other questions, the share asked implicitly about the target itself
    geometry: str = "tight"  # the answers' geometry: think2seg.warmstart.targets.GEOMETRIES
    empty_fraction: float = 0.03  # share of scenes whose last question asks for an absent category
    sft_steps: int = 1200
    sft_batch: int = 16
    sft_lr: float = 5e-4
    sft_warmup: float = 0.03
    # report (the weights do not depend on it)
    eval_n: int = 40
    eval_sampled_n: int = 60
    threads: int = 1  # torch threads


def load_config(path: str | None, overrides: dict[str, Any]) -> WarmstartConfig:
    """Defaults, then the YAML at ``path`` (every key a field; unknown keys are named), then non-None
    ``overrides``."""
    cfg = WarmstartConfig()
    names = {f.name for f in fields(WarmstartConfig)}
    if path:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        unknown = set(raw) - names
        if unknown:
            raise ValueError(f"{path}: unknown warm-start option(s) {sorted(unknown)}")
        for k, v in raw.items():
            setattr(cfg, k, v)
    for k, v in overrides.items():
        if v is not None:
            if k not in names:
                raise ValueError(f"unknown warm-start option {k!r}")
            setattr(cfg, k, v)
    if cfg.geometry not in GEOMETRIES:
        raise ValueError(f"{path or 'warm-start options'}: geometry must be one of {GEOMETRIES}, not {cfg.geometry!r}")
    if not 0 <= cfg.sft_blind_fraction <= 1 or not 0 <= cfg.sft_implicit_fraction <= 1:
        raise ValueError(f"{path or 'warm-start options'}: sft_blind_fraction and sft_implicit_fraction must lie in [0, 1]")
    return cfg


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``think2seg warmstart`` flags (each overrides the config field of the same name)."""
    p.add_argument("--out", help="checkpoint dir to write (default think2seg/assets/tiny_prompter)")
    p.add_argument("--config", help="YAML of WarmstartConfig fields (e.g. configs/warmstart.yaml)")
    p.add_argument("--data", help="EarthReason-layout root with SynthEarth categories (default: generate)")
    p.add_argument("--n-train", type=int, dest="n_train")
    p.add_argument("--vision-steps", type=int, dest="vision_steps")
    p.add_argument("--sft-steps", type=int, dest="sft_steps")
    p.add_argument("--sft-scenes", type=int, dest="sft_scenes")
    p.add_argument("--sft-blind-fraction", type=float, dest="sft_blind_fraction")
    p.add_argument("--sft-implicit-fraction", type=float, dest="sft_implicit_fraction")
    p.add_argument("--geometry", help="SFT answer geometry: tight (oracle) or zeroshot (docs/warmstart.md)")
    p.add_argument("--threads", type=int)
    p.add_argument("--lm-warmup-steps", type=int, dest="lm_warmup_steps")
    p.add_argument("--think-warmup-steps", type=int, dest="think_warmup_steps")
    p.add_argument("--template", help="prompt template of the tiny prompter (think2seg.core.styles.TEMPLATES)")
    p.add_argument("--image-size", type=int, dest="image_size")
    p.add_argument("--eval-n", type=int, dest="eval_n")
    p.add_argument("--seed", type=int)
