"""The GRPO policies shipped beside the tiny warm start: train each reward scheme, copy the weights into
``think2seg/assets/``, and write a training report that says what the policy does and does not do.

    think2seg ship-policies                                   # 4 schemes x 10 min (one thread), then reports
    think2seg ship-policies --rewards segzero --skip-train    # re-ship from runs/ship/segzero

>>> from think2seg.training.shipped import shipped_report
>>> shipped_report("tiny-grpo")["controls"]["implicit questions"]["gIoU"]     # doctest: +SKIP

A shipped policy is ``think2seg/assets/<folder>/`` (:data:`think2seg.prompters.tiny.SHIPPED`): the
weights and processor files of the final model, ``think2seg_train_config.json`` (the resolved recipe),
``trainer_state.json`` (trl's log history, for the curves), ``eval_curve.jsonl`` (held-out gIoU during
training) and ``training_report.json``: steps, minutes, the curve's end, and the control rows measured
after training on the first ``eval_limit`` implicit val questions — the policy, the same policy asked
the questions of other images (``--shuffle-questions``), the constant box (``fixed``) and the warm start.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from think2seg.core.records import read_metrics, read_records
from think2seg.evaluation.diagnostics import diagnose_answers, metrics_row
from think2seg.evaluation.engine import evaluate_many
from think2seg.prompters.tiny import ASSETS, SHIPPED, load_tiny
from think2seg.prompters.tinybuild import save_tiny
from think2seg.training.health import replay
from think2seg.training.runs import run_training
from think2seg.training.setup import eval_segmenter_of

RUN_FILES = ("think2seg_prompter.json", "think2seg_train_config.json", "eval_curve.jsonl")
REPORT = "training_report.json"
CONFIG = "configs/train/cpu_demo.yaml"
READS_QUESTION_DROP = 10.0  # gIoU points a policy must lose on other images' questions to count as reading them


def name_of(reward: str) -> str:
    """The shipped prompter spec of a reward scheme (``think2seg`` -> ``tiny-grpo``)."""
    for name, (_, scheme) in SHIPPED.items():
        if scheme == reward:
            return name
    raise ValueError(f"no shipped policy for reward {reward!r}; schemes: {[s for _, s in SHIPPED.values()]}")


def asset_dir(name: str) -> Path:
    return ASSETS / SHIPPED[name][0]


def shipped_outputs(rewards: Sequence[str]) -> dict[str, Path]:
    """``{reward: asset folder}`` of the shipped policies, in the shape of training outputs (notebook 03
    plots their curves and evaluates them instead of training)."""
    out = {}
    for reward in rewards:
        d = asset_dir(name_of(reward))
        if not (d / "think2seg_train_config.json").is_file():
            raise FileNotFoundError(f"shipped policy {name_of(reward)}: {d} incomplete (rebuild: think2seg ship-policies)")
        out[reward] = d
    return out


def shipped_report(name: str) -> dict[str, Any]:
    """The ``training_report.json`` of a shipped policy."""
    path = asset_dir(name) / REPORT
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (rebuild: think2seg ship-policies)")
    return json.loads(path.read_text())


def copy_policy(run_dir: str | Path, name: str) -> Path:
    """Save a finished training run's final model (float16, as the warm start: half the size) and
    processor into the asset folder of ``name`` (replacing it), with the run's recipe and curves."""
    import torch

    run, dest = Path(run_dir), asset_dir(name)
    if not (run / "think2seg_done.json").is_file():
        raise FileNotFoundError(f"{run}: training not finished (no think2seg_done.json)")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model, processor = load_tiny(run)
    save_tiny(model, processor, tmp, dtype=torch.float16)
    for f in RUN_FILES:
        if (run / f).is_file():
            shutil.copy2(run / f, tmp / f)
    state = json.loads((run / "trainer_state.json").read_text())
    keep = {k: state.get(k) for k in ("global_step", "max_steps", "log_history")}
    (tmp / "trainer_state.json").write_text(json.dumps(keep))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def measure_controls(name: str, runs_dir: str | Path, *, limit: int = 80) -> dict[str, dict[str, Any]]:
    """gIoU/cIoU/P@0.5 on the first ``limit`` implicit val questions of the default SynthEarth (GrabCut,
    protocol ``authors``): the policy, the policy asked other images' questions, ``fixed``, the warm start."""

    t2s = json.loads((asset_dir(name) / "think2seg_train_config.json").read_text())["think2seg"]
    common = dict(data=t2s["data"], split="val", segmenter=eval_segmenter_of(t2s), style=t2s["style"],
                  question_kind="implicit", questions="all", limit=limit)
    for label in (name, f"{name}, questions of other images"):  # re-shipped weights: measure afresh
        shutil.rmtree(Path(runs_dir) / re.sub(r"[^A-Za-z0-9_.+-]+", "_", label), ignore_errors=True)
    runs = evaluate_many({"warm start (tiny)": "tiny", "constant box (fixed)": f"fixed?image_size={t2s['image_size']}",
                          name: name}, runs_dir, **common)
    runs.update(evaluate_many({f"{name}, questions of other images": name}, runs_dir, shuffle_questions=True,
                              **common))
    out = {}
    for label, d in runs.items():
        row = metrics_row(read_metrics(d))
        diag = diagnose_answers(read_records(d))
        out[label] = {k: row[k] for k in ("gIoU", "cIoU", "P@0.5", "n")} | {
            k: diag[k] for k in ("top answer share", "think names category", "box area", "box IoU", "points on target")}
    return out


