"""Held-out evaluation during GRPO training, as a transformers ``TrainerCallback``.

Before training, every ``eval_every`` optimizer steps, and at the end, the LIVE policy (greedy decoding)
is evaluated with :func:`think2seg.evaluation.engine.evaluate` on ``eval_split`` (optionally one question kind),
and one line per evaluation is appended to ``<output_dir>/eval_curve.jsonl``:
``{"step", "gIoU", "cIoU", "P@0.5", "format_ok_rate", "empty_true", "n", "seconds"}`` plus the
question-dependence of the answers (:func:`think2seg.reports.results.diagnose_answers`: ``distinct answers``,
``top answer share``, ``think names category``, ``box area``, ``box IoU``, ``points on target``), so a curve shows whether a gain comes from answering
the question or from one box that scores everywhere. Each evaluation's records go to
``<output_dir>/evals/step-<N>/`` for the viewer.

Decoding is :func:`think2seg.evaluation.generation.eval_generation` of the ``authors`` protocol, the same
settings as ``think2seg eval`` (greedy, repetition penalty 1.0, 2048 new tokens, whatever the checkpoint's
generation config says), so a curve point equals ``think2seg eval`` of that step's weights.
:meth:`EvalCallback.generation` is what ``think2seg_train_config.json`` records.

Several processes: every rank evaluates its share of the batches with its own copy of the policy
(:mod:`think2seg.evaluation.shards`), so an evaluation takes 1/world of the time and no rank idles in trl's
next collective until ``ddp_timeout``; rank 0 merges the records and writes the curve. Under DeepSpeed
ZeRO-3 (stage read from accelerate's plugin, :func:`think2seg.core.distributed.zero_stage`) the parameters
are sharded: as trl does for its own generation, the full weights are gathered for the evaluation
(``trl.models.utils.unwrap_model_for_generation``; ``--ds3_gather_for_generation false`` keeps them
sharded). Either way the forward pass stays a collective (the parameter fetch, or DeepSpeed's
start-of-forward hook until its first full trace), so generation runs with ``synced_gpus`` and the ranks
are padded to the same number of batches (``lockstep``), as in trl's own generation. Generation runs under ``torch.no_grad()``: parameters DeepSpeed materialises
there stay usable by the next backward (under ``inference_mode`` they would be inference tensors). ZeRO-1/2
and DDP hold full weights on every rank and generate independently.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from think2seg.core.distributed import zero_stage
from think2seg.core.records import read_records
from think2seg.evaluation.diagnostics import diagnose_answers
from think2seg.evaluation.engine import EvalConfig, evaluate
from think2seg.evaluation.generation import eval_generation, prompter_options
from think2seg.prompters.hf import HFPrompter
from think2seg.segmenters import build_segmenter
from think2seg.training.setup import EVAL_PROTOCOL, eval_segmenter_of

PROTOCOL = EVAL_PROTOCOL


class EvalCallback(TrainerCallback):
    """``trainer``: set by :func:`think2seg.training.grpo.train` once the trainer exists (its wrapped
    model and accelerator gather ZeRO-3 weights); without it the model handed to the callback is used."""

    def __init__(self, t2s: Any) -> None:
        self.t2s = t2s
        self.trainer: Any = None
        self._segmenter = None
        self._done_steps: set[int] = set()

    def generation(self) -> dict[str, Any]:
        """The decoding settings of every evaluation: those of ``think2seg eval --protocol authors``
        (``--eval_max_new_tokens``, when set, caps the answers instead of the protocol's 2,048)."""
        return eval_generation(PROTOCOL, getattr(self.t2s, "eval_max_new_tokens", None))

    @contextmanager
    def _live_model(self, model: Any, gather: bool):
        """The policy to generate with: under ZeRO-3 with ``gather``, its full weights on every rank."""
        trainer = self.trainer
        if not gather or trainer is None:
            with nullcontext(model) as m:
                yield m
            return
        from trl.models.utils import unwrap_model_for_generation

        with unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator,
                                         gather_deepspeed3_params=True) as m:
            yield m

    def _evaluate(self, args: Any, state: Any, model: Any, processing_class: Any) -> None:
        if state.global_step in self._done_steps:  # every rank: the evaluation is data-parallel
            return

        self._done_steps.add(state.global_step)
        t2s = self.t2s
        model = getattr(model, "module", model)
        sharded = zero_stage(getattr(args, "deepspeed", None), args) == 3
        gather = sharded and bool(getattr(args, "ds3_gather_for_generation", True))
        # ZeRO-3, gathered or not: DeepSpeed's start-of-forward hook (left in place by trl's gather) is a
        # collective until its first full trace, so every rank runs as many forward passes (trl's regime)
        synced = sharded
        if self._segmenter is None:
            self._segmenter = build_segmenter(eval_segmenter_of(t2s))  # the rewards' instance when the same
        out = Path(args.output_dir) / "evals" / f"step-{state.global_step}"
        cfg = EvalConfig(
            data=t2s.data,
            out=str(out),
            split=t2s.eval_split,
            prompter=f"live@{state.global_step}",
            segmenter=eval_segmenter_of(t2s),
            style=t2s.style,
            questions="all",
            question_kind=t2s.eval_question_kind,
            limit=t2s.eval_limit,
            image_size=t2s.image_size,
            batch_size=max(8, args.per_device_train_batch_size),
            protocol=PROTOCOL,
        )
        was_training = model.training
        t0 = time.perf_counter()
        try:
            with self._live_model(model, gather) as live:
                live.eval()
                prompter = HFPrompter.attach(
                    live,
                    processing_class,
                    style=t2s.style,
                    template=t2s.template,
                    image_size=t2s.image_size,
                    batch_size=cfg.batch_size,
                    synced_gpus=synced,
                    **prompter_options(self.generation()),
                )
                m = evaluate(cfg, prompter=prompter, segmenter=self._segmenter, progress=False, lockstep=synced)
        finally:
            model.train(was_training)
        if not state.is_world_process_zero:
            return

        diag = diagnose_answers(read_records(out / "records.jsonl"))
        row = {
            "step": state.global_step,
            "seconds": round(time.perf_counter() - t0, 2),
            **{
                k: m[k] for k in ("gIoU", "cIoU", "P@0.5", "format_ok_rate", "empty_true", "empty_total", "n")
            },
            **{k: diag[k] for k in ("distinct answers", "top answer share", "think names category", "box area",
                                    "box IoU", "points on target")},
        }
        with open(Path(args.output_dir) / "eval_curve.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        print(
            f"[eval step {row['step']}] gIoU={row['gIoU']:.4f} cIoU={row['cIoU']:.4f} "
            f"format={row['format_ok_rate']:.2f} top-answer={row['top answer share']:.2f} "
            f"names-category={row['think names category']:.2f} box-area={row['box area']:.2f} "
            f"box-IoU={row['box IoU']:.2f} points-on-target={row['points on target']:.2f} n={row['n']} ({row['seconds']} s)",
            flush=True,
        )

    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kw):
        self._evaluate(args, state, model, processing_class)

    def on_step_end(self, args, state, control, model=None, processing_class=None, **kw):
        every = self.t2s.eval_every
        if every and state.global_step % every == 0:
            self._evaluate(args, state, model, processing_class)

    def on_train_end(self, args, state, control, model=None, processing_class=None, **kw):
        self._evaluate(args, state, model, processing_class)
