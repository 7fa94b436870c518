"""Run the project's notebooks headless with papermill.

>>> from think2seg.reports.reproduce import run_notebook
>>> run_notebook("01", {"data": None, "split": "test"})          # doctest: +SKIP
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

import ast
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
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


def notebook_defaults(name_or_path: str | Path) -> dict[str, Any]:
    """The literals of a notebook's ``parameters`` cell (``{name: value}``)."""

    import jupytext

    src = find_notebook(name_or_path)
    nb = jupytext.read(src)
    cell = next((c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        return {}
    out: dict[str, Any] = {}
    for node in ast.parse(cell.source).body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out[target.id] = ast.literal_eval(node.value)
    return out


class NotebookFailed(RuntimeError):
    """A notebook cell raised: ``str()`` is one line with the error and the executed notebook's path."""

    def __init__(self, name: str, error: BaseException, executed: Path) -> None:
        ename = getattr(error, "ename", type(error).__name__)
        evalue = str(getattr(error, "evalue", error)).strip().splitlines()
        cell = getattr(error, "exec_count", None)
        where = f"cell {cell}" if cell is not None else "before any cell ran"
        super().__init__(f"{name}: {where} raised {ename}: {evalue[-1] if evalue else ''} "
                         f"(executed notebook with the traceback: {executed})")
        self.executed = executed


def run_book(name: str, parameters: dict[str, Any], executed_dir: str | Path, cwd: str | Path | None = None) -> Path:
    """:func:`run_notebook` that turns a failing cell into :class:`NotebookFailed` (the partial executed
    copy stays on disk)."""
    from papermill.exceptions import PapermillExecutionError

    out = Path(executed_dir) / f"{find_notebook(name).stem}.ipynb"
    try:
        return run_notebook(name, parameters, executed_dir=executed_dir, cwd=cwd, progress=True)
    except PapermillExecutionError as e:
        raise NotebookFailed(name, e, out) from e
