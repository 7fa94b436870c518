"""Dataset summaries and exploration figures (``think2seg data-stats`` and notebook 01 use these).

>>> stats = split_summary("earthreason:data/EarthReason")         # doctest: +SKIP
>>> print(format_table(stats))                                    # one row per split  # doctest: +SKIP
>>> ds = load_dataset(spec, "test"); fig = plot_mask_area(ds); save_figure(fig, "01_mask_area")  # doctest: +SKIP

``split_summary`` returns ``{split: Dataset.summary()}``: ``images``, ``questions``, ``samples``,
``empty`` (empty-target images), ``mask_area`` statistics (target fraction of the image), ``skipped``...
Plots return matplotlib figures; :func:`save_figure` writes ``<figures_dir>/<name>.png``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from think2seg.core.drawing import show
from think2seg.core.io import data_error
from think2seg.data import FORMATS, SPLITS, load_dataset, load_pair, parse_spec
from think2seg.data.dataset import Dataset
from think2seg.data.referring import rrsisd_splits
from think2seg.data.synth import ensure_default

SYNTH_ALIASES = ("synth", "synthearth", "default")


def resolve(dataset: str | None, **synth_kwargs: Any) -> str:
    """``FORMAT:DIR`` for ``dataset``; None / ``"synthearth"`` = the default SynthEarth (generated once)."""
    if dataset is None or str(dataset).lower() in SYNTH_ALIASES:
        return f"earthreason:{ensure_default(**synth_kwargs)}"
    fmt, root = parse_spec(dataset)
    return f"{fmt}:{root}"


def available_splits(spec: str) -> list[str]:
    """Splits present on disk (folders for EarthReason, phrase files for RefSegRS/RISBench, refs for RRSIS-D)."""
    fmt, root = parse_spec(spec)
    if not root.is_dir():
        raise data_error(root, "folder not found", "missing")
    if fmt == "earthreason":
        return [s for s in SPLITS if (root / s).is_dir()]
    if fmt in ("refsegrs", "risbench"):
        return [s for s in SPLITS if (root / f"output_phrase_{s}.txt").is_file()]

    present = set(rrsisd_splits(root))
    return [s for s in SPLITS if s in present] + sorted(str(s) for s in present - set(SPLITS) - {None})


def split_summary(spec: str, splits: list[str] | None = None, *, on_error: str = "raise",
                  questions: str = "all", progress: bool = False) -> dict[str, dict[str, Any]]:
    """``{split: summary}`` for the given splits (default: every split present)."""
    if splits is None:
        splits = available_splits(spec)
        if not splits:
            fmt, root = parse_spec(spec)
            raise data_error(root, f"no {fmt} split found (expected one of {', '.join(SPLITS)})", "missing")
    return {s: load_dataset(spec, s, questions=questions, on_error=on_error, progress=progress).summary()
            for s in splits}


def format_table(stats: dict[str, dict[str, Any]]) -> str:
    """Plain-text table: per split images, questions, empty-target images (share), mask-area statistics."""
    head = f"{'split':<8}{'images':>8}{'questions':>11}{'empty':>7}{'empty %':>9}" \
           f"{'area mean':>11}{'median':>8}{'p10':>7}{'p90':>7}{'skipped':>9}"
    rows = [head, "-" * len(head)]
    for split, s in stats.items():
        a = s["mask_area"]
        share = 100 * s["empty"] / s["images"] if s["images"] else 0.0
        area = (f"{a['mean']:>11.4f}{a['median']:>8.4f}{a['p10']:>7.3f}{a['p90']:>7.3f}" if a.get("n")
                else f"{'-':>11}{'-':>8}{'-':>7}{'-':>7}")
        rows.append(f"{split:<8}{s['images']:>8}{s['questions']:>11}{s['empty']:>7}{share:>8.1f}%{area}"
                    f"{s['skipped']:>9}")
    for split, s in stats.items():
        if s["skip_reasons"]:
            rows.append(f"{split}: skipped {s['skipped']} ({', '.join(f'{k}: {v}' for k, v in s['skip_reasons'].items())})")
        if s["answer_mismatch"]:
            rows.append(f"{split}: {s['answer_mismatch']} QA files whose answer disagrees with the mask")
    rows.append("mask area = target fraction of the image over non-empty images")
    return "\n".join(rows)


def summary_frame(stats: dict[str, dict[str, Any]]):
    """A pandas DataFrame, one row per split."""

    rows = []
    for split, s in stats.items():
        a = s["mask_area"]
        rows.append({"split": split, "images": s["images"], "questions": s["questions"], "samples": s["samples"],
                     "empty": s["empty"], "empty %": round(100 * s["empty"] / max(s["images"], 1), 2),
                     "area mean": a.get("mean"), "area median": a.get("median"), "skipped": s["skipped"]})
    return pd.DataFrame(rows).set_index("split")


# ----------------------------------------------------------------------------------------------- plots
def _fig(w: float = 6, h: float = 3.5):
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(w, h))


def save_figure(fig, name: str, figures_dir: str | Path = "reports/figures", dpi: int = 110) -> Path:
    """Write ``<figures_dir>/<name>.png`` (folders created) and return its path."""
    out = Path(figures_dir) / f"{name}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, bbox_inches="tight")
    return out


def plot_split_counts(stats: dict[str, dict[str, Any]]):
    """Images and questions per split (bars) with the empty-target share written on top."""
    fig, ax = _fig()
    splits = list(stats)
    x = np.arange(len(splits))
    ims = [stats[s]["images"] for s in splits]
    qs = [stats[s]["questions"] for s in splits]
    ax.bar(x - 0.2, ims, 0.4, label="images")
    ax.bar(x + 0.2, qs, 0.4, label="questions")
    for i, s in enumerate(splits):
        share = 100 * stats[s]["empty"] / max(stats[s]["images"], 1)
        ax.text(i, max(ims[i], qs[i]), f"empty {stats[s]['empty']} ({share:.1f}%)", ha="center", va="bottom",
                fontsize=8)
    ax.set_xticks(x, splits)
    ax.set_ylabel("count")
    ax.set_title("Images and questions per split")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_categories(ds: Dataset):
    """Target images per category (SynthEarth and RRSIS-D record a category; EarthReason has none)."""
    cats = Counter(e.category for e in ds.entries if e.category and not e.empty)
    empty = Counter(e.category or "?" for e in ds.entries if e.empty)
    fig, ax = _fig(7, 3.8)
    if not cats:
        ax.text(0.5, 0.5, f"{ds.format}: no category field in this dataset", ha="center", va="center")
        ax.axis("off")
        return fig
    names = sorted(cats, key=lambda c: -cats[c])
    ax.barh(names, [cats[c] for c in names], label="target present")
    if empty:
        ax.barh(names, [empty.get(c, 0) for c in names], left=[cats[c] for c in names],
                label="asked but absent (empty target)")
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
    ax.invert_yaxis()
    ax.set_xlabel("images")
    ax.set_title(f"Target category distribution ({ds.split})")
    fig.tight_layout()
    return fig


def plot_mask_area(ds: Dataset, bins: int = 30):
    """Histogram of the target's share of the image (non-empty targets), log-spaced bins."""
    areas = np.array([e.area for e in ds.entries if e.area and not e.empty])
    fig, ax = _fig()
    if len(areas):
        edges = np.logspace(np.log10(max(areas.min(), 1e-5)), np.log10(max(areas.max(), 1e-4)), bins)
        ax.hist(areas, bins=edges)
        ax.set_xscale("log")
        ax.axvline(float(np.median(areas)), color="k", linestyle="--", linewidth=1, label="median")
        ax.legend()
    ax.set_xlabel("mask area / image area")
    ax.set_ylabel("images")
    ax.set_title(f"Mask area distribution ({ds.split}, {len(areas)} non-empty)")
    fig.tight_layout()
    return fig


