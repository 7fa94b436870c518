"""The paper's benchmark tables as DataFrames: Table 1 (reasoning segmentation), Table 2 (empty-target
rejection), Table 3 (zero-shot transfer to referring segmentation).

>>> rows = {"tiny warm start": "tiny", "GRPO think2seg": "tiny-grpo"}
>>> t1 = table1(rows, "runs/04", data="synthearth", splits=("val", "test"), limit=24)  # doctest: +SKIP
>>> t2 = table2(rows, "runs/04", data="synthearth")                                   # doctest: +SKIP
>>> t3 = table3(rows, "runs/04", {"RRSIS-D": "synthearth:rrsisd"}, limit=12)         # doctest: +SKIP

Every table is computed under each protocol of ``protocols`` (default ``authors`` and ``segearth-r1``,
since published numbers disagree on the rules) and has a ``protocol`` index level. The prompter runs
once, under the first protocol; the others score the same completions (``replay:`` prompter), so two
protocols differ only in their rules, never in sampling. Evaluations are resumable run directories
``<runs_dir>/<table>/<dataset>/<split>/<protocol>/<label>``. ``published=True`` adds the paper's figures
(:mod:`think2seg.reports.published`) as rows whose ``source`` is ``paper``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from think2seg.core.records import read_metrics
from think2seg.data import synth
from think2seg.evaluation.engine import evaluate_many
from think2seg.evaluation.spread import spread_columns
from think2seg.reports.published import TABLE1, TABLE2, TABLE3
from think2seg.reports.table_spec import PROTOCOLS, TableSpec
from think2seg.segmenters.spec import DEFAULT_SEGMENTER

SYNTH_PREFIX = "synthearth:"  # synthearth:rrsisd -> a small SynthEarth set in that format, made on first use


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", str(text)).strip("_") or "x"


def resolve_data(spec: str | None, n_test: int = 24) -> str:
    """``FORMAT:DIR`` for a table's dataset: None / ``synthearth`` = the default SynthEarth;
    ``synthearth:FORMAT`` = a SynthEarth test set of ``n_test`` images in that format (made once)."""

    if spec is None or spec == "synthearth":
        return f"earthreason:{synth.ensure_default()}"
    if spec.startswith(SYNTH_PREFIX):
        fmt = spec[len(SYNTH_PREFIX):]
        return f"{fmt}:{synth.ensure_default(format=fmt, n_train=0, n_val=0, n_test=n_test, progress=False)}"
    return spec


def evaluate_protocols(
    prompters: Mapping[str, str],
    runs_dir: str | Path,
    *,
    data: str,
    split: str,
    protocols: Sequence[str] = PROTOCOLS,
    segmenter: str = DEFAULT_SEGMENTER,
    segment_native: bool | None = None,
    **common: Any,
) -> dict[tuple[str, str], Path]:
    """``{(protocol, label): run_dir}``: each prompter generates under ``protocols[0]``; the other protocols
    replay its completions. ``segment_native`` (default: on for GrabCut) segments at the native size when a
    protocol scores at a larger one (see :mod:`think2seg.evaluation.engine`)."""

    native = segmenter == "grabcut" if segment_native is None else segment_native
    out: dict[tuple[str, str], Path] = {}
    base = Path(runs_dir) / split
    first, *rest = protocols
    runs = evaluate_many(dict(prompters), base / slug(first), data=data, split=split, segmenter=segmenter,
                         protocol=first, segment_native=native, **common)
    out.update({(first, label): d for label, d in runs.items()})
    for protocol in rest:
        replays = {label: f"replay:{runs[label]}" for label in prompters}
        again = evaluate_many(replays, base / slug(protocol), data=data, split=split, segmenter=segmenter,
                              protocol=protocol, segment_native=native, **common)
        out.update({(protocol, label): d for label, d in again.items()})
    return out


def sampled_metrics(
    sampled: Mapping[str, str], seeds: Sequence[int], run: Callable[[int, str], Mapping[Any, Path]], temperature: float
) -> dict[Any, list[dict[str, Any]]]:
    """``{row key: [metrics per seed]}`` for the sampled rows of a table: ``run(seed, subdir)`` evaluates them
    (``subdir`` = ``sampled-T<t>/seed-<s>``) and returns ``{key: run_dir}``; a key ``(protocol, label)`` or
    ``label`` becomes ``(protocol, "<label> (T=<t>)")`` / ``"<label> (T=<t>)"``."""
    if not sampled:
        return {}
    if temperature <= 0:
        raise ValueError(f"sampled rows need a temperature > 0 (got {temperature}); greedy rows go in prompters")
    out: dict[Any, list[dict[str, Any]]] = {}
    for seed in seeds:
        for key, d in run(int(seed), f"sampled-T{temperature:g}/seed-{seed}").items():
            tag = f" (T={temperature:g})"
            key = (key[0], key[1] + tag) if isinstance(key, tuple) else key + tag
            out.setdefault(key, []).append(read_metrics(d))
    return out


def _metrics(run_dir: Path) -> dict[str, Any]:
    return read_metrics(run_dir)


def table1(
    prompters: Mapping[str, str],
    runs_dir: str | Path,
    spec: TableSpec | None = None,
    *,
    sampled: Mapping[str, str] | None = None,
    sample_temperature: float = 1.0,
    sample_seeds: Sequence[int] = (0, 1, 2),
    **options: Any,
):
    """Reasoning segmentation: gIoU, cIoU, P@0.5 and n per split; index (protocol, row).

    Rows of ``prompters`` decode greedily (one number each). Rows of ``sampled`` are evaluated once per seed
    of ``sample_seeds`` at ``sample_temperature`` and labelled ``"<label> (T=<t>)"``; their cells are the
    mean over seeds, with ``"<split> <metric> ±"`` (std) and ``"<split> seeds"`` (n) beside them."""
    s = TableSpec.of(spec, **options)
    data, splits, protocols, segmenter = s.data, s.splits, s.protocols, s.segmenter
    question_kind, questions, limit, published = s.question_kind, s.questions, s.limit, s.published

    data = resolve_data(data)
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for split in splits:
        runs = evaluate_protocols(prompters, Path(runs_dir) / "table1", data=data, split=split, protocols=protocols,
                                  segmenter=segmenter, question_kind=question_kind, questions=questions,
                                  limit=limit, keep_masks=False)
        for key, d in runs.items():
            m = _metrics(d)
            row = rows.setdefault(key, {"source": "measured"})
            row.update({f"{split} gIoU": 100 * m["gIoU"], f"{split} cIoU": 100 * m["cIoU"],
                        f"{split} P@0.5": 100 * m.get("P@0.5", float("nan")), f"{split} n": m["n"]})
        for key, per_seed in sampled_metrics(
            sampled or {}, sample_seeds, lambda seed, out, split=split: evaluate_protocols(
                sampled, Path(runs_dir) / "table1" / out, data=data, split=split, protocols=protocols,
                segmenter=segmenter, question_kind=question_kind, questions=questions, limit=limit,
                keep_masks=False, temperature=sample_temperature, seed=seed),
            sample_temperature).items():
            rows.setdefault(key, {"source": "measured"}).update(spread_columns(per_seed, split))
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index = pd.MultiIndex.from_tuples(df.index, names=["protocol", "row"])
    if published:
        df = _with_published(df, TABLE1, splits, ("gIoU", "cIoU"))
    return df


def _with_published(df, table: Mapping[str, Mapping[str, float]], splits: Sequence[str], metrics: Sequence[str]):
    """Append the paper's rows (``source`` = ``paper``, protocol = as published)."""

    rows = {}
    for name, values in table.items():
        row = {"source": "paper"}
        for split in splits:
            for m in metrics:
                if f"{split} {m}" in values:
                    row[f"{split} {m}"] = values[f"{split} {m}"]
        rows[("published", name)] = row
    pub = pd.DataFrame.from_dict(rows, orient="index")
    pub.index = pd.MultiIndex.from_tuples(pub.index, names=df.index.names)
    return pd.concat([df, pub])


