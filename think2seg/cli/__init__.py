"""The ``think2seg`` command. Each subcommand lives in ``think2seg/cli/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func=run``. Heavy imports (torch,
transformers, sam2) happen inside ``run`` so that ``think2seg --help`` stays instant.

    think2seg doctor            # what is installed, which checkpoints / model dirs are found
    think2seg <command> --help  # every subcommand documents its options
    think2seg --debug <command> # a user error shows its traceback instead of one line

A mistake of the user's (any :class:`think2seg.core.errors.UserError`: a missing file, model directory or
checkpoint, a bad option or spec) prints one line naming the file or option and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from think2seg import __version__
from think2seg.core.errors import UserError

COMMANDS = [
    "doctor",
    "data",  # data-stats, synth
    "dataset",  # dataset build: your GeoTIFFs + vector labels -> EarthReason layout
    "bench",  # bench reward
    "eval",
    "gallery",  # static HTML of reasoning traces from eval runs
    "score",  # re-score completions produced elsewhere
    "predict",  # your own image (GeoTIFF), tiled
    "train",
    "reproduce",
    "warmstart",  # rebuild the embedded tiny prompter
    "headroom",  # ceilings of mask-only GRPO from a warm start
    "ship_policies",  # rebuild the shipped GRPO policies
    "sam2_train",  # train (and ship) a mini SAM2
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="think2seg",
        description="Reasoning segmentation of remote-sensing images (LVLM prompter + frozen SAM2).",
    )
    parser.add_argument("--version", action="version", version=f"think2seg {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error instead of a one-line message"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"think2seg.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"think2seg.cli.{name}":
                continue  # command not shipped in this build
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if "--debug" in rest:  # also accepted after the command
        args.debug = True
        rest = [a for a in rest if a != "--debug"]
    if getattr(args, "command", None) == "train":  # trl's TrlParser owns the training options
        args._rest = rest
        args._parser = parser._subparsers._group_actions[0].choices["train"]
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        if args.debug:
            raise
        message = " ".join(str(e).split())  # one line, whatever the message held
        print(f"think2seg {args.command}: error: {message}", file=sys.stderr)
        return 2


