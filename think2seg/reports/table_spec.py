"""What the rows of Tables 1-6 are evaluated on: one spec instead of the same keywords in six signatures.

    >>> s = TableSpec.of(None, data="synthearth", limit=24, protocol="authors")
    >>> s.protocols, s.splits, s.limit
    (('authors',), ('val', 'test'), 24)
    >>> TableSpec.of(s, limt=3)
    Traceback (most recent call last):
    TypeError: unknown table option(s) limt; a table takes data, splits, protocols, segmenter, question_kind, questions, limit, published (and protocol=, split= for one)

Every table function takes ``spec`` and/or these options as keywords (an option overrides the spec's field),
so notebooks call ``table1(rows, runs_dir, data=..., limit=24)`` or share one ``TableSpec`` across tables.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from think2seg.core.metrics import DEFAULT_PROTOCOL
from think2seg.segmenters.spec import DEFAULT_SEGMENTER

PROTOCOLS = (DEFAULT_PROTOCOL, "segearth-r1")  # the authors' rules, and SegEarth-R1's on the same completions
SPLITS = ("val", "test")


@dataclass(frozen=True)
class TableSpec:
    """``data``: a dataset spec (None: the default SynthEarth); ``splits`` evaluated; ``protocols``: the
    first generates, the others re-score the same completions (tables that take one use the first);
    ``segmenter``; ``question_kind`` / ``questions``: which questions (kind, and the per-image policy);
    ``limit``: samples per split and row; ``published``: add the paper's rows."""

    data: str | None = None
    splits: tuple[str, ...] = SPLITS
    protocols: tuple[str, ...] = PROTOCOLS
    segmenter: str = DEFAULT_SEGMENTER
    question_kind: str | None = "implicit"
    questions: str = "all"
    limit: int | None = None
    published: bool = False

    @property
    def protocol(self) -> str:
        """The protocol of tables that are computed under one."""
        return self.protocols[0]

    @classmethod
    def of(cls, spec: TableSpec | None = None, **options: Any) -> TableSpec:
        """``spec`` (or the defaults) with ``options`` applied; ``protocol=`` / ``split=`` name a single one."""
        names = [f.name for f in fields(cls)]
        if "protocol" in options:
            options["protocols"] = (options.pop("protocol"),)
        if "split" in options:
            options["splits"] = (options.pop("split"),)
        bad = sorted(set(options) - set(names))
        if bad:
            raise TypeError(f"unknown table option(s) {', '.join(bad)}; a table takes {', '.join(names)} "
                            "(and protocol=, split= for one)")
        for key in ("splits", "protocols"):
            if key in options:
                options[key] = tuple(options[key])
        return replace(spec or cls(), **options)
