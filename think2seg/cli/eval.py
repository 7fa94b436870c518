"""``think2seg eval``: prompter + segmenter over a dataset split, resumable, into a run directory."""

from __future__ import annotations

import argparse
import json

from think2seg.cli.options import add_data, add_on_error, add_protocol, add_segmenter, add_style
from think2seg.core.distributed import init_from_env, rank
from think2seg.core.errors import CLIError
from think2seg.data import check_spec
from think2seg.evaluation.engine import EvalConfig, evaluate
from think2seg.prompters import parse_spec
from think2seg.segmenters import parse_segmenter_spec


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a prompter + segmenter on a dataset split (records.jsonl, metrics.json, config.json)",
        description="Evaluate a prompter + segmenter. Re-running on the same --out resumes: only missing "
        "samples are done, and the final metrics equal those of an uninterrupted run. Data-parallel: "
        "'accelerate launch --num_processes N -m think2seg.cli eval ...' splits the batches over the "
        "processes (same records and metrics as one process).",
    )
    add_data(p)
    p.add_argument("--split", default="test")
    p.add_argument("--prompter", default="oracle", help="oracle | fixed | tiny | tiny:/path | hf:/path/or/hub-id | vllm:/path (GPU, vllm extra)")
    add_segmenter(p)
    add_style(p)
    add_protocol(p)
    p.add_argument(
        "--questions",
        default="random",
        choices=["first", "random", "all"],
        help="question policy per image (random is seeded by --seed; authors: random, seed 0)",
    )
    p.add_argument("--question-kind", default=None, help="implicit | explicit (datasets that record kinds)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="first N samples only")
    p.add_argument(
        "--batch-size", type=int, default=8, help="samples per generate call (the model's batch)"
    )
    p.add_argument("--image-size", type=int, default=None, help="model input size (default: the prompter's)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (as evaluated in the paper)")
    p.add_argument(
        "--shuffle-questions",
        action="store_true",
        help="control: ask every sample a question of another image (a prompter that reads the question drops)",
    )
    p.add_argument(
        "--keep-masks", action="store_true", help="store predicted masks as COCO RLE in the records"
    )
    add_on_error(p, "bad data files")
    p.add_argument("--out", required=True, help="run directory (created; resumed if it exists)")
    p.set_defaults(func=run)


def check_specs(args: argparse.Namespace) -> None:
    """A :class:`~think2seg.cli.CLIError` naming the option whose spec is malformed (nothing loads)."""

    for option, check in (("--data", check_spec), ("--prompter", parse_spec), ("--segmenter", parse_segmenter_spec)):
        try:
            check(getattr(args, option[2:]))
        except ValueError as e:
            raise CLIError(f"{option}: {e}") from e


def run(args: argparse.Namespace) -> int:
    check_specs(args)
    if args.batch_size < 1:
        raise CLIError(f"--batch-size {args.batch_size}: must be >= 1")
    world = init_from_env()

    cfg = EvalConfig(
        data=args.data,
        out=args.out,
        split=args.split,
        prompter=args.prompter,
        segmenter=args.segmenter,
        style=args.style,
        protocol=args.protocol,
        questions=args.questions,
        question_kind=args.question_kind,
        seed=args.seed,
        limit=args.limit,
        batch_size=args.batch_size,
        image_size=args.image_size,
        temperature=args.temperature,
        shuffle_questions=args.shuffle_questions,
        keep_masks=args.keep_masks,
        on_error=args.on_error,
    )
    try:
        metrics = evaluate(cfg)
    except ValueError as e:
        raise CLIError(str(e)) from e
    if rank() > 0:
        return 0
    keys = ["n", "gIoU", "cIoU", "P@0.5", "empty_total", "empty_true", "empty_false", "format_ok_rate"]
    print(json.dumps({k: metrics[k] for k in keys if k in metrics}, indent=1))
    by = f" by {world} processes" if world > 1 else ""
    print(f"wrote {args.out}/records.jsonl, metrics.json, config.json{by}")
    return 0
