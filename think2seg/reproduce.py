"""Run the project's notebooks headless with papermill.

>>> from think2seg.reproduce import run_notebook
>>> run_notebook("01", {"dataset": None, "split": "test"})          # doctest: +SKIP
PosixPath('reports/executed/01_dataset_exploration.ipynb')

Notebooks live in ``notebooks/`` as jupytext percent scripts (``NN_name.py``, the source of truth) paired
with output-free ``.ipynb`` files. ``name_or_path`` is a path, a notebook name (``01_dataset_exploration``)
or a unique prefix (``01``). The ``.py`` script is executed when it is newer than the ``.ipynb`` (or the
``.ipynb`` is missing), so an edited script never runs stale. ``parameters`` replace the literals of the
cell tagged ``parameters``. The executed copy, with outputs, goes to ``<cwd>/<executed_dir>/<name>.ipynb``;
the kernel runs in ``cwd`` (the repository root by default), so relative paths in notebooks such as
``reports/figures`` resolve there. A failing cell raises papermill's ``PapermillExecutionError`` after the
executed copy (with the traceback in it) is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"


def list_notebooks(notebooks_dir: str | Path = NOTEBOOKS_DIR) -> list[str]:
    """Names (stems) of the notebooks, sorted: ``["01_dataset_exploration", ...]``."""
    d = Path(notebooks_dir)
    return sorted({p.stem for p in d.glob("[0-9]*.ipynb")} | {p.stem for p in d.glob("[0-9]*.py")})


def find_notebook(name_or_path: str | Path, notebooks_dir: str | Path = NOTEBOOKS_DIR) -> Path:
    """The file to execute for ``name_or_path`` (see module docstring); FileNotFoundError names candidates."""
    p = Path(name_or_path)
    if p.suffix in (".ipynb", ".py") and p.is_file():
        return p
    d = Path(notebooks_dir)
    stem = p.stem if p.suffix in (".ipynb", ".py") else p.name
    names = list_notebooks(d)
    matches = [n for n in names if n == stem] or [n for n in names if n.startswith(stem)]
    if len(matches) != 1:
        what = "no notebook" if not matches else f"ambiguous ({', '.join(matches)})"
        raise FileNotFoundError(f"{name_or_path}: {what} in {d}; available: {', '.join(names) or 'none'}")
    ipynb, script = d / f"{matches[0]}.ipynb", d / f"{matches[0]}.py"
    if script.is_file() and (not ipynb.is_file() or script.stat().st_mtime > ipynb.stat().st_mtime):
        return script
    return ipynb


def run_notebook(
    name_or_path: str | Path,
    parameters: dict[str, Any] | None = None,
    executed_dir: str | Path = "reports/executed",
    cwd: str | Path | None = None,
    *,
    kernel: str = "python3",
    output_path: str | Path | None = None,
    progress: bool = False,
    log_output: bool = False,
    start_timeout: int = 120,
) -> Path:
    """Execute a notebook with ``parameters``; return the path of the executed copy."""
    import jupytext
    import papermill as pm

    cwd = Path(cwd) if cwd is not None else REPO_ROOT
    src = find_notebook(name_or_path)
    nb = jupytext.read(src) if src.suffix == ".py" else None
    if output_path is None:
        out_dir = Path(executed_dir)
        out_dir = out_dir if out_dir.is_absolute() else cwd / out_dir
        output_path = out_dir / f"{src.stem}.ipynb"
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(
        nb if nb is not None else str(src),
        str(output_path),
        parameters=dict(parameters or {}),
        kernel_name=kernel,
        cwd=str(cwd),
        progress_bar=progress,
        log_output=log_output,
        start_timeout=start_timeout,
    )
    return output_path
