"""When a GRPO run stops early, and stops cleanly: a wall-clock budget, or a stop signal (SIGTERM / Ctrl-C).

    >>> from think2seg.training.stop import StopSignalCallback, TimeBudgetCallback
    >>> callbacks = [TimeBudgetCallback(minutes=30), StopSignalCallback()]   # what ``think2seg train`` adds

Both only ask the trainer to stop at the end of the current optimizer step
(``control.should_training_stop``); ``think2seg.training.grpo.train`` then saves the final model, the processor,
``trainer_state.json`` and ``think2seg_done.json`` as after a normal end, so a run that is stopped is a
finished run with fewer steps (``think2seg_done.json`` says how many), not lost work.

- :class:`TimeBudgetCallback`: rank 0's clock decides for every rank (ranks deciding alone can stop one
  step apart and then wait forever in each other's collectives).
- :class:`StopSignalCallback`: the first SIGTERM or SIGINT (Ctrl-C, a notebook's interrupt) during
  training sets a flag and is logged; the step in progress finishes, then every rank stops (rank 0's flag
  decides). A second signal gets the handler that was installed before (the default: exit at once). The
  previous handlers are restored when training ends. Handlers can only be installed from the main thread;
  elsewhere the callback does nothing and says so once.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from transformers import TrainerCallback

from think2seg.core.distributed import decide

__all__ = ["STOP_SIGNALS", "StopSignalCallback", "TimeBudgetCallback"]

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TimeBudgetCallback(TrainerCallback):
    """Stop training once ``minutes`` of wall-clock time have passed on rank 0 (the run is then saved as
    usual; all ranks stop at the same step)."""

    def __init__(self, minutes: float) -> None:
        self.minutes = minutes
        self.deadline = time.monotonic() + 60 * minutes
        self.stopped_by: str | None = None

    def on_step_end(self, args, state, control, **kw):
        if decide(lambda: time.monotonic() >= self.deadline):
            log.info("time budget of %.1f min reached at step %d: stopping", self.minutes, state.global_step)
            control.should_training_stop = True
            self.stopped_by = f"time budget ({self.minutes:g} min)"
        return control


class StopSignalCallback(TrainerCallback):
    """Turn the first SIGTERM / SIGINT during training into a clean stop after the current step."""

    def __init__(self, signals: tuple[int, ...] = STOP_SIGNALS) -> None:
        self.signals = tuple(signals)
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def stopped_by(self) -> str | None:
        """The name of the signal that stopped the run (``"SIGTERM"``), or None."""
        return None if self.received is None else signal.Signals(self.received).name

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:  # second signal: what was there before decides (default: exit now)
            self._restore()
            signal.raise_signal(signum)
            return
        self.received = signum
        log.warning("%s received: stopping after the current step and saving (send it again to exit at once)",
                    signal.Signals(signum).name)

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def on_train_begin(self, args, state, control, **kw):
        if threading.current_thread() is not threading.main_thread():
            log.info("training outside the main thread: stop signals keep their usual effect")
            return control
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._handle)
        return control

    def on_step_end(self, args, state, control, **kw):
        if decide(lambda: self.received is not None):
            control.should_training_stop = True
        return control

    def on_train_end(self, args, state, control, **kw):
        self._restore()
        if self.received is not None:
            log.warning("stopped by %s at step %d; the run is saved", signal.Signals(self.received).name,
                        state.global_step)
        return control
