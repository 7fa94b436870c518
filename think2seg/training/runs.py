"""Driving training runs from notebooks: launch (in-kernel or ``accelerate launch``), then evaluate.

>>> out = run_training("configs/train/cpu_demo.yaml", "runs/03/demo-think2seg", reward="think2seg")  # doctest: +SKIP
>>> runs = before_after({"think2seg": out}, "runs/03/eval", split="val", question_kind="implicit")      # doctest: +SKIP

A finished run (``<out>/think2seg_done.json``, written at the end of training) is not trained again, so
re-executing a notebook only redoes what is missing; an interrupted one resumes from its last checkpoint.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from think2seg.core.metrics import DEFAULT_PROTOCOL
from think2seg.core.records import read_records
from think2seg.evaluation.engine import ControlUnavailable, evaluate_many
from think2seg.prompters.tiny import ASSETS, SHIPPED
from think2seg.training.grpo import parse_args, train
from think2seg.training.setup import eval_segmenter_of

DONE_FILE = "think2seg_done.json"


def run_training(
    config: str | Path,
    output_dir: str | Path,
    *,
    reward: str | None = None,
    max_steps: int | None = None,
    max_minutes: float | None = None,
    launch: str = "kernel",
    accelerate_config: str | Path | None = None,
    extra_args: Sequence[str] = (),
) -> Path:
    """Train with ``config`` into ``output_dir`` (skipped when already done); returns ``output_dir``."""
    config, out = Path(config), Path(output_dir)
    if not config.is_file():
        raise FileNotFoundError(f"training config {config} not found (see configs/train/)")
    if (out / DONE_FILE).is_file():
        print(f"{out}: already trained ({DONE_FILE} present), skipping")
        return out
    args = ["--config", str(config), "--output_dir", str(out)]
    if reward:
        args += ["--reward", reward]
    if max_steps is not None:
        args += ["--max_steps", str(max_steps)]
    if max_minutes is not None:
        args += ["--max_minutes", str(max_minutes)]
    if any(out.glob("checkpoint-*")):
        args += ["--resume_from_checkpoint", "last"]
    args += [str(a) for a in extra_args]
    if launch == "kernel":
        train(*parse_args(args))
    elif launch == "accelerate":
        cmd = [shutil.which("accelerate") or "accelerate", "launch"]
        if accelerate_config:
            cmd += ["--config_file", str(accelerate_config)]
        cmd += ["-m", "think2seg.training.grpo", *args]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, stdout=sys.stdout, stderr=sys.stderr)
    else:
        raise ValueError(f"launch={launch!r}: use 'kernel' or 'accelerate'")
    return out


def trained_prompter_spec(output_dir: str | Path) -> tuple[str, str, dict[str, Any]]:
    """(spec of the trained policy, spec of its starting model, resolved think2seg options) of a run."""
    out = Path(output_dir)
    cfg_file = out / "think2seg_train_config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{cfg_file}: not a think2seg training output")
    t2s = json.loads(cfg_file.read_text())["think2seg"]
    start = t2s["model"]

    for name, (folder, _) in SHIPPED.items():  # a shipped policy is named by its spec
        if out.resolve() == (ASSETS / folder).resolve():
            return name, start, t2s
    if start == "tiny" or start.startswith("tiny:"):
        return f"tiny:{out}", start, t2s
    q = f"?template={t2s['template']}&image_size={t2s['image_size']}&style={t2s['style']}"
    return f"hf:{out}{q}", f"hf:{start}{q}", t2s


def before_after(
    outputs: Mapping[str, str | Path],
    runs_dir: str | Path,
    *,
    split: str = "val",
    question_kind: str | None = None,
    limit: int | None = None,
    questions: str = "all",
    protocol: str = DEFAULT_PROTOCOL,
    constant_baseline: bool = True,
    reference_question_kind: str | None = None,
    question_control: bool = True,
) -> dict[str, Path]:
    """Evaluate each run's starting model once and every trained policy; ``{label: run_dir}``.

    ``constant_baseline`` adds the ``fixed`` prompter (one near-whole-image box for every question): a
    policy is only answering the question if it beats that row (see :func:`think2seg.reports.results.answer_diagnostics`).
    ``reference_question_kind`` (e.g. ``"explicit"`` when training on implicit questions) adds the starting
    model on that kind of question about the same images: what it scores when the question names the
    category, i.e. what learning the question -> category mapping alone would reach.
    ``question_control`` adds every trained policy (and the reference rows) asked the questions of OTHER
    images (:func:`think2seg.evaluation.engine.shuffle_questions`): a policy that reads the question scores lower
    there, one that answers from the image alone scores the same.
    """

    specs: dict[str, str] = {}
    t2s: dict[str, Any] = {}
    for label, out in outputs.items():
        after, before, t2s = trained_prompter_spec(out)
        specs.setdefault(f"before ({before})", before)
        specs[f"after GRPO ({label})"] = after
    if constant_baseline and specs:
        specs["constant box (fixed)"] = f"fixed?image_size={t2s['image_size']}"
    common = dict(data=t2s.get("data"), split=split, segmenter=eval_segmenter_of(t2s), style=t2s.get("style"),
                  protocol=protocol, questions=questions, limit=limit, keep_masks=True)
    runs = evaluate_many(specs, runs_dir, question_kind=question_kind, **common)
    groups = [(question_kind, {label: spec for label, spec in specs.items() if label.startswith("after GRPO (")})]
    if reference_question_kind and reference_question_kind != question_kind:
        refs = {f"{label}, {reference_question_kind} questions": spec
                for label, spec in specs.items() if label.startswith("before (")}
        runs.update(evaluate_many(refs, runs_dir, question_kind=reference_question_kind, **common))
        groups.append((reference_question_kind, refs))  # its control shows how far reading the question goes
    if question_control:
        for kind, group in groups:
            controls = {f"{label}, questions of other images": spec for label, spec in group.items()}
            try:
                runs.update(evaluate_many(controls, runs_dir, question_kind=kind, shuffle_questions=True, **common))
            except ControlUnavailable as e:  # e.g. a small limit that covers one image
                print(f"question control skipped for {sorted(controls)}: {e}")
    return runs


def example_completions(runs: Mapping[str, str | Path], n: int = 4):
    """The first ``n`` samples of the first run that the other runs also answered: question, and each
    run's completion and IoU. Runs on other samples (e.g. the explicit-question reference of
    :func:`before_after`) are left out, with a line saying so."""

    recs = {label: {r["id"]: r for r in read_records(d)} for label, d in runs.items()}
    base_label, base = next(iter(recs.items()))
    other = [label for label, r in recs.items() if not base.keys() & r.keys()]
    if other:
        print(f"left out (no sample in common with {base_label!r}): {', '.join(other)}")
        recs = {label: r for label, r in recs.items() if label not in other}
    ids = [i for i in base if all(i in r for r in recs.values())][:n]
    rows = []
    for i in ids:
        row = {"id": i, "question": base[i]["question"], "gt_empty": base[i]["gt_empty"]}
        for label, r in recs.items():
            row[f"{label}: completion"] = r[i]["completion"]
            row[f"{label}: IoU"] = round(r[i]["iou"], 3)
        rows.append(row)
    with pd.option_context("display.max_colwidth", 200):
        return pd.DataFrame(rows).set_index("id")
