"""Reasoning-trace viewer: why did a sample fail? One or more evaluation runs (``records.jsonl`` written with
``--keep-masks``) side by side, per sample the image with the answer's prompts, the predicted and the ground-
truth masks, the ``<think>`` text, the raw answer, IoU, format flags and parse warnings.

>>> from think2seg.viewer import view, write_gallery
>>> view(["runs/before", "runs/after"], labels=["warm start", "GRPO"])       # ipywidgets, in a notebook  # doctest: +SKIP
>>> write_gallery(["runs/before", "runs/after"], "reports/gallery.html", worst=20, sort="delta")      # doctest: +SKIP

Modules: :mod:`~think2seg.viewer.runs` (lazy, cached decoding of one run), :mod:`~think2seg.viewer.state`
(filters, order, selection: no widgets), :mod:`~think2seg.viewer.render` (a panel as JPEG + HTML),
:mod:`~think2seg.viewer.widget` (ipywidgets), :mod:`~think2seg.viewer.gallery` (static HTML page).
The command line: ``think2seg gallery RUN_DIR [RUN_DIR2] --out reports/gallery.html``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from think2seg.viewer.gallery import write_gallery
from think2seg.viewer.runs import MissingMasks, TraceRun
from think2seg.viewer.state import OUTCOMES, Filter, TraceState, outcome

__all__ = ["OUTCOMES", "Filter", "MissingMasks", "TraceRun", "TraceState", "open_runs", "outcome", "view",
           "write_gallery"]


def open_runs(run_dirs: Sequence[str | Path], labels: Sequence[str] | None = None, **state_kw) -> TraceState:
    """A :class:`TraceState` over the runs in ``run_dirs`` (labels default to the directory names)."""
    labels = list(labels) if labels else [None] * len(run_dirs)
    return TraceState([TraceRun(d, lab) for d, lab in zip(run_dirs, labels, strict=True)], **state_kw)


def view(run_dirs: Sequence[str | Path], labels: Sequence[str] | None = None, **state_kw):
    """The ipywidgets viewer (:class:`~think2seg.viewer.widget.TraceViewer`) over ``run_dirs``."""
    from think2seg.viewer.widget import TraceViewer

    return TraceViewer(open_runs(run_dirs, labels, **state_kw))
