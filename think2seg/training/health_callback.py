"""The run-health rules (:mod:`think2seg.training.health`) during training, as a transformers ``TrainerCallback``.

    >>> cb = HealthCallback(HealthRules(window=5), stop_on_collapse=True)   # what ``think2seg train`` adds
    >>> cb.attach(trainer)                                                  # doctest: +SKIP

Kept apart from the rules so that reading a run's health (reports, ``ship-policies``) needs no transformers.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from think2seg.core.distributed import decide
from think2seg.training.health import HEALTH_FILE, HealthMonitor, HealthRules

log = logging.getLogger("think2seg.training.health")


class HealthCallback(TrainerCallback):
    """The rules during training: ``health/<signal>`` (window means) to tensorboard when it is a
    ``report_to`` target, one warning line per fired rule, ``<output_dir>/health.json`` after every log
    and at the end, and with ``stop_on_collapse`` a checkpoint save and a stop at the first fired rule."""

    def __init__(self, rules: HealthRules | None = None, stop_on_collapse: bool = False) -> None:
        self.monitor = HealthMonitor(rules)
        self.stop_on_collapse = stop_on_collapse
        self.stopped_by: str | None = None
        self._writer = None
        self._tb = None

    def attach(self, trainer: Any) -> HealthCallback:
        """Write the ``health/*`` scalars with ``trainer``'s own TensorBoard writer (same run as ``train/*``)."""
        self._tb = next((c for c in trainer.callback_handler.callbacks if type(c).__name__ == "TensorBoardCallback"),
                        None)
        return self

    def _tensorboard(self, args: Any):
        tb = self._tb
        if tb is not None and getattr(tb, "tb_writer", None) is not None:
            return tb.tb_writer
        if self._writer is None and "tensorboard" in (args.report_to or []):  # not attached: a run of its own
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(Path(args.output_dir) / "runs" / "health"))
        return self._writer

    def _write(self, args: Any) -> None:
        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        summary = {**self.monitor.summary(), "stopped_by": self.stopped_by}
        (out / HEALTH_FILE).write_text(json.dumps(summary, indent=1))

    def on_log(self, args, state, control, logs=None, **kw):
        # every rank sees the same (gathered) logs; rank 0 decides a stop for all of them
        new = self.monitor.update(state.global_step, logs) if logs else []
        if self.stop_on_collapse and self.stopped_by is None and decide(lambda: bool(new)):
            self.stopped_by = f"health rule {new[0]}" if new else "health rule (rank 0)"
            control.should_save = True  # the trainer saves a checkpoint after this log, then stops
            control.should_training_stop = True
        if not state.is_world_process_zero or not logs:
            return control
        writer = self._tensorboard(args)
        if writer is not None:
            for s, v in self.monitor.window_means().items():
                writer.add_scalar(f"health/{s}", v, state.global_step)
            writer.flush()
        for rule in new:
            log.warning("run health: %s at step %d: %s", rule, state.global_step, self.monitor.fired[rule]["message"])
        self._write(args)
        return control

    def on_train_end(self, args, state, control, **kw):
        if state.is_world_process_zero:
            self._write(args)
            if self._writer is not None:
                self._writer.close()
        return control
