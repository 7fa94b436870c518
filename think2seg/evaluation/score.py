"""Scoring completions produced elsewhere: a predictions file + a dataset split -> records and metrics.

>>> from think2seg.evaluation.score import score_predictions
>>> score_predictions("preds.jsonl", "earthreason:/data/EarthReason", "test",
...                   protocols=["authors", "strict"], out="runs/rescored")          # doctest: +SKIP
{'authors': {'gIoU': ..., 'cIoU': ...}, 'strict': {...}}

Two file formats are read (:func:`read_predictions` tells them apart):

- JSONL, one ``{"id": SAMPLE_ID, "completion": TEXT}`` per line (the ids of ``think2seg eval`` records:
  image id + question index);
- the released Think2Seg-RS evaluation output (one JSON object whose ``results`` list holds, per sample,
  ``model_output``, ``image_path`` and ``question``, the full instruction text): rows are matched to
  samples by image file name, and by the question when an image has several (:func:`by_question`: the
  row's question equal to the sample's, else the question quoted in the reference instruction, else the
  sample questions the row's text contains, the longest when one contains another). A row still
  ambiguous after that is bad, and its message names the candidate samples.

A bad row (a torn or non-JSON line, a missing field, an id or image that is not in the split, a
duplicate) raises :class:`PredictionError` naming the file and the row, or with ``on_error="skip"`` is
left out and listed with its reason in ``config.json`` (``skipped``). With ``out``, each protocol writes
``OUT/<protocol>/records.jsonl``, ``metrics.json`` and ``config.json`` as ``think2seg eval`` does;
scoring resumes where a previous run with the same options stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from think2seg.core.errors import UserError
from think2seg.core.geometry import as_size
from think2seg.core.metrics import DEFAULT_PROTOCOL, get_protocol, summarize
from think2seg.core.provenance import provenance
from think2seg.core.records import read_records
from think2seg.core.styles import DEFAULT_STYLE
from think2seg.core.types import Sample
from think2seg.data import load_dataset
from think2seg.evaluation.engine import EvalConfig
from think2seg.evaluation.scoring import score_sample
from think2seg.segmenters import DEFAULT_SEGMENTER, resolve_segmenter, segmenter_name


class PredictionError(UserError, ValueError):
    """A predictions file row that cannot be scored (the message names the file and the row)."""


@dataclass
class Prediction:
    where: str  # "FILE:line N" or "FILE: results[k]"
    completion: str
    sample_id: str | None = None  # JSONL rows
    image: str | None = None  # released rows: image file name and instruction text
    question: str | None = None


def read_predictions(path: str | Path) -> tuple[str, list[Prediction], list[tuple[str, str]]]:
    """``(format, rows, bad)`` of a predictions file; ``format`` is ``jsonl`` or ``released``, ``bad`` the
    ``(where, reason)`` of rows that cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise PredictionError(f"{path}: predictions file not found")
    text = path.read_text(encoding="utf-8")
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict):
        if not isinstance(whole.get("results"), list):
            raise PredictionError(
                f"{path}: a JSON object without a 'results' list (not a released evaluation output)"
            )
        return "released", *_released_rows(path, whole["results"])
    rows, bad = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:line {n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            bad.append((where, "not valid JSON (a torn or partial line?)"))
            continue
        if not isinstance(obj, dict):
            bad.append((where, f"a JSON {type(obj).__name__}, expected an object with 'id' and 'completion'"))
            continue
        missing = [k for k in ("id", "completion") if k not in obj]
        if missing:
            bad.append((where, f"no {' or '.join(repr(k) for k in missing)} field"))
            continue
        if not isinstance(obj["completion"], str):
            bad.append((where, f"'completion' is a {type(obj['completion']).__name__}, not a string"))
            continue
        rows.append(Prediction(where, obj["completion"], sample_id=str(obj["id"])))
    return "jsonl", rows, bad


def _released_rows(path: Path, results: list[Any]) -> tuple[list[Prediction], list[tuple[str, str]]]:
    rows, bad = [], []
    for k, r in enumerate(results):
        where = f"{path}: results[{k}]"
        if not isinstance(r, dict):
            bad.append((where, "not an object"))
            continue
        missing = [f for f in ("model_output", "image_path") if not isinstance(r.get(f), str)]
        if missing:
            bad.append((where, f"no string {' or '.join(repr(f) for f in missing)}"))
            continue
        rows.append(
            Prediction(where, r["model_output"], image=Path(r["image_path"]).name, question=r.get("question"))
        )
    return rows, bad


def match_samples(
    rows: Sequence[Prediction], samples: Sequence[Sample], what: str
) -> tuple[list[tuple[Prediction, Sample]], list[tuple[str, str]]]:
    """Pair rows with samples (by id, or by image file name and question); ``(pairs, bad)``."""
    by_id = {s.id: s for s in samples}
    by_image: dict[str, list[Sample]] = {}
    for s in samples:
        by_image.setdefault(Path(s.image_path).name, []).append(s)
    pairs, bad, seen = [], [], {}
    for row in rows:
        if row.sample_id is not None:
            s = by_id.get(row.sample_id)
            if s is None:
                bad.append((row.where, f"id {row.sample_id!r} is not a sample of {what}"))
                continue
        else:
            cands = by_image.get(row.image or "", [])
            if len(cands) > 1 and row.question:
                cands = by_question(cands, row.question)
            if not cands:
                bad.append((row.where, f"image {row.image!r} (with this question) is not in {what}"))
                continue
            if len(cands) > 1:
                named = "; ".join(f"{c.id} ({c.question!r})" for c in cands)
                why = "has no question to tell them apart" if not row.question else "its question fits each"
                bad.append((row.where, f"image {row.image!r} matches {len(cands)} samples of {what} and {why}: {named}"))
                continue
            s = cands[0]
        if s.id in seen:
            bad.append((row.where, f"sample {s.id!r} already scored from {seen[s.id]}"))
            continue
        seen[s.id] = row.where
        pairs.append((row, s))
    return pairs, bad


_ASKED = re.compile(r'find "(.*)", identify', re.DOTALL)  # the question inside the reference instruction


def by_question(cands: list[Sample], text: str) -> list[Sample]:
    """The samples of one image asked ``text`` (a bare question, or the released rows' whole instruction).

    In order, the first rule that finds any: the sample question equal to ``text`` (spaces at the ends
    aside); the question quoted in the reference instruction (``find "..."``); the sample questions that
    ``text`` contains, keeping only the longest where one contains another ("the bridges" inside
    "Please locate the bridges."). More than one sample left means ``text`` is ambiguous."""
    t = text.strip()
    equal = [c for c in cands if c.question and c.question.strip() == t]
    if equal:
        return equal
    m = _ASKED.search(text)
    quoted = [c for c in cands if m and c.question == m.group(1)]
    if quoted:
        return quoted
    inside = [c for c in cands if c.question and c.question in text]
    return [c for c in inside if not any(c.question != o.question and c.question in o.question for o in inside)]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def score_predictions(
    predictions: str | Path,
    data: str,
    split: str,
    *,
    protocols: Sequence[str] = (DEFAULT_PROTOCOL,),
    segmenter: Any = DEFAULT_SEGMENTER,
    style: str = DEFAULT_STYLE,
    image_size: int = 840,
    out: str | Path | None = None,
    on_error: str = "raise",
    keep_masks: bool = False,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Score a predictions file on a dataset split under each protocol; ``{protocol: metrics}``."""

    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    path = Path(predictions)
    fmt, rows, bad = read_predictions(path)
    ds = load_dataset(data, split, questions="all", on_error=on_error)
    pairs, unmatched = match_samples(rows, list(ds), f"{data} {split}")
    bad += unmatched
    if bad and on_error == "raise":
        more = f" (and {len(bad) - 1} more bad rows; --on-error skip leaves them out)" if len(bad) > 1 else ""
        raise PredictionError(f"{bad[0][0]}: {bad[0][1]}{more}")
    if not pairs:
        raise PredictionError(f"{path}: no row could be scored")
    seg_name, segmenter = segmenter_name(segmenter), resolve_segmenter(segmenter)
    model_size = as_size(image_size)
    digest = _sha256(path)
    results: dict[str, dict[str, Any]] = {}
    for name in protocols:
        protocol = get_protocol(name)
        cfg = EvalConfig(
            data=data,
            out=str(out or ""),
            split=split,
            segmenter=seg_name,
            style=style,
            protocol=name,
            keep_masks=keep_masks,
            image_size=image_size,
        )
        run = Path(out) / protocol.name if out is not None else None
        done: dict[str, dict[str, Any]] = {}
        options = {
            "predictions_sha256": digest,
            "format": fmt,
            "data": data,
            "split": split,
            "segmenter": seg_name,
            "style": style,
            "image_size": list(model_size),
            "protocol": protocol.to_dict(),
        }
        if run is not None:
            run.mkdir(parents=True, exist_ok=True)
            cfg_path = run / "config.json"
            if cfg_path.is_file():
                old = json.loads(cfg_path.read_text()).get("result_options", {})
                diff = sorted(k for k in options if old.get(k) != options[k])
                if diff:
                    raise PredictionError(
                        f"{run}: existing records were scored with other {', '.join(diff)}; use another --out or delete it"
                    )
                done = {r["id"]: r for r in read_records(run / "records.jsonl")}
            cfg_path.write_text(
                json.dumps(
                    {
                        "result_options": options,
                        "predictions": str(path),
                        "parse_policy": protocol.parse_policy,
                        "segmenter_name": getattr(segmenter, "name", seg_name),
                        "n_rows": len(rows),
                        "skipped": [list(b) for b in bad],
                        **provenance(),
                    },
                    indent=2,
                )
            )
        records = []
        sink = (run / "records.jsonl").open("a") if run is not None else None
        try:
            for row, sample in tqdm(pairs, desc=f"score {protocol.name}", disable=not progress):
                rec = done.get(sample.id)
                if rec is None:
                    rec = score_sample(sample, row.completion, cfg, model_size, protocol, segmenter)
                    rec["source"] = row.where
                    if sink is not None:
                        sink.write(json.dumps(rec) + "\n")
                        sink.flush()
                records.append(rec)
            if sink is not None:
                os.fsync(sink.fileno())
        finally:
            if sink is not None:
                sink.close()
        metrics = summarize(records, protocol)
        metrics["skipped_rows"] = len(bad)
        if run is not None:
            (run / "metrics.json").write_text(json.dumps(metrics, indent=2))
        results[protocol.name] = metrics
    return results
