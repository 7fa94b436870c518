"""When a GRPO run stops early, and stops cleanly: a wall-clock budget, a stop signal (SIGTERM / Ctrl-C),
or a stop file.

    >>> from think2seg.training.stop import StopSignalCallback, TimeBudgetCallback
    >>> callbacks = [TimeBudgetCallback(minutes=30),
    ...              StopSignalCallback(stop_file="runs/x/STOP")]   # what ``think2seg train`` adds

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
  elsewhere the callback does nothing and says so once. ``stop_file``: the same stop when that file
  appears (``touch <output_dir>/STOP``; rank 0 looks after every step, then removes it), which needs no
  signal and works under any launcher.

Under ``accelerate launch`` / ``torchrun`` a signal goes to the launcher (torch elastic's agent), which
forwards it to every worker and SIGKILLs them ``TORCH_ELASTIC_SHUTDOWN_TIMEOUT`` seconds later (30 by
default): less than a step plus a ZeRO-3 save of a 3B model. Launch with the variable raised (the
launch lines in docs/gpus.md set :data:`SHUTDOWN_TIMEOUT_S`), or use the stop file; on rank 0 the callback
warns at the start of training when the workers' launcher would kill them sooner than that.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from think2seg.core.distributed import decide, rank

__all__ = ["SHUTDOWN_TIMEOUT_S", "STOP_FILE", "STOP_SIGNALS", "StopSignalCallback", "TimeBudgetCallback",
           "shutdown_timeout_warning"]

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STOP_FILE = "STOP"  # in the output directory
SHUTDOWN_TIMEOUT_S = 1800  # TORCH_ELASTIC_SHUTDOWN_TIMEOUT of the documented launch lines: a step + a save


def shutdown_timeout_warning(environ: Any = None) -> str | None:
    """Why a stop signal sent to this run's launcher would kill the workers before they save, or None.
    Only under torch elastic (``accelerate launch``, ``torchrun``: ``TORCHELASTIC_RUN_ID`` is set in the
    workers, which inherit the launcher's ``TORCH_ELASTIC_SHUTDOWN_TIMEOUT``)."""
    env = os.environ if environ is None else environ
    if "TORCHELASTIC_RUN_ID" not in env:
        return None
    raw = env.get("TORCH_ELASTIC_SHUTDOWN_TIMEOUT", "30")
    timeout = int(raw) if raw.strip().isdigit() else 30
    if timeout >= SHUTDOWN_TIMEOUT_S:
        return None
    return (f"the launcher SIGKILLs the workers {timeout} s after forwarding a SIGTERM "
            f"(TORCH_ELASTIC_SHUTDOWN_TIMEOUT): too little for a step and a save. Launch with "
            f"TORCH_ELASTIC_SHUTDOWN_TIMEOUT={SHUTDOWN_TIMEOUT_S}, or stop the run with `touch <output_dir>/{STOP_FILE}`")


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
    """Turn the first SIGTERM / SIGINT during training, or the appearance of ``stop_file``, into a clean
    stop after the current step."""

    def __init__(self, signals: tuple[int, ...] = STOP_SIGNALS, stop_file: str | Path | None = None) -> None:
        self.signals = tuple(signals)
        self.stop_file = Path(stop_file) if stop_file is not None else None
        self.received: int | None = None
        self.file_seen = False
        self._previous: dict[int, Any] = {}

    @property
    def stopped_by(self) -> str | None:
        """The name of the signal that stopped the run (``"SIGTERM"``), ``"stop file"``, or None."""
        if self.received is not None:
            return signal.Signals(self.received).name
        return "stop file" if self.file_seen else None

    def _should_stop(self) -> bool:  # rank 0's view
        if self.received is not None:
            return True
        if self.stop_file is not None and self.stop_file.exists():
            self.file_seen = True
            log.warning("%s found: stopping after this step and saving", self.stop_file)
            return True
        return False

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
        warning = shutdown_timeout_warning()
        if warning and rank() == 0:
            log.warning(warning)
        if threading.current_thread() is not threading.main_thread():
            log.info("training outside the main thread: stop signals keep their usual effect")
            return control
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._handle)
        return control

    def on_step_end(self, args, state, control, **kw):
        if decide(self._should_stop):
            control.should_training_stop = True
        return control

    def on_train_end(self, args, state, control, **kw):
        self._restore()
        if self.file_seen and self.stop_file is not None:
            self.stop_file.unlink(missing_ok=True)  # a resumed run must not stop at once
            log.warning("stopped by %s at step %d; the run is saved", self.stop_file, state.global_step)
        if self.received is not None:
            log.warning("stopped by %s at step %d; the run is saved", signal.Signals(self.received).name,
                        state.global_step)
        return control
