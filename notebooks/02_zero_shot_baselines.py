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
# # 02 — Zero-shot baselines
#
# Prompter + segmenter pairs evaluated without any GRPO training. On the **embedded** profile
# (SynthEarth, GrabCut) the oracle prompter (prompts derived from the ground-truth mask) is the
# segmenter's ceiling and the warm-started tiny prompter, which has only seen explicit questions, is
# the floor on implicit ones; the constant box answers every question with the same near-whole-image
# prompt (a trained prompter only reasons if it beats that). On the **paper** profile, point `prompters` at Qwen2.5-VL-3B/7B
# (`hf:/path`) and `segmenter` at `sam2:small` for the Table 3 rows. Every run is resumable and
# lands in `runs_dir/<label>/` (records.jsonl, metrics.json, config.json).

# %% tags=["parameters"]
data = None  # FORMAT:DIR; None: the default SynthEarth dataset (generated on first use)
split = "val"
prompters = {
    "oracle (components)": "oracle?image_size=256",
    "oracle (whole mask)": "oracle:whole?image_size=256",
    "constant box (no question)": "fixed?image_size=112",
    "tiny warm start": "tiny",
}
question_kinds = ["explicit", "implicit"]  # [None] for datasets without kinds (EarthReason)
segmenter = "grabcut"
style = "bbox+2pos"
protocol = "authors"
questions = "all"
limit = 60
runs_dir = "runs/02_zero_shot"
reports_dir = "reports"
n_examples = 6

# %%
import pandas as pd

from think2seg.data import synth
from think2seg.evaluation.engine import evaluate_many
from think2seg.reports.results import metrics_table, plot_examples, save_table

data = data or f"earthreason:{synth.ensure_default()}"
print("data:", data)

# %%
tables = {}
for kind in question_kinds:
    runs = evaluate_many(prompters, f"{runs_dir}/{kind or 'all'}", data=data, split=split, segmenter=segmenter,
                         style=style, protocol=protocol, questions=questions, question_kind=kind, limit=limit,
                         keep_masks=True)
    tables[kind or "all"] = metrics_table(runs)
table = pd.concat(tables, names=["questions", "prompter"])
save_table(table, "02_zero_shot", reports_dir)
table

# %%
last = list(prompters)[-1]
for kind in question_kinds:
    plot_examples(f"{runs_dir}/{kind or 'all'}/{runs[last].name}", n=n_examples,
                  out=f"{reports_dir}/figures/02_examples_{kind or 'all'}.png")
