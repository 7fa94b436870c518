"""The static gallery: the viewer's panels for chosen samples in one self-contained HTML page (images as
``data:`` URIs, styles inline, no script and no external request), for readers without a kernel.

>>> write_gallery(["runs/a", "runs/b"], "reports/gallery.html", worst=10, best=5, sort="delta")  # doctest: +SKIP
>>> before_after_gallery(runs, "reports/figures", "cpu_demo", n=4)  # notebook 03's runs  # doctest: +SKIP

Each sample is one ``<section class="panel">`` holding one ``<div class="run">`` per run.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from think2seg.reports.viewer.render import CSS, LEGEND, data_uri, panel_jpeg, panel_text, sample_header
from think2seg.reports.viewer.runs import open_runs
from think2seg.reports.viewer.state import Filter, TraceState


def gallery_html(state: TraceState, ids: Sequence[str], title: str = "think2seg reasoning traces",
                 progress: bool = False) -> str:
    """The page for ``ids`` of ``state`` (in that order)."""
    sections = []
    for sid in tqdm(ids, desc="gallery", disable=not progress):
        runs = "".join(
            f'<div class="run"><img alt="{html.escape(run.label)}: {html.escape(sid)}" '
            f'src="{data_uri(panel_jpeg(run, sid))}">{panel_text(run, sid)}</div>'
            for run in state.runs
        )
        sections.append(f'<section class="panel">{sample_header(state, sid)}<div class="runs">{runs}</div></section>')
    what = ", ".join(f"{html.escape(r.label)} ({html.escape(str(r.dir))})" for r in state.runs)
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}"
        "body {font-family: sans-serif; margin: 12px} .panel {border-top: 1px solid #ccc; padding: 8px 0}"
        ".runs {display: flex; gap: 16px; flex-wrap: wrap} .run {width: 480px} .run img {max-width: 480px}"
        "</style></head>"
        f'<body class="t2s-gallery"><h1>{html.escape(title)}</h1><p>runs: {what}. {len(ids)} of '
        f"{len(state)} samples passing the filters ({html.escape(_describe(state))}).</p>{LEGEND}"
        + "".join(sections) + "</body></html>"
    )


def _describe(state: TraceState) -> str:
    f = state.filters
    parts = [f"{k}={v}" for k, v in vars(f).items() if v is not None]
    return f"filters: {', '.join(parts) or 'none'}; sort: {state.sort}{' descending' if state.descending else ''}"


def write_gallery(run_dirs: Sequence[str | Path], out: str | Path, *, worst: int | None = None,
                  best: int | None = None, filters: Filter | None = None, sort: str | None = None,
                  labels: Sequence[str] | None = None, progress: bool = True) -> Path:
    """Write the gallery of ``run_dirs`` to ``out``; ``worst`` / ``best`` take the ends of the order (by IoU,
    or by ``delta`` = IoU difference of the last and first run), else every sample passing ``filters``.
    Raises :class:`~think2seg.reports.viewer.runs.MissingMasks` for a run evaluated without ``--keep-masks``."""

    state = open_runs(run_dirs, labels, filters=filters, sort=sort or ("iou" if worst or best else "order"))
    ids = state.pick(worst, best)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(gallery_html(state, ids, progress=progress), encoding="utf-8")
    return out


def before_after_gallery(runs: Mapping[str, str | Path], out_dir: str | Path, tag: str, n: int = 4,
                         progress: bool = False) -> list[Path]:
    """One page per trained policy of :func:`think2seg.training.runs.before_after`'s ``runs``: the same
    questions answered by the starting model (``"before (...)"``) and by the policy (``"after GRPO (...)"``),
    the ``n`` samples the policy improved most and the ``n`` it made worse (``sort="delta"``), as
    ``<out_dir>/03_gallery_<tag>_<policy>.html``. Control rows (labels with a comma) are left out."""
    before = [k for k in runs if k.startswith("before (") and "," not in k]
    after = [k for k in runs if k.startswith("after GRPO (") and "," not in k]
    if not before or not after:
        raise ValueError(f"before_after_gallery: needs a 'before (...)' and an 'after GRPO (...)' run, got {list(runs)}")
    pages = []
    for label in after:
        name = re.sub(r"[^A-Za-z0-9_.+-]+", "_", label.removeprefix("after GRPO (").rstrip(")"))
        pages.append(write_gallery([runs[before[0]], runs[label]], Path(out_dir) / f"03_gallery_{tag}_{name}.html",
                                   worst=n, best=n, sort="delta", labels=[before[0], label], progress=progress))
    return pages