def table2(
    prompters: Mapping[str, str],
    runs_dir: str | Path,
    spec: TableSpec | None = None,
    **options: Any,
):
    """Empty-target rejection on every empty-target sample of each split (``limit`` caps them): TRUE =
    correctly rejected (authors: the answer is ``[]``; segearth-r1: the predicted mask is empty), FALSE =
    the rest, with percentages; index (protocol, row)."""
    s = TableSpec.of(spec, **options)
    data, splits, protocols, segmenter = s.data, s.splits, s.protocols, s.segmenter
    question_kind, questions, limit, published = s.question_kind, s.questions, s.limit, s.published

    data = resolve_data(data)
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for split in splits:
        runs = evaluate_protocols(prompters, Path(runs_dir) / "table2", data=data, split=split, protocols=protocols,
                                  segmenter=segmenter, question_kind=question_kind, questions=questions,
                                  limit=limit, targets="empty")
        for key, d in runs.items():
            m = _metrics(d)
            n, true = m["empty_total"], m["empty_true"]
            row = rows.setdefault(key, {"source": "measured"})
            row.update({f"{split} TRUE": true, f"{split} FALSE": n - true,
                        f"{split} TRUE %": 100 * true / n if n else float("nan"), f"{split} cases": n})
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index = pd.MultiIndex.from_tuples(df.index, names=["protocol", "row"])
    if published:
        df = _with_published(df, TABLE2, splits, ("TRUE", "FALSE", "TRUE %", "cases"))
    return df


