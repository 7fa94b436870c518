# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 — GRPO training with a mask-only reward
#
# trl's `GRPOTrainer` trains the prompter; the reward is format + IoU of the segmenter's mask (scheme
# `think2seg`) or a peer scheme that needs pseudo box/point labels (`segzero`, `visionreasoner`,
# `remotereasoner`). Same data, budget and seed for every scheme in `rewards`, so the curves compare
# the rewards and nothing else — the paper's central claim in miniature. Small profiles train inside
# this kernel; GPU profiles (`paper_qwen3b`, `lora_24gb`) run as an `accelerate launch` subprocess.
# `policies = "shipped"` trains nothing: it takes the GRPO policies shipped in the package (`tiny-grpo`,
# `tiny-grpo-segzero`, ...; rebuilt by `think2seg ship-policies`, recipe and controls in each
# `training_report.json`), plots their recorded curves and evaluates them like freshly trained ones.

# %% tags=["parameters"]
config = "cpu_demo"  # configs/train/<config>.yaml
data = None  # FORMAT:DIR; None: from the config (`synthearth`: the default SynthEarth, generated if missing)
rewards = ["think2seg", "segzero"]
policies = "train"  # train: run GRPO here | shipped: the policies shipped in the package (no training)
max_steps = None  # None: from the config
max_minutes = None  # wall-clock budget per run (None: from the config, else unlimited)
launch = "kernel"  # kernel | accelerate
accelerate_config = "configs/accelerate/zero3.yaml"
extra_args = []  # more --key value pairs for every run
runs_dir = "runs/03_grpo"
reports_dir = "reports"
eval_split = "val"
eval_question_kind = "implicit"
reference_question_kind = "explicit"  # the starting model on questions that name the category (None: skip)
eval_limit = 60
n_examples = 4
gallery_n = 4  # the before/after gallery: the questions GRPO helped most and hurt most (each)
score_checkpoints = True  # think2seg eval --checkpoints on every run trained here (eval_split, eval_limit)

# %%
from pathlib import Path

from think2seg.reports.results import answer_diagnostics, metrics_table, plot_training, save_table
from think2seg.training.health import health_table
from think2seg.training.runs import before_after, example_completions, run_training
from think2seg.training.shipped import shipped_outputs

cfg_path = Path("configs/train") / f"{config}.yaml"
data_args = ["--data", data] if data else []
outputs = shipped_outputs(rewards) if policies == "shipped" else {}
for reward in rewards if policies == "train" else []:
    outputs[reward] = run_training(cfg_path, f"{runs_dir}/{config}-{reward}", reward=reward, max_steps=max_steps,
                                   max_minutes=max_minutes, launch=launch, accelerate_config=accelerate_config,
                                   extra_args=[*data_args, *extra_args])
outputs

# %%
plot_training(outputs, out=f"{reports_dir}/figures/03_training_curves.png");

# %% [markdown]
# Every checkpoint, scored as `think2seg eval` scores a prompter (greedy, its own generation settings; not the
# training-time sampling): `think2seg eval --checkpoints RUN_DIR`. Shipped policies keep no checkpoints, so
# with `policies = "shipped"` the table committed for this config (`reports/tables/03_checkpoints_<config>.csv`,
# from a run of this notebook or of the command) is plotted instead, when there is one.

# %%
import pandas as pd

from think2seg.evaluation.checkpoints import evaluate_checkpoints, plot_checkpoints

ckpt_csv = Path(reports_dir) / "tables" / f"03_checkpoints_{config}.csv"
scored = {reward: evaluate_checkpoints(out, f"{runs_dir}/checkpoints/{reward}", split=eval_split, questions="all",
                                       question_kind=eval_question_kind, limit=eval_limit, start=True)
          for reward, out in outputs.items() if score_checkpoints and policies == "train"}
if scored:
    ckpts = pd.concat([df.assign(run=reward) for reward, df in scored.items()], ignore_index=True)
    save_table(ckpts.set_index(["run", "step"]), f"03_checkpoints_{config}", reports_dir)
else:
    ckpts = pd.read_csv(ckpt_csv) if ckpt_csv.is_file() else None
if ckpts is not None:
    plot_checkpoints(ckpts, out=f"{reports_dir}/figures/03_checkpoints_{config}.png", title=config)
ckpts

# %% [markdown]
# Run health (`think2seg.training.health`): the step at which each rule fired on each run (NaN: never) and the
# moving-window means at the end: zero-variance groups (no learning signal), mean completion length against
# its start, format-reward rate, IoU reward, KL. Runs trained here wrote `health.json` during training;
# shipped policies are replayed from their logged metrics (`trainer_state.json`).

# %%
health = health_table(outputs)
save_table(health, f"03_health_{config}", reports_dir)
health

# %% [markdown]
# Rows: the starting model; each trained policy; the constant box (`fixed`, no question read); the starting
# model on questions that name the category (what learning question -> category alone would reach); each
# trained policy asked the questions of OTHER images (`think2seg eval --shuffle-questions`): a policy that reads
# the question drops there, one that answers from the image alone does not.

# %%
runs = before_after(outputs, f"{runs_dir}/eval", split=eval_split, question_kind=eval_question_kind, limit=eval_limit,
                    reference_question_kind=reference_question_kind)
table = metrics_table(runs)
save_table(table, f"03_before_after_{config}", reports_dir)
table

# %% [markdown]
# Does the policy answer the question, or did it find one box that scores everywhere? Distinct answers,
# the share of the most frequent answer, how often `<think>` names the asked category (SynthEarth
# records carry it) and the share of the image inside the answer's boxes. A collapsed policy has a
# top-answer share near 1, a box area near the constant box's and scores like it.

# %%
diag = answer_diagnostics(runs)
save_table(diag, f"03_answer_diagnostics_{config}", reports_dir)
diag

# %%
example_completions(runs, n=n_examples)

# %% [markdown]
# The same questions before and after GRPO, in the viewer's panels (prompts drawn on the image, the mask, the
# reasoning): the `gallery_n` samples each policy improved most and the `gallery_n` it made worse. One
# self-contained HTML page per policy under `reports/figures/`.

# %%
from think2seg.reports.viewer.gallery import before_after_gallery

before_after_gallery(runs, f"{reports_dir}/figures", config, n=gallery_n)
