"""``think2seg reproduce``: run the numbered notebooks headless (papermill) under a profile into reports/.

Each profile owns its folders (:func:`profile_dirs`): the embedded profile (the notebooks' own defaults)
writes ``runs/`` and ``reports/`` of the repository, every other profile ``runs/<profile>/`` and
``reports/<profile>/``; ``--runs-dir`` / ``--reports-dir`` move the roots, never the layout under them.
Paths are made absolute before any notebook runs, so the command works the same from any directory.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import yaml

from think2seg.core.errors import CLIError
from think2seg.core.provenance import git_sha
from think2seg.reports.index import notebook_entry, snapshot, snapshot_diff, write_index
from think2seg.reports.reproduce import REPO_ROOT, NotebookFailed, find_notebook, notebook_defaults, run_book
from think2seg.reports.resources import PeakMemory, missing_inputs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce",
        help="execute the notebooks of a profile (configs/profiles/NAME.yaml) headless into reports/",
        description="Runs each notebook of the profile in order with its parameters; executed copies go to "
        "REPORTS/executed/, tables to REPORTS/tables/, figures to REPORTS/figures/, and REPORTS/index.md lists "
        "every table and figure with its provenance. REPORTS is the reports root (the repository's reports/) for "
        "the embedded profile and ROOT/PROFILE for any other; the notebooks' run folders go under RUNS, the runs "
        "root (the repository's runs/) or RUNS/PROFILE, likewise, so profiles never share a file. Long work "
        "inside the notebooks resumes (evaluation runs "
        "and finished trainings are not redone). A failing cell stops the run with its error; the partial "
        "executed notebook stays. Profiles with 'precheck: true' (paper) check every dataset, model folder "
        "and SAM2 checkpoint first and list all the missing ones.",
    )
    p.add_argument("--profile", default="embedded", help="name in configs/profiles/ or a YAML path (default: embedded)")
    p.add_argument("--only", default=None, help="comma-separated notebook prefixes to run, e.g. 01,02")
    p.add_argument("--set", action="append", default=[], metavar="NB.KEY=VALUE",
                   help="override a parameter (VALUE is YAML), e.g. --set 02_zero_shot_baselines.limit=20")
    p.add_argument("--data", default=None, help="dataset spec for every notebook with a 'data' parameter")
    p.add_argument("--reports-dir", default=None, metavar="ROOT",
                   help="reports root: tables/, figures/, executed/ and index.md of the embedded profile go here, "
                   "those of profile P to ROOT/P (default: the repository's reports/)")
    p.add_argument("--runs-dir", default=None, metavar="ROOT",
                   help="runs root: the notebooks' run folders (ROOT/02_zero_shot, ...) of the embedded profile, "
                   "ROOT/P/... for profile P (default: the repository's runs/)")
    p.add_argument("--list", action="store_true", help="print the profile's notebooks and parameters, run nothing")
    p.set_defaults(func=run)


EMBEDDED = "embedded"  # the profile whose parameters are the notebooks' defaults: it owns the top folders
RESERVED = ("tables", "figures", "executed")  # folders of a reports directory: not profile names


def profile_dirs(profile: str, reports_root: str | Path | None, runs_root: str | Path | None) -> tuple[Path, Path]:
    """``(reports_dir, runs_dir)`` of ``profile``, absolute: the roots (default: the repository's
    ``reports/`` and ``runs/``; relative ones from the current directory) for the embedded profile, else
    ``ROOT/<profile>`` under each."""
    if profile in RESERVED:
        raise CLIError(f"--profile {profile!r}: the name of a reports folder; rename the profile file")
    roots = [Path(r).expanduser().resolve() if r is not None else REPO_ROOT / d
             for r, d in ((reports_root, "reports"), (runs_root, "runs"))]
    return tuple(r if profile == EMBEDDED else r / profile for r in roots)  # type: ignore[return-value]


def notebook_runs_dir(runs: Path, default: str) -> str:
    """Where a notebook's runs go under ``runs``: the last part of its own default (``runs/03_grpo`` ->
    ``RUNS/03_grpo``), so interactive runs and the embedded profile's share their folders."""
    return str(runs / Path(default).name)


