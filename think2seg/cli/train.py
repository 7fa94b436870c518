"""``think2seg train``: GRPO training (trl GRPOTrainer); options are trl's GRPOConfig + think2seg's own."""

from __future__ import annotations

import argparse

from think2seg.training.grpo import main


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="GRPO-train a prompter with trl (--config configs/train/NAME.yaml [--key value ...])",
        description="GRPO training with trl's GRPOTrainer. Every GRPOConfig field and every think2seg "
        "option can be set in the YAML given by --config and overridden as --key value. "
        "Multi-process: accelerate launch [--config_file configs/accelerate/...] -m think2seg.training.grpo "
        "--config ... . Resume: --resume_from_checkpoint last. Full option list: think2seg train --help-all",
        add_help=False,
    )
    p.add_argument("-h", "--help", action="store_true", help="show this help")
    p.add_argument("--help-all", action="store_true", help="list every option (trl GRPOConfig + think2seg)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.help:
        args._parser.print_help()
        return 0
    if args.help_all:
        return main(["--help"])
    return main(args._rest)
