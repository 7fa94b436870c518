"""Health of a GRPO run: rules over a moving window of trl's logged metrics that catch a collapsing run early.

    >>> mon = HealthMonitor(HealthRules(window=2, iou_flat_steps=10))
    >>> for step in (5, 10, 15):
    ...     fired = mon.update(step, {"frac_reward_zero_std": 1.0, "rewards/mask_iou/mean": 0.0,
    ...                               "completions/mean_length": 40.0, "rewards/json_format/mean": 1.0})
    >>> sorted(mon.fired)
    ['iou_flat', 'zero_variance']

What is watched, read from each row trl logs (``logging_steps`` apart):

- ``zero_variance``: ``frac_reward_zero_std``, the fraction of groups whose G rewards are all equal (their
  advantages are 0: no learning signal from them);
- ``length``: ``completions/mean_length`` (tokens), against its mean over the first window;
- ``format``: the mean of the format rewards' means (``rewards/<name>/mean`` whose name holds ``format``);
- ``iou``: the mean of the IoU rewards' means (names holding ``iou``: ``mask_iou``, ``segzero_box_iou``...);
- ``kl``: trl's ``kl`` (logged only when ``beta > 0``).

Rules (each fires once, in one line; :class:`HealthRules` holds the thresholds):

- ``length_collapse``: the window's mean length < ``length_ratio`` x its start;
- ``format_collapse``: the window's format rate < ``format_ratio`` x its start (a start of at least
  ``format_min_start``);
- ``zero_variance``: the window's zero-variance fraction > ``zero_variance``;
- ``iou_flat``: the IoU reward's mean at 0 (< ``iou_eps``) in every row over ``iou_flat_steps`` steps.

:class:`think2seg.training.health_callback.HealthCallback` applies them during training (tensorboard scalars ``health/*``, a warning per rule,
``<output_dir>/health.json``, and with ``stop_on_collapse`` a save and a clean stop);
:func:`replay` applies them to a finished run's ``log_history`` (``trainer_state.json``).
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HEALTH_FILE = "health.json"
SIGNALS = ("zero_variance", "length", "format", "iou", "kl")
RULES = ("length_collapse", "format_collapse", "zero_variance", "iou_flat")


@dataclass(frozen=True)
class HealthRules:
    """Thresholds of the rules (module doc); ``window`` counts logged rows, ``iou_flat_steps`` optimizer steps."""

    window: int = 5
    length_ratio: float = 0.5
    format_ratio: float = 0.5
    format_min_start: float = 0.2
    zero_variance: float = 0.9
    iou_flat_steps: int = 50
    iou_eps: float = 1e-6


def signals(logs: Mapping[str, Any]) -> dict[str, float]:
    """The watched signals of one trl log row (module doc); a signal the row lacks is left out."""
    out: dict[str, float] = {}
    if "frac_reward_zero_std" in logs:
        out["zero_variance"] = float(logs["frac_reward_zero_std"])
    if "completions/mean_length" in logs:
        out["length"] = float(logs["completions/mean_length"])
    for name, key in (("format", "format"), ("iou", "iou")):
        vals = [float(v) for k, v in logs.items()
                if k.startswith("rewards/") and k.endswith("/mean") and key in k.split("/")[1]]
        if vals:
            out[name] = sum(vals) / len(vals)
    if "kl" in logs:
        out["kl"] = float(logs["kl"])
    return {k: v for k, v in out.items() if not math.isnan(v)}


def _mean(xs: Iterable[float]) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else float("nan")


class HealthMonitor:
    """The rules applied to a stream of log rows (no trainer needed): :meth:`update` returns the rules that
    fire at this row (each at most once per run); :meth:`summary` is the report's ``health`` section."""

    def __init__(self, rules: HealthRules | None = None) -> None:
        self.rules = rules or HealthRules()
        self.recent: dict[str, deque] = {s: deque(maxlen=self.rules.window) for s in SIGNALS}
        self.start: dict[str, list[float]] = {s: [] for s in SIGNALS}
        self.fired: dict[str, dict[str, Any]] = {}
        self.rows = 0
        self.last_step = 0
        self._iou_zero_since: int | None = None

    def window_means(self) -> dict[str, float]:
        return {s: _mean(q) for s, q in self.recent.items() if q}

    def start_means(self) -> dict[str, float]:
        return {s: _mean(v) for s, v in self.start.items() if v}

    def update(self, step: int, logs: Mapping[str, Any]) -> list[str]:
        """Feed one log row (``step``: the optimizer step it was logged at); the newly fired rules' messages."""
        sig = signals(logs)
        if not sig:
            return []
        self.rows += 1
        self.last_step = step
        for s, v in sig.items():
            self.recent[s].append(v)
            if len(self.start[s]) < self.rules.window:
                self.start[s].append(v)
        r, now, start = self.rules, self.window_means(), self.start_means()
        full = {s: len(self.recent[s]) == r.window for s in SIGNALS}
        checks: dict[str, str | None] = {}
        if full["length"] and len(self.start["length"]) == r.window and start["length"] > 0:
            ratio = now["length"] / start["length"]
            checks["length_collapse"] = (f"mean completion length {now['length']:.1f} tokens is {ratio:.0%} of its "
                                         f"start ({start['length']:.1f})") if ratio < r.length_ratio else None
        if full["format"] and len(self.start["format"]) == r.window and start["format"] >= r.format_min_start:
            ratio = now["format"] / start["format"]
            checks["format_collapse"] = (f"format reward rate {now['format']:.2f} is {ratio:.0%} of its start "
                                         f"({start['format']:.2f})") if ratio < r.format_ratio else None
        if full["zero_variance"]:
            checks["zero_variance"] = (f"{now['zero_variance']:.0%} of groups have zero reward variance over the "
                                       f"last {r.window} logs (no learning signal)"
                                       if now["zero_variance"] > r.zero_variance else None)
        if "iou" in sig:
            if sig["iou"] < r.iou_eps:
                self._iou_zero_since = step if self._iou_zero_since is None else self._iou_zero_since
            else:
                self._iou_zero_since = None
            flat = self._iou_zero_since is not None and step - self._iou_zero_since >= r.iou_flat_steps
            checks["iou_flat"] = (f"IoU reward at 0 since step {self._iou_zero_since} ({step - self._iou_zero_since} "
                                  "steps)") if flat else None
        new = []
        for rule, message in checks.items():
            if message and rule not in self.fired:
                self.fired[rule] = {"step": step, "message": message}
                new.append(rule)
        return new

    def summary(self) -> dict[str, Any]:
        """``{"rules", "rows", "last_step", "start", "window", "fired": {rule: {"step", "message"}}}``."""
        return {"rules": asdict(self.rules), "rows": self.rows, "last_step": self.last_step,
                "start": self.start_means(), "window": self.window_means(), "fired": dict(self.fired)}