def table3(
    prompters: Mapping[str, str],
    runs_dir: str | Path,
    datasets: Mapping[str, str],
    spec: TableSpec | None = None,
    **options: Any,
):
    """Zero-shot transfer: gIoU, cIoU, P@0.5 on each referring dataset (``{name: spec}``; ``synthearth:FORMAT``
    for a SynthEarth stand-in); index (protocol, row), columns ``<dataset> <metric>``."""
    s = TableSpec.of(spec, **options)  # its data are ``datasets``; referring sets have no question kinds
    protocols, segmenter, questions, limit, published = s.protocols, s.segmenter, s.questions, s.limit, s.published
    split = s.splits[-1]  # Table 3 is computed on one split (default: test)

    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for name, spec in datasets.items():
        data = resolve_data(spec, n_test=max(limit or 24, 8))
        runs = evaluate_protocols(prompters, Path(runs_dir) / "table3" / slug(name), data=data, split=split,
                                  protocols=protocols, segmenter=segmenter, questions=questions, limit=limit)
        for key, d in runs.items():
            m = _metrics(d)
            row = rows.setdefault(key, {"source": "measured"})
            row.update({f"{name} gIoU": 100 * m["gIoU"], f"{name} cIoU": 100 * m["cIoU"],
                        f"{name} P@0.5": 100 * m.get("P@0.5", float("nan")), f"{name} n": m["n"]})
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index = pd.MultiIndex.from_tuples(df.index, names=["protocol", "row"])
    if published:
        df = _with_published(df, TABLE3, list(datasets), ("gIoU", "cIoU", "P@0.5"))
    return df


def plot_table1(table, out: str | Path | None = None):
    """Grouped bars: measured gIoU of each Table 1 row, one panel per split, one bar per protocol."""
    import matplotlib.pyplot as plt

    measured = table[table["source"] == "measured"]
    splits = [c.split(" ")[0] for c in measured.columns if c.endswith(" gIoU")]
    fig, axes = plt.subplots(1, len(splits), figsize=(6 * len(splits), 4), squeeze=False)
    for ax, split in zip(axes[0], splits, strict=True):
        wide = measured[f"{split} gIoU"].unstack("protocol")
        wide.plot.barh(ax=ax)
        ax.set_title(f"{split}: gIoU", fontsize=9)
        ax.set_xlabel("gIoU (%)")
        ax.set_ylabel("")
    fig.tight_layout()
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
    return fig
