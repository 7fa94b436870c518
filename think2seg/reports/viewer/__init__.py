"""Reasoning-trace viewer: why did a sample fail? One or more evaluation runs (``records.jsonl`` written with
``--keep-masks``) side by side, per sample the image with the answer's prompts, the predicted and the ground-
truth masks, the ``<think>`` text, the raw answer, IoU, format flags and parse warnings.

>>> from think2seg.reports.viewer import view, write_gallery
>>> view(["runs/before", "runs/after"], labels=["warm start", "GRPO"])       # ipywidgets, in a notebook  # doctest: +SKIP
>>> write_gallery(["runs/before", "runs/after"], "reports/gallery.html", worst=20, sort="delta")      # doctest: +SKIP

Modules: :mod:`~think2seg.reports.viewer.runs` (lazy, cached decoding of one run), :mod:`~think2seg.reports.viewer.state`
(filters, order, selection: no widgets), :mod:`~think2seg.reports.viewer.render` (a panel as JPEG + HTML),
:mod:`~think2seg.reports.viewer.widget` (ipywidgets), :mod:`~think2seg.reports.viewer.gallery` (static HTML page).
The command line: ``think2seg gallery RUN_DIR [RUN_DIR2] --out reports/gallery.html``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from think2seg.reports.viewer.gallery import write_gallery
from think2seg.reports.viewer.runs import MissingMasks, TraceRun, open_runs
from think2seg.reports.viewer.state import OUTCOMES, Filter, TraceState, outcome

__all__ = ["OUTCOMES", "Filter", "MissingMasks", "TraceRun", "TraceState", "open_runs", "outcome", "view",
           "write_gallery"]


def view(run_dirs: Sequence[str | Path], labels: Sequence[str] | None = None, **state_kw):
    """The ipywidgets viewer (:class:`~think2seg.reports.viewer.widget.TraceViewer`) over ``run_dirs``."""
    from think2seg.reports.viewer.widget import TraceViewer

    return TraceViewer(open_runs(run_dirs, labels, **state_kw))
