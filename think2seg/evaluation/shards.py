"""Data-parallel evaluation: which batches a rank does, where its records go, and how they are merged.

    accelerate launch --config_file configs/accelerate/cpu2.yaml -m think2seg.cli eval --data ... --out runs/x

Under a process group, :func:`think2seg.evaluation.engine.evaluate` cuts the missing samples into batches of
``batch_size`` (exactly the batches one process would generate), gives rank ``r`` of ``W`` batches
``r, r + W, ...`` (:func:`plan`), and each rank appends its records to ``records.part-<r>.jsonl``. At the
end (and at the start of any later run, whatever its number of processes) rank 0 folds the part files
into ``records.jsonl`` (:func:`think2seg.core.records.consolidate`): new records in dataset order, duplicates dropped, a torn
last line repaired. A run killed mid-way therefore resumes like a single-process one, and because every
batch is the batch a single process would have generated, records and metrics are the same.

The run directory must be on a file system every rank sees (one machine, or a shared disk).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from think2seg.core.distributed import shard


def plan(todo: Sequence[Any], batch_size: int, rank: int, world: int, lockstep: bool = False) -> list[tuple[list, bool]]:
    """This rank's batches as ``(batch, real)`` pairs. ``lockstep``: every rank gets the same number of
    batches, padded with repeats of the first batch marked ``real=False`` (generate, then discard), for
    models whose forward pass is itself a collective (DeepSpeed ZeRO-3: every rank must run as many
    ``generate`` calls as the others)."""

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batches = [list(todo[b : b + batch_size]) for b in range(0, len(todo), batch_size)]
    mine = [(b, True) for b in shard(batches, rank, world)]
    if lockstep and batches:
        rounds = -(-len(batches) // world)
        mine += [(batches[0], False)] * (rounds - len(mine))
    return mine
