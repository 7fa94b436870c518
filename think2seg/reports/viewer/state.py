"""What the trace viewer shows, as plain state: which samples pass the filters, in which order, and which one
is selected. No widgets here, so it is tested (and usable) without a kernel front end.

>>> state = TraceState([TraceRun("runs/a"), TraceRun("runs/b")])          # doctest: +SKIP
>>> state.update(filters=Filter(category="runway", iou=(0.0, 0.5)), sort="delta", descending=True)  # doctest: +SKIP
>>> state.current, state.position, len(state)      # the selected sample id, its index, how many pass  # doctest: +SKIP
>>> state.next(); state.go(10)  # doctest: +SKIP

With two runs or more, the samples are those every run has (joined on the sample id); filters look at the
first run's record, and ``delta`` is ``IoU(last run) - IoU(first run)``. Outcomes (:func:`outcome`):
``answered`` (target present, prompts given), ``false_rejection`` (target present, empty answer),
``true_rejection`` (empty target, empty answer), ``missed_rejection`` (empty target, prompts given).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

OUTCOMES = ("answered", "false_rejection", "true_rejection", "missed_rejection")
SORTS = ("order", "iou", "delta")


def outcome(record: dict[str, Any]) -> str:
    """One of :data:`OUTCOMES` for an evaluation record (``gt_empty`` x ``answer_empty``)."""
    rejected = bool(record.get("answer_empty", not record.get("instances")))
    if record["gt_empty"]:
        return "true_rejection" if rejected else "missed_rejection"
    return "false_rejection" if rejected else "answered"


def parse_failed(record: dict[str, Any]) -> bool:
    """The completion broke the answer format (tags or JSON) or the parser reported an error."""
    return bool(record.get("parse_error")) or not record.get("format_ok", True)


@dataclass(frozen=True)
class Filter:
    """Sample filters; ``None`` lets everything through. ``iou`` is an inclusive (low, high) range;
    ``parse`` is ``"failed"`` or ``"ok"``."""

    category: str | None = None
    kind: str | None = None
    outcome: str | None = None
    parse: str | None = None
    iou: tuple[float, float] | None = None

    def __post_init__(self):
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise ValueError(f"filter outcome={self.outcome!r}: expected one of {', '.join(OUTCOMES)}")
        if self.parse is not None and self.parse not in ("failed", "ok"):
            raise ValueError(f"filter parse={self.parse!r}: expected failed or ok")

    def accepts(self, record: dict[str, Any]) -> bool:
        extra = record.get("extra") or {}
        if self.category is not None and extra.get("category") != self.category:
            return False
        if self.kind is not None and extra.get("kind") != self.kind:
            return False
        if self.outcome is not None and outcome(record) != self.outcome:
            return False
        if self.parse is not None and parse_failed(record) != (self.parse == "failed"):
            return False
        return self.iou is None or self.iou[0] <= record["iou"] <= self.iou[1]

    @classmethod
    def parse_args(cls, items: Iterable[str]) -> Filter:
        """From ``KEY=VALUE`` strings (the gallery's ``--filter``): ``category=runway``, ``kind=implicit``,
        ``outcome=false_rejection``, ``parse=failed``, ``iou=0:0.5``. ValueError names a bad item."""
        kw: dict[str, Any] = {}
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or key not in cls.__dataclass_fields__:
                raise ValueError(f"--filter {item!r}: expected KEY=VALUE with KEY one of "
                                 f"{', '.join(cls.__dataclass_fields__)}")
            if key == "iou":
                try:
                    lo, hi = (float(v) for v in value.split(":"))
                except ValueError:
                    raise ValueError(f"--filter {item!r}: expected iou=LOW:HIGH, e.g. iou=0:0.5") from None
                kw[key] = (lo, hi)
            else:
                kw[key] = value
        return cls(**kw)


class TraceState:
    """Filtered, sorted sample ids over one or more :class:`~think2seg.reports.viewer.runs.TraceRun` and a cursor."""

    def __init__(self, runs: Sequence[Any], filters: Filter | None = None, sort: str = "order",
                 descending: bool = False):
        if not runs:
            raise ValueError("TraceState needs at least one run")
        self.runs = list(runs)
        shared = set(self.runs[0].ids).intersection(*(r.ids for r in self.runs[1:]))
        self.all_ids = [i for i in self.runs[0].ids if i in shared]
        if not self.all_ids:
            raise ValueError(f"runs {', '.join(r.label for r in self.runs)} share no sample id")
        self.filters, self.sort, self.descending = filters or Filter(), "order", descending
        self.ids: list[str] = []
        self.position = 0
        self.update(sort=sort)

    # --- what can be chosen -----------------------------------------------------------------------
    def choices(self, key: str) -> list[str]:
        """Values present in the first run for ``category`` or ``kind`` (empty when the data has none)."""
        vals = {(self.runs[0].record(i).get("extra") or {}).get(key) for i in self.all_ids}
        return sorted(v for v in vals if v is not None)

    def iou(self, sid: str, run: int = 0) -> float:
        return float(self.runs[run].record(sid)["iou"])

    def delta(self, sid: str) -> float:
        """IoU of the last run minus IoU of the first (0 with a single run)."""
        return self.iou(sid, -1) - self.iou(sid, 0)

    # --- changing the view ------------------------------------------------------------------------
    def update(self, filters: Filter | None = None, sort: str | None = None, descending: bool | None = None,
               **filter_fields: Any) -> None:
        """Apply new filters (a :class:`Filter`, or single fields such as ``category="road"``) and/or a new
        order; the selected sample stays selected when it still passes, else the first one is."""
        if sort is not None and sort not in SORTS:
            raise ValueError(f"sort={sort!r}: expected one of {', '.join(SORTS)}")
        keep = self.current
        self.filters = replace(filters or self.filters, **filter_fields)
        self.sort = sort or self.sort
        self.descending = self.descending if descending is None else descending
        ids = [i for i in self.all_ids if self.filters.accepts(self.runs[0].record(i))]
        if self.sort != "order":
            key = self.iou if self.sort == "iou" else self.delta
            ids.sort(key=key, reverse=self.descending)  # stable: ties keep the dataset order
        elif self.descending:
            ids.reverse()
        self.ids = ids
        self.position = ids.index(keep) if keep in ids else 0

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def current(self) -> str | None:
        """The selected sample id (None when no sample passes the filters)."""
        return self.ids[self.position] if self.ids else None

    def go(self, position: int) -> str | None:
        """Select by index into the filtered list (clamped)."""
        self.position = min(max(int(position), 0), max(len(self.ids) - 1, 0))
        return self.current

    def next(self) -> str | None:
        return self.go(self.position + 1)

    def prev(self) -> str | None:
        return self.go(self.position - 1)

    def pick(self, worst: int | None = None, best: int | None = None) -> list[str]:
        """The ``worst`` first and ``best`` last ids of the current order (sort by ``iou`` or ``delta``
        ascending first); all ids when neither is given. No id twice."""
        if worst is None and best is None:
            return list(self.ids)
        out = list(self.ids[: worst or 0])
        for i in self.ids[len(self.ids) - (best or 0):][::-1] if best else []:
            if i not in out:
                out.append(i)
        return out