def load_profile(name: str) -> dict:
    path = Path(name)
    if not path.suffix:
        path = REPO_ROOT / "configs" / "profiles" / f"{name}.yaml"
    if not path.is_file():
        choices = sorted(p.stem for p in (REPO_ROOT / "configs" / "profiles").glob("*.yaml"))
        raise CLIError(f"--profile {name!r}: {path} not found; profiles: {', '.join(choices)}")
    prof = yaml.safe_load(path.read_text()) or {}
    if not isinstance(prof.get("notebooks"), dict):
        raise CLIError(f"{path}: needs a 'notebooks:' mapping of notebook name -> parameters")
    prof["name"] = path.stem
    return prof


def effective_books(prof: dict, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Profile parameters + command-line overrides for each notebook (the notebooks' own defaults apart)."""

    books = {k: dict(v or {}) for k, v in prof["notebooks"].items()}
    for nb in books:
        try:
            find_notebook(nb)
        except FileNotFoundError as e:
            raise CLIError(f"profile {prof['name']}: {e}") from None
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
    reports, runs = profile_dirs(prof["name"], args.reports_dir, args.runs_dir)
    for nb, params in books.items():
        defaults = notebook_defaults(nb)
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise CLIError(f"profile {prof['name']}: {nb} has no parameter {', '.join(unknown)} "
                           f"(parameters: {', '.join(defaults)})")
        auto = {"reports_dir": str(reports), "figures_dir": str(reports / "figures"), "runs_root": str(runs)}
        if args.data is not None:
            auto["data"] = args.data
        if "runs_dir" in defaults:
            auto["runs_dir"] = notebook_runs_dir(runs, defaults["runs_dir"])
        for key, value in auto.items():
            if key in defaults and (key not in params or key == "data" and args.data is not None):
                params[key] = value
    return books


def run(args: argparse.Namespace) -> int:
    prof = load_profile(args.profile)
    books = effective_books(prof, args)
    reports, runs = profile_dirs(prof["name"], args.reports_dir, args.runs_dir)
    print(f"profile {prof['name']}: {prof.get('description', '')}")
    print(f"reports -> {reports}; runs -> {runs}")
    for nb, params in books.items():
        print(f"  {nb} {params}")
    if args.list:
        return 0
    effective = {nb: {**notebook_defaults(nb), **params} for nb, params in books.items()}
    if prof.get("precheck"):
        missing = missing_inputs(effective)
        if missing:
            raise CLIError(f"profile {prof['name']} needs {len(missing)} input(s) that are not here: "
                           + "; ".join(missing))
    executed = reports / "executed"
    meta = {"profile": prof["name"], "description": prof.get("description", ""), "git_sha": git_sha(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    t_all = time.perf_counter()
    peak = PeakMemory()
    with peak:
        for nb, params in books.items():
            t0 = time.perf_counter()
            before = snapshot(reports)
            print(f"\n=== {nb} ===", flush=True)
            try:
                out = run_book(nb, params, executed)
            except NotebookFailed as e:
                write_index(reports, [], {**meta, "total_wall": "failed", "peak_memory": peak.text()})
                raise CLIError(str(e)) from None
            seconds = time.perf_counter() - t0
            files = snapshot_diff(before, snapshot(reports))
            entry = notebook_entry(nb, effective[nb], files, seconds, prof["name"], os.path.relpath(out, reports))
            meta.update(total_wall=f"{(time.perf_counter() - t_all) / 60:.1f} min (so far)", peak_memory=peak.text())
            write_index(reports, [entry], meta)
            print(f"=== {nb}: done in {seconds:.0f} s, {len(files)} table/figure files -> {out}", flush=True)
    total = time.perf_counter() - t_all
    meta.update(total_wall=f"{total / 60:.1f} min", peak_memory=peak.text())
    index = write_index(reports, [], meta)
    print(f"\nreports: {index} (tables in {reports}/tables/, figures in {reports}/figures/, notebooks in {executed})")
    print(f"total wall time {total / 60:.1f} min; peak memory {peak.text()}")
    return 0
