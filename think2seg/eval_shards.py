"""Data-parallel evaluation: which batches a rank does, where its records go, and how they are merged.

    accelerate launch --config_file configs/accelerate/cpu2.yaml -m think2seg.cli eval --data ... --out runs/x

Under a process group, :func:`think2seg.evaluate.evaluate` cuts the missing samples into batches of
``batch_size`` (exactly the batches one process would generate), gives rank ``r`` of ``W`` batches
``r, r + W, ...`` (:func:`plan`), and each rank appends its records to ``records.part-<r>.jsonl``. At the
end (and at the start of any later run, whatever its number of processes) rank 0 folds the part files
into ``records.jsonl`` (:func:`consolidate`): new records in dataset order, duplicates dropped, a torn
last line repaired. A run killed mid-way therefore resumes like a single-process one, and because every
batch is the batch a single process would have generated, records and metrics are the same.

The run directory must be on a file system every rank sees (one machine, or a shared disk).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PART_GLOB = "records.part-*.jsonl"


def part_path(out: str | Path, rank: int) -> Path:
    """Where rank ``rank`` appends its records while several processes evaluate."""
    return Path(out) / f"records.part-{rank}.jsonl"


def plan(todo: Sequence[Any], batch_size: int, rank: int, world: int, lockstep: bool = False) -> list[tuple[list, bool]]:
    """This rank's batches as ``(batch, real)`` pairs. ``lockstep``: every rank gets the same number of
    batches, padded with repeats of the first batch marked ``real=False`` (generate, then discard), for
    models whose forward pass is itself a collective (DeepSpeed ZeRO-3: every rank must run as many
    ``generate`` calls as the others)."""
    from think2seg.distributed import shard

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batches = [list(todo[b : b + batch_size]) for b in range(0, len(todo), batch_size)]
    mine = [(b, True) for b in shard(batches, rank, world)]
    if lockstep and batches:
        rounds = -(-len(batches) // world)
        mine += [(batches[0], False)] * (rounds - len(mine))
    return mine


def consolidate(out: str | Path, order: Sequence[str]) -> list[dict[str, Any]]:
    """Fold every ``records.part-*.jsonl`` of ``out`` into ``records.jsonl`` and return its records.

    Records already in ``records.jsonl`` keep their place; records found only in part files follow in
    the order of ``order`` (sample ids; unknown ids last). Duplicate ids keep their first record. The
    file is rewritten atomically only when something changes (parts found, a torn line, duplicates);
    the part files are deleted after. Call on one rank only.
    """
    from think2seg.evaluate import read_records

    out = Path(out)
    rec_path = out / "records.jsonl"
    records = read_records(rec_path)
    by_id = {r["id"]: r for r in records}
    text = rec_path.read_text() if rec_path.is_file() else ""
    clean = (not text or text.endswith("\n")) and len(by_id) == len(records) == text.count("\n")
    parts = sorted(out.glob(PART_GLOB))
    fresh: dict[str, dict[str, Any]] = {}
    for p in parts:
        for r in read_records(p):
            if r["id"] not in by_id:
                fresh.setdefault(r["id"], r)
    if clean and not parts:
        return records
    rank_of = {sid: k for k, sid in enumerate(order)}
    merged = list(by_id.values()) + sorted(fresh.values(), key=lambda r: rank_of.get(r["id"], len(rank_of)))
    tmp = rec_path.with_suffix(".tmp")
    with tmp.open("w") as f:
        for r in merged:
            f.write(json.dumps(r) + "\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(rec_path)
    for p in parts:
        p.unlink()
    return merged
