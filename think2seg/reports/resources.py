"""What a reproduction run needs and what it used: missing inputs before, peak memory during.

>>> missing_inputs({"02_zero_shot_baselines": {"data": "earthreason:/data/EarthReason", "segmenter": "sam2:small"}})
... # doctest: +SKIP
['dataset earthreason:/data/EarthReason (/data/EarthReason not found) (notebook 02)', ...]
>>> with PeakMemory() as peak:      # samples this process and all its descendants (the kernels)  # doctest: +SKIP
...     ...
>>> peak.text()                     # doctest: +SKIP
'4.1 GiB (this process and its children together, sampled every 0.5 s; largest single process 3.2 GiB)'
"""

from __future__ import annotations

import contextlib
import resource
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil
import yaml

from think2seg.core.model_dirs import hf_weights_missing
from think2seg.data import FORMATS
from think2seg.reports.reproduce import REPO_ROOT
from think2seg.segmenters.checkpoints import CheckpointNotFoundError, resolve_sam2_checkpoint
from think2seg.segmenters.spec import HF_SAM_BACKENDS, parse_segmenter_spec


def _strings(value: Any) -> Iterator[str]:
    """Every string inside nested dicts / lists (dict values only)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, (Mapping, list, tuple)):
        for v in value.values() if isinstance(value, Mapping) else value:
            yield from _strings(v)


def _check_spec(spec: str) -> str | None:
    """Why ``spec`` (a dataset, prompter or segmenter spec) cannot be used here, or None."""

    head, sep, tail = spec.partition(":")
    if sep and head in FORMATS:
        return None if Path(tail).expanduser().exists() else f"dataset {spec} ({tail} not found)"
    if head == "hf" and tail.startswith(("/", ".", "~")):
        path = tail.split("?", 1)[0]
        return None if Path(path).expanduser().is_dir() else f"LVLM folder {path} not found"
    if head in HF_SAM_BACKENDS:
        why = hf_weights_missing(parse_segmenter_spec(spec).checkpoint)
        return f"{head} weights: {why}" if why else None
    if head == "sam2":
        s = parse_segmenter_spec(spec)
        if s.random:
            return None
        try:
            resolve_sam2_checkpoint(s.size, s.checkpoint)
        except CheckpointNotFoundError:
            return f"SAM2 checkpoint for {spec} (sam2.1 {s.size}: set THINK2SEG_SAM2_DIR)"
    return None


def missing_inputs(books: Mapping[str, Mapping[str, Any]], repo: str | Path | None = None) -> list[str]:
    """Every dataset, LVLM folder and SAM2 checkpoint the notebooks' parameters name that is not on this
    machine, one line each with the notebooks that need it (``sam2_sizes`` lists need their checkpoints; a training ``config`` needs its
    ``model`` and ``data``)."""

    root = Path(repo) if repo else REPO_ROOT
    out: dict[str, list[str]] = {}
    for nb, params in books.items():
        specs = [s for k, v in params.items() if k not in ("reports_dir", "figures_dir", "runs_dir", "runs_root")
                 for s in _strings(v)]
        specs += [f"sam2:{size}" for size in params.get("sam2_sizes") or []]
        cfg = params.get("config")
        if isinstance(cfg, str) and (root / "configs" / "train" / f"{cfg}.yaml").is_file():
            train = yaml.safe_load((root / "configs" / "train" / f"{cfg}.yaml").read_text()) or {}
            model = str(train.get("model", ""))
            specs.append(f"hf:{model}" if model.startswith(("/", ".", "~")) else "")
            if not params.get("data"):
                specs.append(str(train.get("data", "")))
        for spec in dict.fromkeys(specs):
            why = _check_spec(spec) if spec else None
            if why:
                out.setdefault(why, []).append(nb[:2])
    return [f"{why} (notebook {', '.join(nbs)})" for why, nbs in out.items()]


class PeakMemory:
    """Peak resident memory of this process plus all its descendants, sampled every ``interval`` s by a
    thread (psutil), and the largest single process (``getrusage`` high-water marks, which catch peaks
    between samples)."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.peak_total = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> int:
        me = psutil.Process()
        total = 0
        for p in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak_total = max(self.peak_total, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def peak_single(self) -> int:
        """Largest high-water mark of this process or any waited-for descendant (kernels), bytes."""
        kib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        return kib * 1024

    def text(self) -> str:
        gib = 1024**3
        return (f"{self.peak_total / gib:.1f} GiB (this process and its children together, sampled every "
                f"{self.interval:g} s; largest single process {self.peak_single / gib:.1f} GiB)")
