"""``think2seg gallery``: a self-contained HTML page of reasoning traces from one or two evaluation runs."""

from __future__ import annotations

import argparse

from think2seg.core.errors import CLIError
from think2seg.reports.viewer import Filter, write_gallery


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gallery",
        help="static HTML gallery of reasoning traces (image, prompts, masks, think text) from eval runs",
        description="Write one self-contained HTML page (images embedded, no external requests) with, per "
        "sample, the image with the answer's prompts, the predicted and ground-truth masks, the <think> text, "
        "the raw answer, IoU, format flags and parse warnings; two runs are shown side by side with their IoU "
        "difference. The runs need stored masks (`think2seg eval --keep-masks`).",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="evaluation run directories (1 or 2)")
    p.add_argument("--out", default="reports/gallery.html", help="HTML file to write")
    p.add_argument("--labels", nargs="+", default=None, help="one label per run (default: directory names)")
    p.add_argument("--worst", type=int, default=None, help="the N lowest samples of the order")
    p.add_argument("--best", type=int, default=None, help="the N highest samples of the order")
    p.add_argument("--sort", default=None, choices=["order", "iou", "delta"],
                   help="order (dataset), iou (first run), delta (IoU of the 2nd run minus the 1st); "
                   "default iou with --worst/--best, else order")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="repeatable: category=NAME, kind=implicit|explicit, iou=LOW:HIGH, parse=failed|ok, "
                   "outcome=answered|false_rejection|true_rejection|missed_rejection")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if len(args.run_dirs) > 2:
        raise CLIError(f"at most two RUN_DIRs (got {len(args.run_dirs)})")
    if args.labels and len(args.labels) != len(args.run_dirs):
        raise CLIError(f"--labels: {len(args.labels)} labels for {len(args.run_dirs)} runs")
    if args.sort == "delta" and len(args.run_dirs) < 2:
        raise CLIError("--sort delta needs two RUN_DIRs")
    for n in (args.worst, args.best):
        if n is not None and n < 0:
            raise CLIError("--worst / --best must be >= 0")
    try:
        filters = Filter.parse_args(args.filter)
        out = write_gallery(args.run_dirs, args.out, worst=args.worst, best=args.best, filters=filters,
                            sort=args.sort, labels=args.labels)
    except (ValueError, FileNotFoundError) as e:  # MissingMasks is a ValueError
        raise CLIError(str(e)) from e
    print(f"wrote {out}")
    return 0
