"""``think2seg headroom``: how far mask-only GRPO can move a warm start, measured before training it.

    think2seg headroom --prompter tiny:think2seg/assets/tiny_zeroshot --segmenter sam2:mini-t --out runs/headroom

Evaluates the warm start, its answers with the zero-shot margin taken out, the zero-shot rules on the
ground truth, the best one-instance answer and per-component oracle prompts on the same questions, splits
each by the target's number of components, and counts the answer shapes the warm start samples at
temperature 1 (see :mod:`think2seg.warmstart.headroom`). Writes ``OUT/headroom.json``; a rerun resumes.
"""

from __future__ import annotations

import argparse
import json

from think2seg.cli.options import add_data, add_segmenter
from think2seg.data import check_spec
from think2seg.warmstart.headroom import ROWS, SUBSETS, headroom


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("headroom", help="ceilings of mask-only GRPO from a warm start (issue #23's control)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prompter", required=True, help="the warm start: tiny:DIR or hf:DIR")
    add_segmenter(p, default="sam2:mini-t", what="the reward's executor; ")
    add_data(p, required=False, what=" (default: synthearth, whose masks the rules need)")
    p.add_argument("--split", default="val")
    p.add_argument("--question-kind", default="implicit", help="implicit | explicit (default: %(default)s)")
    p.add_argument("--limit", type=int, default=None, help="first N questions only")
    p.add_argument("--support-every", type=int, default=10,
                   help="sample every k-th question 8 times at temperature 1 (default: %(default)s)")
    p.add_argument("--out", required=True, help="directory of the runs and headroom.json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    data = args.data or "synthearth"
    check_spec(data)
    rep = headroom(args.prompter, args.out, segmenter=args.segmenter, data=data, split=args.split,
                   question_kind=args.question_kind, limit=args.limit, support_every=args.support_every)
    print(f"{rep['n']} questions; subsets {json.dumps(rep['subset_sizes'])}")
    print(f"{'row':<20}{'gIoU':>7}" + "".join(f"{s:>15}" for s in SUBSETS))
    for row in ROWS:
        r = rep["rows"][row]
        cells = [r["by_components"][s]["gIoU"] for s in SUBSETS]
        print(f"{row:<20}{r['gIoU']:7.1f}" + "".join(f"{'-' if g is None else f'{g:.1f}':>15}" for g in cells))
    print(f"sampled at T=1 ({rep['support_questions']} questions x {rep['support_n']}): {rep['support']}")
    return 0
