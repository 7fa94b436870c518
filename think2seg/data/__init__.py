"""Datasets: EarthReason, the referring benchmarks (RRSIS-D, RefSegRS, RISBench) and SynthEarth, all
loaded into one :class:`~think2seg.core.types.Sample` type.

>>> from think2seg.data import load_dataset, load_pair
>>> ds = load_dataset("earthreason:data/EarthReason", "test", questions="first")     # doctest: +SKIP
>>> ds = load_dataset("data/synthearth/...", "train", question_kind="implicit")      # bare DIR = earthreason  # doctest: +SKIP
>>> image, mask = load_pair(ds[0], size=840)       # (840, 840, 3) uint8, (840, 840) bool  # doctest: +SKIP
>>> ds.summary()["empty"], ds.skipped              # empty-target images; [(path, reason), ...]  # doctest: +SKIP

``spec`` is ``FORMAT:DIR`` with FORMAT one of :data:`FORMATS`, or ``synthearth[?train=N&val=N&test=N&seed=N&size=N]``:
SynthEarth in EarthReason layout (defaults :data:`think2seg.data.synth.DEFAULT`: 1000/200/200 images of
256 px, seed 0), generated on first use under ``data/synthearth/`` (``$THINK2SEG_SYNTH_DIR``), reused after. ``questions`` is the question policy
(``first`` | ``random`` (seeded) | ``all``), ``on_error`` is ``raise`` (a :class:`DataError` naming the
file) or ``skip`` (recorded in ``ds.skipped`` and counted in ``ds.summary()``); ``question_kind``
filters SynthEarth questions (``implicit`` | ``explicit``); ``limit`` caps the number of samples.
"""

from __future__ import annotations

from pathlib import Path

from think2seg.core.io import DataError
from think2seg.core.specs import split_options
from think2seg.data import referring, synth
from think2seg.data.dataset import Dataset, load_pair
from think2seg.data.earthreason import load_earthreason
from think2seg.data.formats import FORMATS, SPLITS

DEFAULT_SYNTH = "synthearth"  # the spec of the default SynthEarth dataset


def check_spec(spec: str | Path) -> str:
    """The FORMAT that ``spec`` names, reading and generating nothing; a ValueError names a bad spec."""
    s = str(spec)
    if s == DEFAULT_SYNTH or s.startswith(DEFAULT_SYNTH + "?"):
        _synth_options(s)
        return "earthreason"
    head, sep, _ = s.partition(":")
    if sep and head.lower() in FORMATS:
        return head.lower()
    if sep and len(head) > 1 and "/" not in head and "\\" not in head:
        raise ValueError(f"{spec!r}: unknown dataset format {head!r}; expected one of {', '.join(FORMATS)}")
    return "earthreason"


def parse_spec(spec: str | Path) -> tuple[str, Path]:
    """``"rrsisd:/data/RRSIS-D"`` -> ``("rrsisd", Path(...))``; a bare directory means EarthReason;
    ``"synthearth"`` the default SynthEarth (generated here if missing)."""
    fmt, s = check_spec(spec), str(spec)
    if s == DEFAULT_SYNTH or s.startswith(DEFAULT_SYNTH + "?"):
        return fmt, synth.ensure_default(**_synth_options(s))
    head, sep, tail = s.partition(":")
    return fmt, Path(tail) if sep and head.lower() == fmt else Path(s)


_SYNTH_KEYS = {"train": "n_train", "val": "n_val", "test": "n_test", "seed": "seed", "size": "size"}


def _synth_options(spec: str) -> dict[str, int]:
    kw = {}
    for key, value in split_options(spec, "SynthEarth spec")[1].items():
        if key not in _SYNTH_KEYS:
            raise ValueError(f"{spec!r}: unknown SynthEarth option {key!r}; expected one of {', '.join(_SYNTH_KEYS)}")
        try:
            kw[_SYNTH_KEYS[key]] = int(value)
        except ValueError:
            raise ValueError(f"{spec!r}: SynthEarth option {key}={value!r} is not an integer") from None
    return kw


def load_dataset(
    spec: str | Path,
    split: str,
    *,
    questions: str = "all",
    seed: int = 0,
    on_error: str = "raise",
    question_kind: str | None = None,
    limit: int | None = None,
    verify: bool = True,
    progress: bool = False,
) -> Dataset:
    """Load one split of the dataset named by ``spec`` (see the module docstring)."""
    fmt, root = parse_spec(spec)
    kw = dict(questions=questions, seed=seed, on_error=on_error, question_kind=question_kind, limit=limit,
              verify=verify, progress=progress)
    if fmt == "earthreason":
        return load_earthreason(root, split, **kw)

    return {"rrsisd": referring.load_rrsisd, "refsegrs": referring.load_refsegrs,
            "risbench": referring.load_risbench}[fmt](root, split, **kw)


__all__ = ["DEFAULT_SYNTH", "FORMATS", "SPLITS", "DataError", "Dataset", "check_spec", "load_dataset", "load_pair", "parse_spec"]
