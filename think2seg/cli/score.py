"""``think2seg score``: re-score completions produced elsewhere (a JSONL of {id, completion}, or the
released evaluation's output JSON) on a dataset split, under one or more protocols."""

from __future__ import annotations

import argparse
import json

from think2seg.cli.options import add_data, add_on_error, add_protocol, add_segmenter, add_style
from think2seg.core.errors import CLIError
from think2seg.evaluation.score import score_predictions


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score existing completions (JSONL {id, completion} or a released evaluation output JSON)",
        description="Segment and score completions that were generated elsewhere, without regenerating. "
        "JSONL rows are matched by sample id, released output rows by image file name and question.",
    )
    p.add_argument("predictions", help="PREDICTIONS.jsonl or the released evaluation's geo_results.json")
    add_data(p)
    p.add_argument("--split", default="test")
    add_protocol(p, several=True)
    add_segmenter(p)
    add_style(p)
    p.add_argument(
        "--image-size", type=int, default=840, help="the model input size the completions refer to"
    )
    p.add_argument(
        "--keep-masks", action="store_true", help="store predicted masks as COCO RLE in the records"
    )
    add_on_error(p, "bad rows (torn line, missing field, unknown id)")
    p.add_argument(
        "--out", default=None, help="directory for OUT/<protocol>/{records.jsonl,metrics.json,config.json}"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        results = score_predictions(
            args.predictions,
            args.data,
            args.split,
            protocols=args.protocol,
            segmenter=args.segmenter,
            style=args.style,
            image_size=args.image_size,
            out=args.out,
            on_error=args.on_error,
            keep_masks=args.keep_masks,
        )
    except (ValueError, FileNotFoundError) as e:
        raise CLIError(str(e)) from e
    keys = ["n", "gIoU", "cIoU", "P@0.5", "empty_true", "empty_false", "format_ok_rate", "skipped_rows"]
    print(json.dumps({p: {k: m[k] for k in keys if k in m} for p, m in results.items()}, indent=1))
    if args.out:
        print(f"wrote {args.out}/<protocol>/records.jsonl, metrics.json, config.json")
    return 0
