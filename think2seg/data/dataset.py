"""The loaded-dataset container shared by every format, the question policy and the resize policy.

>>> ds = load_dataset("earthreason:data/EarthReason", "val", questions="random", seed=0)  # doctest: +SKIP
>>> len(ds), ds[0].id, ds.summary()["empty"]                                              # doctest: +SKIP
>>> image, mask = load_pair(ds[0], size=840)   # squashed to 840x840 (mask: nearest), as released  # doctest: +SKIP

Loaders turn files into :class:`Entry` objects (one image, or one RRSIS-D referent, with its list of
questions) and :func:`build` turns entries into :class:`~think2seg.core.types.Sample` objects under the
question policy:

- ``first``: ``questions[0]`` (SegEarth-R1's choice);
- ``random``: one question per entry drawn from ``default_rng([seed, crc32(entry key)])``, so the draw
  does not depend on file order or on which other entries were loaded;
- ``all``: one sample per question.

``question_kind`` (SynthEarth only: ``implicit`` / ``explicit``) restricts the candidates first.
Problems go through :class:`Issues`: ``on_error="raise"`` raises the :class:`DataError`,
``on_error="skip"`` records ``(path, reason)`` in ``Dataset.skipped`` and counts it in ``summary()``.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np
from tqdm.auto import tqdm

from think2seg.core.geometry import resize_image, resize_mask
from think2seg.core.io import DataError, data_error
from think2seg.core.types import Sample

QUESTION_POLICIES = ("first", "random", "all")
ON_ERROR = ("raise", "skip")


@dataclass
class Entry:
    """One image (or referent) with its questions, as read and checked by a loader."""

    key: str  # sample ids are f"{key}:{question_id}"
    image_id: str
    image_path: Path
    questions: list[str]
    question_ids: list[str]
    mask_path: Path | None = None
    mask_loader: Callable[[], np.ndarray] | None = None
    empty: bool | None = None
    area: float | None = None  # target fraction of the image
    size: tuple[int, int] | None = None  # native (W, H)
    category: str | None = None
    kinds: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Issues:
    """Collects bad-input problems: raises them (``raise``) or records them (``skip``)."""

    def __init__(self, on_error: str = "raise"):
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error={on_error!r}: expected one of {ON_ERROR}")
        self.on_error = on_error
        self.skipped: list[tuple[str, str]] = []
        self.codes: Counter[str] = Counter()
        self.warnings: list[tuple[str, str]] = []

    def add(self, err: DataError) -> None:
        if self.on_error == "raise":
            raise err
        self.skipped.append((err.path or "?", err.problem))
        self.codes[err.code] += 1

    def fail(self, path: str | Path, problem: str, code: str = "error") -> None:
        self.add(data_error(path, problem, code))

    def warn(self, path: str | Path, problem: str) -> None:
        self.warnings.append((str(path), problem))


QUESTION_KINDS = ("implicit", "explicit")


def check_question_kind(kind: str | None) -> str | None:
    """``implicit`` | ``explicit`` | None; ``all`` (or ``any``, ``none``, "") means no filter. ValueError
    naming the option for anything else."""
    if kind is None or str(kind).strip().lower() in ("all", "any", "none", ""):
        return None
    k = str(kind).strip().lower()
    if k not in QUESTION_KINDS:
        raise ValueError(f"question_kind={kind!r}: expected one of {QUESTION_KINDS} or 'all'")
    return k


def pick_questions(
    entry: Entry, policy: str, seed: int, kind: str | None
) -> list[int]:
    """Indices into ``entry.questions`` chosen by the policy (after the optional kind filter)."""
    idx = list(range(len(entry.questions)))
    if kind is not None:
        idx = [i for i in idx if entry.kinds and i < len(entry.kinds) and entry.kinds[i] == kind]
    if not idx or policy == "all":
        return idx
    if policy == "first":
        return idx[:1]
    rng = np.random.default_rng([seed, zlib.crc32(entry.key.encode("utf-8"))])
    return [idx[int(rng.integers(len(idx)))]]


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    a = np.asarray(values, float)
    return {
        "n": len(a), "mean": float(a.mean()), "median": float(np.median(a)), "p10": float(np.percentile(a, 10)),
        "p90": float(np.percentile(a, 90)), "min": float(a.min()), "max": float(a.max()),
    }


class Dataset(Sequence[Sample]):
    """A sequence of :class:`Sample` plus what was skipped and a summary.

    ``entries`` keeps the per-image (per-referent) records: native size, emptiness, mask area fraction,
    category (SynthEarth), used by :mod:`think2seg.data.stats`.
    """

    def __init__(self, samples: list[Sample], *, format: str, split: str, root: Path, entries: list[Entry],
                 issues: Issues, options: dict[str, Any]):
        self.samples = samples
        self.format, self.split, self.root = format, split, Path(root)
        self.entries = entries
        self.issues = issues
        self.options = options

    @property
    def skipped(self) -> list[tuple[str, str]]:
        return self.issues.skipped

    def __len__(self) -> int:
        return len(self.samples)

    @overload
    def __getitem__(self, i: int) -> Sample: ...
    @overload
    def __getitem__(self, i: slice) -> list[Sample]: ...
    def __getitem__(self, i):
        return self.samples[i]

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __repr__(self) -> str:
        return (f"Dataset({self.format}:{self.root}, split={self.split!r}, samples={len(self)}, "
                f"skipped={len(self.skipped)})")

    def summary(self) -> dict[str, Any]:
        """Counts for this split: ``images``, ``questions`` (all questions of the loaded entries),
        ``samples``, ``empty`` (empty-target images), ``empty_samples``, ``mask_area`` (target fraction
        of the image over non-empty entries), ``skipped`` / ``skip_reasons``, ``answer_mismatch``..."""
        entries = self.entries
        empty_images = {e.image_id for e in entries if e.empty}
        cats = Counter(e.category for e in entries if e.category)
        kinds = Counter(s.extra.get("kind") for s in self.samples if s.extra.get("kind"))
        return {
            "format": self.format,
            "split": self.split,
            "root": str(self.root),
            "images": len({e.image_id for e in entries}),
            "entries": len(entries),
            "questions": sum(len(e.questions) for e in entries),
            "samples": len(self.samples),
            "empty": len(empty_images),
            "empty_samples": sum(bool(s.gt_empty) for s in self.samples),
            "mask_area": _stats([e.area for e in entries if e.area is not None and not e.empty]),
            "categories": dict(sorted(cats.items())),
            "kinds": dict(sorted(kinds.items())),
            "skipped": len(self.issues.skipped),
            "skip_reasons": dict(sorted(self.issues.codes.items())),
            "answer_mismatch": len(self.issues.warnings),
            "options": dict(self.options),
        }


def collect(
    items: Sequence[Any], make_entry: Callable[[Any], Entry | None], issues: Issues, *, desc: str,
    progress: bool = False, questions: str = "all", seed: int = 0, question_kind: str | None = None,
    limit: int | None = None,
) -> list[Entry]:
    """``make_entry(item)`` for each item in order (a tqdm bar when ``progress``): an item whose entry
    raises :class:`DataError` goes to ``issues`` (raised under ``on_error="raise"``), one whose entry is
    None is left out; reading stops once the entries hold ``limit`` samples under the question policy."""

    entries: list[Entry] = []
    n_samples = 0
    for item in tqdm(items, desc=desc, disable=not progress):
        try:
            e = make_entry(item)
        except DataError as err:
            issues.add(err)
            continue
        if e is None:
            continue
        entries.append(e)
        n_samples += len(pick_questions(e, questions, seed, question_kind))
        if limit is not None and n_samples >= limit:
            break
    return entries


def build(
    entries: list[Entry], *, dataset: str, split: str, root: Path, issues: Issues, questions: str = "all",
    seed: int = 0, question_kind: str | None = None, limit: int | None = None,
) -> Dataset:
    """Samples from entries under the question policy (see module docstring)."""
    if questions not in QUESTION_POLICIES:
        raise ValueError(f"questions={questions!r}: expected one of {QUESTION_POLICIES}")
    question_kind = check_question_kind(question_kind)
    if question_kind is not None and entries and not any(e.kinds for e in entries):
        raise data_error(root, f"question_kind={question_kind!r} needs question kinds, which only SynthEarth "
                         "data records; this dataset has none", "no_kinds")
    samples: list[Sample] = []
    for e in entries:
        for qi in pick_questions(e, questions, seed, question_kind):
            extra = dict(e.extra)
            extra["q_index"] = qi
            if e.category is not None:
                extra["category"] = e.category
            if e.kinds and qi < len(e.kinds):
                extra["kind"] = e.kinds[qi]
            samples.append(Sample(
                id=f"{e.key}:{e.question_ids[qi]}", image_id=e.image_id, question=e.questions[qi],
                image_path=e.image_path, dataset=dataset, split=split, mask_path=e.mask_path,
                gt_empty=e.empty, extra=extra, mask_loader=e.mask_loader,
            ))
    if limit is not None:
        samples = samples[:limit]
    options = {"questions": questions, "seed": seed, "question_kind": question_kind, "limit": limit,
               "on_error": issues.on_error}
    return Dataset(samples, format=dataset, split=split, root=root, entries=entries, issues=issues,
                   options=options)


def load_pair(sample: Sample, size: int | Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(image (H, W, 3) uint8, mask (H, W) bool)``: native when ``size`` is None, else squashed to
    ``size`` (``840`` or ``(W, H)``, aspect ratio not kept, as released) with a nearest-neighbour mask."""

    image, mask = sample.load_image(), sample.load_mask()
    if mask.shape != image.shape[:2]:
        where = sample.mask_path or sample.image_path
        raise data_error(where, f"mask size {mask.shape[1]}x{mask.shape[0]} does not match image "
                         f"{sample.image_path} {image.shape[1]}x{image.shape[0]}", "size_mismatch")
    if size is not None:
        image, mask = resize_image(image, size), resize_mask(mask, size)
    return image, mask
