"""One evaluation run opened for viewing: its records, and per sample the image, the predicted mask and the
ground-truth mask, decoded on first use and cached.

>>> run = TraceRun("runs/02_zero_shot/implicit/tiny_warm_start")                # doctest: +SKIP
>>> rec = run.record("val_00003:1"); img, pred, gt = run.arrays("val_00003:1")  # doctest: +SKIP

Every array is in the record's score space (``record["score_size"]`` = (W, H), where IoU was computed):
``img`` (H, W, 3) uint8, ``pred`` and ``gt`` (H, W) bool. Prompts in the record (``instances``) are in
``record["model_size"]``; :meth:`TraceRun.instances` returns them scaled to the score space.
The ground truth comes from the record's ``mask_path``; records without one (RRSIS-D's masks are drawn from
annotations) are matched with the dataset named in ``RUN_DIR/config.json``, loaded once on first need.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from think2seg.core import io as core_io  # read through the module: tests count the reads
from think2seg.core.geometry import resize_image, resize_mask
from think2seg.core.records import decode_rle, read_records
from think2seg.core.types import Instance
from think2seg.data import load_dataset
from think2seg.reports.viewer.state import TraceState


class MissingMasks(ValueError):
    """The run's records carry no predicted masks (evaluated without ``--keep-masks``)."""


class _LRU(OrderedDict):
    """A small least-recently-used cache: ``get_or(key, make)``."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get_or(self, key: Any, make):
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = self[key] = make()
        if len(self) > self.size:
            self.popitem(last=False)
        return value


class TraceRun:
    """Records of ``run_dir`` (read once) with lazily decoded, cached arrays per sample id."""

    def __init__(self, run_dir: str | Path, label: str | None = None, *, cache: int = 128):
        self.dir = Path(run_dir)
        self.label = label or self.dir.name
        path = self.dir / "records.jsonl"
        records = read_records(path)
        if not records:
            raise FileNotFoundError(f"{path}: no records (run `think2seg eval --keep-masks --out {self.dir}` first)")
        missing = sum("pred_rle" not in r for r in records)
        if missing:
            raise MissingMasks(
                f"{self.dir}: {missing} of {len(records)} records hold no predicted mask; re-run "
                "`think2seg eval --keep-masks` into a new --out (resuming an existing run does not add masks)"
            )
        cfg = self.dir / "config.json"
        self.config: dict[str, Any] = json.loads(cfg.read_text()) if cfg.is_file() else {}
        self.records = {r["id"]: r for r in records}
        self.ids = list(self.records)
        self._cache = _LRU(cache)
        self._samples: dict[str, Any] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"TraceRun({str(self.dir)!r}, label={self.label!r}, n={len(self)})"

    def record(self, sid: str) -> dict[str, Any]:
        return self.records[sid]

    def instances(self, sid: str) -> list[Instance]:
        """The answer's prompts, scaled from the model space to the score space (pixels of :meth:`arrays`)."""
        r = self.records[sid]
        w, h = r["score_size"]
        mw, mh = r.get("model_size", (w, h))
        return [Instance.from_json(o).scaled(w / mw, h / mh, (w, h)) for o in r.get("instances", [])]

    def arrays(self, sid: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(image (H, W, 3) uint8, predicted mask (H, W) bool, ground truth (H, W) bool), cached."""
        return self._cache.get_or(sid, lambda: self._decode(sid))

    def _decode(self, sid: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r = self.records[sid]
        w, h = r["score_size"]
        image = resize_image(core_io.read_image(r["image_path"]), (w, h))
        pred = decode_rle(r["pred_rle"])
        return image, pred, resize_mask(self._ground_truth(r), (w, h))

    def _ground_truth(self, r: dict[str, Any]) -> np.ndarray:
        if r.get("mask_path") and Path(r["mask_path"]).is_file():
            return core_io.read_mask(r["mask_path"])
        if self._samples is None:
            self._samples = {s.id: s for s in self._dataset()}
        if r["id"] not in self._samples:
            raise FileNotFoundError(f"{self.dir}: sample {r['id']} has no mask file and is not in the run's dataset")
        return self._samples[r["id"]].load_mask()

    def _dataset(self):
        o = self.config.get("options", {})
        if not o.get("data"):
            raise FileNotFoundError(f"{self.dir}/config.json: names no dataset to take the ground truth from")
        return load_dataset(o["data"], o.get("split", "test"), questions=o.get("questions", "random"),
                            seed=o.get("seed", 0), question_kind=o.get("question_kind"), on_error="skip",
                            verify=False)


def open_runs(run_dirs: Sequence[str | Path], labels: Sequence[str] | None = None, **state_kw) -> TraceState:
    """A :class:`TraceState` over the runs in ``run_dirs`` (labels default to the directory names)."""
    labels = list(labels) if labels else [None] * len(run_dirs)
    return TraceState([TraceRun(d, lab) for d, lab in zip(run_dirs, labels, strict=True)], **state_kw)
