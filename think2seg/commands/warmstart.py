"""``think2seg warmstart``: rebuild the embedded tiny prompter from nothing (offline, CPU).

    think2seg warmstart --out think2seg/assets/tiny_prompter            # the shipped checkpoint
    think2seg warmstart --out /tmp/ws --config configs/warmstart.yaml --sft-steps 300

Generates the SynthEarth data it needs, trains the tokenizer, builds the tiny Qwen2.5-VL, pre-trains
and whitens its vision tower, runs trl's SFTTrainer on the EXPLICIT questions, evaluates (explicit,
implicit, shuffled-image control) and saves a ``save_pretrained`` dir + ``warmstart_report.json``.
Same as ``python -m think2seg.warmstart``; see :mod:`think2seg.warmstart` for the stages.
"""

from __future__ import annotations

import argparse
import json
import logging
import os

from think2seg.cli import CLIError
from think2seg.errors import config_file


def register(subparsers: argparse._SubParsersAction) -> None:
    from think2seg.warmstart import add_arguments

    p = subparsers.add_parser("warmstart", help="rebuild the embedded tiny prompter (SFT warm start)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from think2seg.warmstart import load_config, warmstart

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    a = {k: v for k, v in vars(args).items() if k not in ("command", "func", "debug")}
    if a.get("config") is not None:
        config_file(a["config"])
    try:
        cfg = load_config(a.pop("config", None), a)
    except (OSError, ValueError) as e:
        raise CLIError(str(e)) from None
    rep = warmstart(cfg)
    print(json.dumps({"eval": rep["eval"], "wall_time_s": rep["wall_time_s"]}, indent=1))
    print(f"warm start done in {rep['wall_time_s']:.0f} s -> {cfg.out}")
    return 0
