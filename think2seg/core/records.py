"""The run directory: the one owner of its files and of the rule that decides whether a run may resume.

An evaluation run directory holds::

    config.json              what produced it (``result_options`` decide whether a later run may resume)
    records.jsonl            one JSON record per sample, appended as they finish (a torn last line is dropped)
    records.part-<r>.jsonl   rank r's records while several processes evaluate (folded in by consolidate)
    metrics.json             the summary of the records under the run's protocol

Masks inside records are COCO run-length encodings (:func:`encode_rle` / :func:`decode_rle`), in the
scoring space of the run: ``size`` is ``[H, W]``.

    >>> import numpy as np, tempfile
    >>> m = np.zeros((4, 5), bool); m[1:3, 2:4] = True
    >>> bool((decode_rle(encode_rle(m)) == m).all())
    True
    >>> run = Path(tempfile.mkdtemp())
    >>> append_records(run / RECORDS, [{"id": "a", "iou": 0.5}])
    >>> [r["id"] for r in read_records(run)]
    ['a']
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from think2seg.core.errors import UserError

RECORDS = "records.jsonl"
METRICS = "metrics.json"
CONFIG = "config.json"
PART_GLOB = "records.part-*.jsonl"


class RunDirError(UserError, FileNotFoundError):
    """A run directory that lacks the file a reader needs; the message names the file and the command."""


class ResumeConflict(UserError, ValueError):
    """An existing run directory was made with other result options than the run that wants to resume it."""


def _records_file(run: str | Path) -> Path:
    p = Path(run)
    return p if p.suffix == ".jsonl" else p / RECORDS


def read_records(run: str | Path, missing_ok: bool = False) -> list[dict[str, Any]]:
    """The records of run directory ``run`` (or of the ``.jsonl`` file ``run`` itself), in file order.

    A torn last line (a process killed mid-write) is dropped; a bad line elsewhere raises naming it.
    With ``missing_ok`` a missing or empty file gives ``[]`` (resuming a new run); without it, it raises
    :class:`RunDirError` naming the file."""
    path = _records_file(run)
    lines = path.read_text().splitlines() if path.is_file() else []
    out = []
    for k, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if k == len(lines) - 1:
                break  # torn final write
            raise ValueError(f"{path}: line {k + 1} is not valid JSON") from None
    if not out and not missing_ok:
        raise RunDirError(f"{path}: no records (run `think2seg eval --out {path.parent}` first)")
    return out


def append_records(path: str | Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Append ``records`` to the JSONL file ``path`` and make them durable (flush + fsync)."""
    with Path(path).open("a") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
        f.flush()
        os.fsync(f.fileno())


def part_path(run: str | Path, rank: int) -> Path:
    """Where rank ``rank`` appends its records while several processes evaluate."""
    return Path(run) / f"records.part-{rank}.jsonl"


def consolidate(run: str | Path, order: Sequence[str]) -> list[dict[str, Any]]:
    """Fold every ``records.part-*.jsonl`` of ``run`` into ``records.jsonl`` and return its records.

    Records already in ``records.jsonl`` keep their place; records found only in part files follow in
    the order of ``order`` (sample ids; unknown ids last). Duplicate ids keep their first record. The
    file is rewritten atomically only when something changes (parts found, a torn line, duplicates);
    the part files are deleted after. Call on one rank only.
    """
    run = Path(run)
    rec_path = run / RECORDS
    records = read_records(rec_path, missing_ok=True)
    by_id = {r["id"]: r for r in records}
    text = rec_path.read_text() if rec_path.is_file() else ""
    clean = (not text or text.endswith("\n")) and len(by_id) == len(records) == text.count("\n")
    parts = sorted(run.glob(PART_GLOB))
    fresh: dict[str, dict[str, Any]] = {}
    for p in parts:
        for r in read_records(p, missing_ok=True):
            if r["id"] not in by_id:
                fresh.setdefault(r["id"], r)
    if clean and not parts:
        return records
    rank_of = {sid: k for k, sid in enumerate(order)}
    merged = list(by_id.values()) + sorted(fresh.values(), key=lambda r: rank_of.get(r["id"], len(rank_of)))
    tmp = rec_path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    append_records(tmp, merged)
    tmp.replace(rec_path)
    for p in parts:
        p.unlink()
    return merged


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO RLE of a boolean ``(H, W)`` mask, JSON-ready: ``{"size": [H, W], "counts": str}``."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(rle["size"]), "counts": rle["counts"].decode()}


def decode_rle(rle: Mapping[str, Any]) -> np.ndarray:
    """The boolean ``(H, W)`` mask of an RLE written by :func:`encode_rle`."""
    from pycocotools import mask as mask_utils

    return mask_utils.decode({"size": list(rle["size"]), "counts": rle["counts"].encode()}).astype(bool)


def _read_json(run: str | Path, name: str) -> dict[str, Any]:
    path = Path(run) / name
    if not path.is_file():
        raise RunDirError(f"{path}: not found (run `think2seg eval --out {run}` first)")
    return json.loads(path.read_text())


def _write_json(run: str | Path, name: str, data: Mapping[str, Any]) -> Path:
    path = Path(run) / name
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)
    return path


def read_metrics(run: str | Path) -> dict[str, Any]:
    """``metrics.json`` of a finished run."""
    return _read_json(run, METRICS)


def write_metrics(run: str | Path, metrics: Mapping[str, Any]) -> Path:
    """Write ``metrics.json`` atomically."""
    return _write_json(run, METRICS, metrics)


def has_metrics(run: str | Path) -> bool:
    """Whether ``run`` holds a finished run's ``metrics.json``."""
    return (Path(run) / METRICS).is_file()


def read_config(run: str | Path) -> dict[str, Any]:
    """``config.json`` of a run."""
    return _read_json(run, CONFIG)


def write_config(run: str | Path, config: Mapping[str, Any]) -> Path:
    """Write ``config.json`` atomically."""
    return _write_json(run, CONFIG, config)


def check_resume(run: str | Path, wanted: Mapping[str, Any], legacy: Mapping[str, Any] | None = None) -> None:
    """The resume rule: a run directory may be continued only by a run whose ``result_options`` agree
    with those in its ``config.json`` (options it lacks take their ``legacy`` value). Raises
    :class:`ResumeConflict` naming each option that differs; a directory without ``config.json`` is new."""
    path = Path(run) / CONFIG
    if not path.is_file():
        return
    old = {**(legacy or {}), **json.loads(path.read_text()).get("result_options", {})}
    diff = [k for k in wanted if k in old and old[k] != wanted[k]]
    if diff:
        raise ResumeConflict(
            f"{run}: existing run used different {', '.join(f'{k}={old[k]!r}' for k in diff)} "
            f"(now {', '.join(f'{k}={wanted[k]!r}' for k in diff)}); use another --out or delete it"
        )
