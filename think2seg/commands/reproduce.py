"""``think2seg reproduce``: run the numbered notebooks headless (papermill) under a profile into reports/."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce",
        help="execute the notebooks of a profile (configs/profiles/NAME.yaml) headless into reports/",
        description="Runs each notebook of the profile in order with its parameters; executed copies go to "
        "reports/executed/, tables to reports/tables/, figures to reports/figures/. Long work inside the "
        "notebooks resumes (evaluation runs and finished trainings are not redone).",
    )
    p.add_argument("--profile", default="embedded", help="name in configs/profiles/ or a YAML path (default: embedded)")
    p.add_argument("--only", default=None, help="comma-separated notebook prefixes to run, e.g. 01,02")
    p.add_argument("--set", action="append", default=[], metavar="NB.KEY=VALUE",
                   help="override a parameter (VALUE is YAML), e.g. --set 02_zero_shot_baselines.limit=20")
    p.add_argument("--executed-dir", default="reports/executed", help="where executed notebooks are written")
    p.add_argument("--list", action="store_true", help="print the profile's notebooks and parameters, run nothing")
    p.set_defaults(func=run)


def load_profile(name: str) -> dict:
    import yaml

    from think2seg.cli import CLIError
    from think2seg.reproduce import REPO_ROOT

    path = Path(name)
    if not path.suffix:
        path = REPO_ROOT / "configs" / "profiles" / f"{name}.yaml"
    if not path.is_file():
        choices = sorted(p.stem for p in (REPO_ROOT / "configs" / "profiles").glob("*.yaml"))
        raise CLIError(f"--profile {name!r}: {path} not found; profiles: {', '.join(choices)}")
    prof = yaml.safe_load(path.read_text()) or {}
    if not isinstance(prof.get("notebooks"), dict):
        raise CLIError(f"{path}: needs a 'notebooks:' mapping of notebook name -> parameters")
    return prof


def run(args: argparse.Namespace) -> int:
    import yaml

    from think2seg.cli import CLIError
    from think2seg.reproduce import run_notebook

    prof = load_profile(args.profile)
    books = {k: dict(v or {}) for k, v in prof["notebooks"].items()}
    for item in args.set:
        key, eq, value = item.partition("=")
        nb, dot, param = key.partition(".")
        if not (eq and dot) or nb not in books:
            raise CLIError(f"--set {item!r}: expected NOTEBOOK.KEY=VALUE with NOTEBOOK one of {list(books)}")
        books[nb][param] = yaml.safe_load(value)
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        books = {k: v for k, v in books.items() if any(k.startswith(w) for w in wanted)}
        if not books:
            raise CLIError(f"--only {args.only!r} matches no notebook of the profile")
    print(f"profile {args.profile}: {prof.get('description', '')}")
    for nb, params in books.items():
        print(f"  {nb} {params}")
    if args.list:
        return 0
    for nb, params in books.items():
        t0 = time.perf_counter()
        print(f"\n=== {nb} ===", flush=True)
        out = run_notebook(nb, params, executed_dir=args.executed_dir, progress=True)
        print(f"=== {nb}: done in {time.perf_counter() - t0:.0f} s -> {out}", flush=True)
    print("\nreports: tables in reports/tables/, figures in reports/figures/, notebooks in", args.executed_dir)
    return 0
