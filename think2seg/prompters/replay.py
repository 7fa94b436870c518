"""Replay the completions of an earlier evaluation run: score the same answers under another protocol.

>>> p = build_prompter("replay:runs/04/val/authors/tiny")      # doctest: +SKIP
>>> evaluate(EvalConfig(data=..., prompter="replay:runs/04/val/authors/tiny", protocol="segearth-r1", ...))  # doctest: +SKIP

Greedy decoding makes a second generation pass redundant: the protocols differ only in how the same
answers are segmented and scored. ``image_size`` is the run's model space (``config.json``), so the
replayed coordinates are read in the space they were written in. A sample the run did not answer is
an error naming the run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from think2seg.core.records import read_records
from think2seg.core.types import Sample


class ReplayPrompter:
    """The recorded completion of each sample id of ``run_dir`` (``records.jsonl`` + ``config.json``)."""

    def __init__(self, run_dir: str | Path, **_ignored: object) -> None:
        self.run_dir = Path(run_dir)
        cfg = self.run_dir / "config.json"
        if not cfg.is_file():
            raise FileNotFoundError(f"replay:{run_dir}: no config.json (not an evaluation run directory)")
        size = json.loads(cfg.read_text())["result_options"]["image_size"]
        self.image_size = (int(size[0]), int(size[1]))
        self.completions = {r["id"]: r["completion"] for r in read_records(self.run_dir / "records.jsonl")}
        self.name = f"replay:{self.run_dir}"

    def generate(
        self, samples: Sequence[Sample], n: int = 1, temperature: float = 0.0, seed: int = 0
    ) -> list[list[str]]:
        missing = [s.id for s in samples if s.id not in self.completions]
        if missing:
            raise KeyError(f"replay:{self.run_dir} has no completion for {missing[:3]} ({len(missing)} samples)")
        return [[self.completions[s.id]] * n for s in samples]
