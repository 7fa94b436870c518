"""``think2seg eval``: prompter + segmenter over a dataset split, resumable, into a run directory."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from think2seg.cli.options import add_data, add_on_error, add_protocol, add_segmenter, add_style
from think2seg.core.distributed import init_from_env, rank
from think2seg.core.errors import CLIError
from think2seg.core.styles import DEFAULT_STYLE
from think2seg.data import check_spec
from think2seg.evaluation.checkpoints import evaluate_checkpoints, plot_checkpoints
from think2seg.evaluation.engine import EvalConfig, evaluate
from think2seg.evaluation.spread import evaluate_seeds, fmt, parse_seeds
from think2seg.prompters import parse_spec
from think2seg.segmenters import parse_segmenter_spec
from think2seg.segmenters.spec import DEFAULT_SEGMENTER


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a prompter + segmenter on a dataset split (records.jsonl, metrics.json, config.json)",
        description="Evaluate a prompter + segmenter. Re-running on the same --out resumes: only missing "
        "samples are done, and the final metrics equal those of an uninterrupted run. Data-parallel: "
        "'accelerate launch --num_processes N -m think2seg.cli eval ...' splits the batches over the "
        "processes (same records and metrics as one process).",
    )
    add_data(p, required=False, what=" (required, except with --checkpoints: the run's training data)")
    p.add_argument("--split", default="test")
    p.add_argument("--prompter", default="oracle", help="oracle | fixed | tiny | tiny:/path | hf:/path/or/hub-id | vllm:/path (GPU, vllm extra)")
    add_segmenter(p, default=None, what=f"{DEFAULT_SEGMENTER} unless --checkpoints (then the run's); ")
    add_style(p, default=None)
    add_protocol(p, several=True)
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
    p.add_argument("--out", default=None,
                   help="run directory (created; resumed if it exists); --checkpoints: default RUN_DIR/checkpoint-evals")
    p.add_argument("--checkpoints", default=None, metavar="RUN_DIR",
                   help="evaluate every checkpoint-N of a training run and its final model (resumable per "
                   "checkpoint): OUT/checkpoints.csv and OUT/checkpoints.png")
    p.add_argument("--every", type=int, default=None, metavar="K",
                   help="with --checkpoints: only checkpoint-N with N a multiple of K (the final model always)")
    p.add_argument("--with-start", action="store_true",
                   help="with --checkpoints: also the run's starting model, as step 0")
    p.add_argument("--seeds", default=None,
                   help="evaluate once per seed (e.g. 0,1,2) into OUT/seed-S and report mean ± std with n "
                   "(OUT/spread.json); seeds vary sampling (--temperature > 0) and --questions random")
    p.set_defaults(func=run)


def check_specs(args: argparse.Namespace) -> None:
    """A :class:`~think2seg.cli.CLIError` naming the option whose spec is malformed (nothing loads)."""

    for option, check in (("--data", check_spec), ("--prompter", parse_spec), ("--segmenter", parse_segmenter_spec)):
        try:
            check(getattr(args, option[2:]))
        except ValueError as e:
            raise CLIError(f"{option}: {e}") from e


def run(args: argparse.Namespace) -> int:
    protocols = list(dict.fromkeys(args.protocol))
    if len(protocols) > 1 and not args.checkpoints:
        raise CLIError(f"--protocol {' '.join(protocols)}: one protocol (several only with --checkpoints)")
    args.protocol = protocols[0]
    given = {k: getattr(args, k) for k in ("data", "segmenter", "style") if getattr(args, k) is not None}
    if args.checkpoints is None:
        for option in ("data", "out"):
            if getattr(args, option) is None:
                raise CLIError(f"--{option} is required (unless --checkpoints RUN_DIR is given)")
    args.data = args.data or "synthearth"  # --checkpoints without --data: the run's own (given stays given)
    args.segmenter = args.segmenter or DEFAULT_SEGMENTER
    args.style = args.style or DEFAULT_STYLE
    check_specs(args)
    if args.batch_size < 1:
        raise CLIError(f"--batch-size {args.batch_size}: must be >= 1")
    try:
        seeds = parse_seeds(args.seeds) if args.seeds else None
    except ValueError as e:
        raise CLIError(f"--seeds: {e}") from e
    if args.checkpoints:
        return _run_checkpoints(args, protocols, given)
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
    if seeds:
        try:
            result = evaluate_seeds(cfg, seeds)
        except ValueError as e:
            raise CLIError(str(e)) from e
        if rank() == 0:
            what = f"temperature {cfg.temperature:g}, questions {cfg.questions}"
            for k, sp in result["spread"].items():
                print(f"{k}: {fmt(sp)}  over seeds {','.join(map(str, seeds))} ({what})")
            if cfg.temperature == 0 and cfg.questions != "random":
                print("note: greedy decoding with --questions " + cfg.questions + ": the seeds change nothing")
            print(f"wrote {args.out}/seed-*/ and {args.out}/spread.json")
        return 0
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


def _run_checkpoints(args: argparse.Namespace, protocols: list[str], given: dict[str, str]) -> int:
    """``--checkpoints RUN_DIR``: data, segmenter and style default to the run's (``given``: the user's)."""
    out = Path(args.out) if args.out else Path(args.checkpoints) / "checkpoint-evals"
    if args.every is not None and args.every < 1:
        raise CLIError(f"--every {args.every}: must be >= 1")
    if args.seeds:
        raise CLIError("--seeds and --checkpoints: evaluate the checkpoints once per --seed instead")
    options = dict(split=args.split, questions=args.questions, question_kind=args.question_kind, seed=args.seed,
                   limit=args.limit, batch_size=args.batch_size, image_size=args.image_size,
                   temperature=args.temperature, on_error=args.on_error, **given)
    try:
        df = evaluate_checkpoints(args.checkpoints, out, every=args.every, protocols=protocols,
                                  start=args.with_start, **options)
    except ValueError as e:
        raise CLIError(str(e)) from e
    plot_checkpoints(df, out=out / "checkpoints.png", title=Path(args.checkpoints).name)
    print(df.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    print(f"wrote {out}/checkpoints.csv, {out}/checkpoints.png and {out}/step-*/")
    return 0
