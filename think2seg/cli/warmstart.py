"""``think2seg warmstart``: rebuild the embedded tiny prompter from nothing (offline, CPU).

    think2seg warmstart --config configs/warmstart.yaml --out think2seg/assets/tiny_prompter   # the shipped one
    think2seg warmstart --out /tmp/ws --sft-steps 300

Generates the SynthEarth data it needs, trains the tokenizer, builds the tiny Qwen2.5-VL, pre-trains
and whitens its vision tower, warms up its language model, runs trl's SFTTrainer on freshly rendered
scenes, evaluates (explicit, shuffled-image control, implicit, implicit with the right / a wrong category
forced into <think>) and saves a ``save_pretrained`` dir + ``warmstart_report.json``. See
:mod:`think2seg.warmstart` for the stages and docs/warmstart.md for the recipe.
"""

from __future__ import annotations

import argparse
import json
import logging
import os

from think2seg.core.errors import CLIError, config_file
from think2seg.core.styles import TEXT_FIRST
from think2seg.warmstart import add_arguments, load_config, warmstart


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("warmstart", help="rebuild the embedded tiny prompter (SFT warm start)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    a = {k: v for k, v in vars(args).items() if k not in ("command", "func", "debug")}
    if a.get("config") is not None:
        config_file(a["config"])
    try:
        cfg = load_config(a.pop("config", None), a)
    except (OSError, ValueError) as e:
        raise CLIError(str(e)) from None
    if cfg.lm_warmup_steps > 0 and cfg.template not in TEXT_FIRST:
        raise CLIError(f"lm_warmup_steps > 0 needs a text-first template ({sorted(TEXT_FIRST)}), "
                       f"not template={cfg.template!r}")
    rep = warmstart(cfg)
    print(json.dumps({"eval": rep["eval"], "wall_time_s": rep["wall_time_s"]}, indent=1))
    print(f"warm start done in {rep['wall_time_s']:.0f} s -> {cfg.out}")
    return 0