def plot_question_lengths(ds: Dataset):
    """Histogram of question length in words, split by kind when the data records kinds."""
    fig, ax = _fig()
    by_kind: dict[str, list[int]] = {}
    for s in ds:
        by_kind.setdefault(s.extra.get("kind", "all"), []).append(len(s.question.split()))
    top = max((max(v) for v in by_kind.values()), default=1)
    edges = np.arange(0.5, top + 1.5, 1)
    ax.hist(list(by_kind.values()), bins=edges, label=list(by_kind), stacked=True)
    if len(by_kind) > 1:
        ax.legend()
    ax.set_xlabel("words per question")
    ax.set_ylabel("samples")
    ax.set_title(f"Question length ({ds.split})")
    fig.tight_layout()
    return fig


def plot_examples(ds: Dataset, n: int = 8, *, seed: int = 0, size: int | None = None, cols: int = 4):
    """A grid of ``n`` samples (distinct images, empty targets included if any): image, mask, question."""
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    seen, picks = set(), []
    empties = [i for i, s in enumerate(ds) if s.gt_empty]
    order = ([int(rng.choice(empties))] if empties else []) + [int(i) for i in rng.permutation(len(ds))]
    for i in order:
        if ds[i].image_id not in seen:
            seen.add(ds[i].image_id)
            picks.append(i)
        if len(picks) >= n:
            break
    rows = max(1, int(np.ceil(len(picks) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, picks, strict=False):
        s = ds[i]
        image, mask = load_pair(s, size)
        tag = " [empty]" if s.gt_empty else ""
        kind = f" ({s.extra['kind']})" if "kind" in s.extra else ""
        show(ax, image, mask, title=f"{s.question}{kind}{tag}")
    fig.suptitle(f"{ds.format} {ds.split}: red = target mask", fontsize=10)
    fig.tight_layout()
    return fig


__all__ = ["FORMATS", "available_splits", "format_table", "plot_categories", "plot_examples", "plot_mask_area",
           "plot_question_lengths", "plot_split_counts", "resolve", "save_figure", "split_summary",
           "summary_frame"]