def write_report(name: str, controls: dict[str, dict[str, Any]], limit: int) -> Path:
    dest = asset_dir(name)
    state = json.loads((dest / "trainer_state.json").read_text())
    logs = state.get("log_history") or []
    runtime = next((r["train_runtime"] for r in reversed(logs) if "train_runtime" in r), None)
    curve = [json.loads(x) for x in (dest / "eval_curve.jsonl").read_text().splitlines() if x.strip()] \
        if (dest / "eval_curve.jsonl").is_file() else []
    t2s_file = json.loads((dest / "think2seg_train_config.json").read_text())
    me, other = controls[name], controls[f"{name}, questions of other images"]
    fixed, start = controls["constant box (fixed)"], controls["warm start (tiny)"]
    report = {
        "name": name,
        "reward": SHIPPED[name][1],
        "recipe": {"config": CONFIG, "command": f"think2seg ship-policies --rewards {SHIPPED[name][1]}",
                   "think2seg": t2s_file.get("think2seg"), "git_sha": t2s_file.get("git_sha")},
        "steps": state.get("global_step"),
        "minutes": None if runtime is None else round(runtime / 60, 1),
        "held_out_curve": [{k: c.get(k) for k in ("step", "gIoU", "cIoU", "n", "box area", "box IoU",
                                                   "points on target")} for c in curve],
        "measured": f"first {limit} implicit val questions of the default SynthEarth (seed 0, 256 px), "
                    f"segmenter {eval_segmenter_of(t2s_file.get('think2seg') or {})}, "
                    "protocol authors, greedy; 'questions of other images' asks each sample a question that "
                    "belongs to another image (think2seg eval --shuffle-questions)",
        "controls": controls,
        "gain_over_warm_start": round(me["gIoU"] - start["gIoU"], 2),
        "gain_over_constant_box": round(me["gIoU"] - fixed["gIoU"], 2),
        "drop_with_other_images_questions": round(me["gIoU"] - other["gIoU"], 2),
        "reads_the_question": bool(me["gIoU"] - other["gIoU"] >= READS_QUESTION_DROP),
        "health": replay(logs),  # think2seg.training.health's rules over the logged training metrics
        "note": "a policy that reads the question scores lower on other images' questions; "
                f"reads_the_question is true when the drop is {READS_QUESTION_DROP:g} gIoU points or more",
        "shipped": time.strftime("%Y-%m-%d"),
    }
    path = dest / REPORT
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def ship_policies(rewards: Sequence[str], runs_dir: str | Path = "runs/ship", *, config: str = CONFIG,
                  max_minutes: float = 10, threads: int = 1, eval_limit: int = 80, train: bool = True) -> list[Path]:
    """Train (unless ``train=False`` or already done), copy and report each scheme; the report paths."""

    reports = []
    for reward in rewards:
        name, run = name_of(reward), Path(runs_dir) / reward
        if train:
            run_training(config, run, reward=reward, max_minutes=max_minutes,
                         extra_args=["--threads", str(threads)])
        copy_policy(run, name)
        controls = measure_controls(name, Path(runs_dir) / "eval", limit=eval_limit)
        reports.append(write_report(name, controls, eval_limit))
        print(f"{name}: {reports[-1]}", flush=True)
    return reports
