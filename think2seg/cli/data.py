"""``think2seg data-stats`` and ``think2seg synth``.

    think2seg data-stats earthreason:data/EarthReason            # table per split
    think2seg data-stats rrsisd:data/RRSIS-D --split test --json
    think2seg synth --format earthreason --out data/se --train 800 --val 100 --test 100 --seed 0 --size 256
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from think2seg.core.errors import CLIError
from think2seg.data import FORMATS, parse_spec
from think2seg.data.stats import format_table, split_summary
from think2seg.data.synth import META_FILE, generate


def register(sub) -> None:
    p = sub.add_parser(
        "data-stats",
        help="per-split counts, empty targets and mask-area statistics of a dataset",
        description="Load every split of a dataset (or --split) and print images, questions, empty-target "
        "images and mask-area statistics (target fraction of the image). Bad input stops with the "
        "file named, unless --on-error skip, which records and counts it.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="FORMAT is one of " + ", ".join(FORMATS) + "; a bare DIR means earthreason.\n"
        "example: think2seg data-stats earthreason:data/EarthReason --split val --json",
    )
    p.add_argument("spec", metavar="FORMAT:DIR", help="dataset, e.g. earthreason:data/EarthReason")
    p.add_argument("--split", action="append", choices=["train", "val", "test"],
                   help="split to summarise (repeatable; default: every split present)")
    p.add_argument("--json", action="store_true", help="print a JSON object keyed by split instead of a table")
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise",
                   help="raise (default): stop at the first bad file; skip: record it and count it")
    p.set_defaults(func=run_stats)

    s = sub.add_parser(
        "synth",
        help="write a SynthEarth dataset (procedural aerial scenes) in a real dataset format",
        description="Generate SynthEarth: procedural top-down aerial scenes with 15 categories, implicit "
        "(reasoning) and explicit questions, ~2.5% empty targets (earthreason format), written in the "
        "on-disk format of EarthReason or of a referring benchmark, so the same loaders read it. "
        "Deterministic for a seed, whatever the number of workers.",
    )
    s.add_argument("--format", choices=FORMATS, default="earthreason", help="on-disk format (default earthreason)")
    s.add_argument("--out", required=True, help="output folder (created)")
    s.add_argument("--train", type=int, default=800, help="training images (default 800)")
    s.add_argument("--val", type=int, default=100, help="validation images (default 100)")
    s.add_argument("--test", type=int, default=100, help="test images (default 100)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--size", type=int, default=256, help="image side in pixels (default 256, at least 64)")
    s.add_argument("--empty-rate", type=float, default=0.025,
                   help="share of empty-target images, earthreason format only (default 0.025)")
    s.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    s.set_defaults(func=run_synth)


def run_stats(args) -> int:
    try:
        fmt, root = parse_spec(args.spec)
    except ValueError as e:
        raise CLIError(str(e)) from e
    stats = split_summary(f"{fmt}:{root}", args.split, on_error=args.on_error, progress=not args.json)
    if args.json:
        print(json.dumps(stats, indent=1))
    else:
        print(f"{fmt}: {root}")
        print(format_table(stats))
    return 0


def run_synth(args) -> int:
    out = Path(args.out)
    for name, v in (("--train", args.train), ("--val", args.val), ("--test", args.test)):
        if v < 0:
            raise CLIError(f"{name} must be >= 0, got {v}")
    if args.size < 64:
        raise CLIError(f"--size must be at least 64, got {args.size}")
    if not 0 <= args.empty_rate < 1:
        raise CLIError(f"--empty-rate must be in [0, 1), got {args.empty_rate}")
    if out.exists() and any(out.iterdir()) and not (out / META_FILE).is_file():
        raise CLIError(f"{out}: exists and is not empty (and is not a SynthEarth dataset)")
    s = generate(out, format=args.format, n_train=args.train, n_val=args.val, n_test=args.test, seed=args.seed,
                 size=args.size, empty_rate=args.empty_rate, workers=args.workers)
    for split, c in s["splits"].items():
        print(f"{split:<6} images {c['images']:>6}  questions {c['questions']:>6}  empty {c['empty']:>4}")
    print(f"wrote {s['images']} images ({args.format}, {args.size}px) to {out} in {s['seconds']:.1f} s "
          f"({s['images_per_second']:.0f} images/s)")
    return 0
