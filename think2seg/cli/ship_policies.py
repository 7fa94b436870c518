"""``think2seg ship-policies``: rebuild the shipped GRPO policies (think2seg/assets/tiny_grpo*) and their reports."""

from __future__ import annotations

import argparse
from pathlib import Path

from think2seg.core.errors import CLIError
from think2seg.training.shipped import name_of, ship_policies


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ship-policies",
        help="train the shipped GRPO policies (one per reward scheme) and write their training reports",
        description="Trains configs/train/cpu_demo.yaml once per reward scheme from the shipped tiny warm start "
        "(one torch thread, --max-minutes each; ~10 min per scheme plus ~3 min of control evaluations on 2 "
        "cores), copies the final weights to think2seg/assets/tiny_grpo[_SCHEME]/ and writes "
        "training_report.json there. Finished runs in --runs-dir are not retrained.",
    )
    p.add_argument("--rewards", nargs="+", default=["think2seg", "segzero", "visionreasoner", "remotereasoner"])
    p.add_argument("--runs-dir", default="runs/ship", help="training runs and control evaluations (default: runs/ship)")
    p.add_argument("--config", default="configs/train/cpu_demo.yaml")
    p.add_argument("--max-minutes", type=float, default=10.0, help="wall-clock budget per scheme (default: 10)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads while training (default: 1)")
    p.add_argument("--eval-limit", type=int, default=80, help="implicit val questions for the control rows")
    p.add_argument("--skip-train", action="store_true", help="ship the finished runs of --runs-dir as they are")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for r in args.rewards:
        try:
            name_of(r)
        except ValueError as e:
            raise CLIError(f"--rewards: {e}") from None
    if not Path(args.config).is_file():
        raise CLIError(f"--config {args.config}: not found")
    ship_policies(args.rewards, args.runs_dir, config=args.config, max_minutes=args.max_minutes,
                  threads=args.threads, eval_limit=args.eval_limit, train=not args.skip_train)
    return 0