def replay(log_history: Iterable[Mapping[str, Any]], rules: HealthRules | None = None) -> dict[str, Any]:
    """The health section of a finished run from its logged rows (``trainer_state.json``'s ``log_history``)."""
    mon = HealthMonitor(rules)
    for row in log_history:
        mon.update(int(row.get("step", 0)), row)
    return mon.summary()


def replay_run(run_dir: str | Path, rules: HealthRules | None = None) -> dict[str, Any]:
    """:func:`replay` of ``<run_dir>/trainer_state.json``."""
    path = Path(run_dir) / "trainer_state.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a finished training run (no trainer_state.json)")
    return replay(json.loads(path.read_text())["log_history"], rules)


def run_health(run_dir: str | Path) -> dict[str, Any]:
    """The health section of a training output dir: its ``health.json`` (written during training) when
    there is one, else the :func:`replay` of its ``trainer_state.json`` (shipped policies, older runs)."""
    path = Path(run_dir) / HEALTH_FILE
    if path.is_file():
        return {**json.loads(path.read_text()), "source": "during training"}
    return {**replay_run(run_dir), "source": "replayed from trainer_state.json"}


def health_table(outputs: Mapping[str, str | Path]):
    """One row per labelled training run: the steps logged, each rule's firing step (NaN: did not fire),
    the window means at the end and where the section came from."""
    import pandas as pd

    rows = {}
    for label, d in outputs.items():
        h = run_health(d)
        rows[label] = {"last step": h["last_step"], "log rows": h["rows"],
                       **{f"{rule} at step": h["fired"].get(rule, {}).get("step", float("nan")) for rule in RULES},
                       **{f"{s} (last window)": h["window"].get(s, float("nan")) for s in SIGNALS},
                       **{f"{s} (start)": h["start"].get(s, float("nan")) for s in ("length", "format")},
                       "source": h["source"]}
    return pd.DataFrame.from_dict(rows, orient="index")
