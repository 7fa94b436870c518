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
# # 04 — Benchmarks: Tables 1, 2 and 3
#
# **Table 1**, reasoning segmentation (gIoU, cIoU, P@0.5 on val and test): the zero-shot prompters and
# the GRPO policy of each reward scheme (`think2seg`, `segzero`, `visionreasoner`, `remotereasoner`: the
# decoupled rows). **Table 2**, empty-target rejection: on every empty-target sample, how many are rejected
# (TRUE) or not (FALSE). **Table 3**, zero-shot transfer to referring segmentation (RRSIS-D, RISBench,
# RefSegRS). Every table is computed under each protocol of `protocols` and names it: the prompter runs
# once and the other protocols score the same completions. On the **embedded** profile the data is
# SynthEarth (its referring formats for Table 3), the prompters the shipped tiny models and the segmenter
# GrabCut; on the **paper** profile, point the parameters at EarthReason, your checkpoints and `sam2:small`,
# and set `published = True` to print the paper's figures beside ours (rows with source `paper`).

# %% tags=["parameters"]
data = None  # FORMAT:DIR; None: the default SynthEarth
prompters = {
    "oracle (components, ceiling)": "oracle?image_size=256",
    "constant box (fixed)": "fixed?image_size=112",
    "tiny warm start (zero-shot)": "tiny",
    "GRPO think2seg": "tiny-grpo",
    "GRPO segzero": "tiny-grpo-segzero",
    "GRPO visionreasoner": "tiny-grpo-visionreasoner",
    "GRPO remotereasoner": "tiny-grpo-remotereasoner",
}
rejection_prompters = ["tiny warm start (zero-shot)", "GRPO think2seg", "GRPO segzero", "GRPO visionreasoner",
                       "GRPO remotereasoner"]  # labels of prompters for Table 2
transfer = {"RRSIS-D": "synthearth:rrsisd", "RISBench": "synthearth:risbench", "RefSegRS": "synthearth:refsegrs"}
splits = ["val", "test"]
protocols = ["authors", "segearth-r1"]
segmenter = "grabcut"
question_kind = "implicit"  # None for datasets without kinds (EarthReason)
limit = 24  # samples per split and prompter (None: all)
rejection_limit = None  # empty-target samples per split (None: all)
transfer_limit = 12
published = False  # add the paper's figures as rows (paper profile)
sampled_prompters = {}  # Table 1 rows decoded by sampling, one run per seed: mean, std (column ±) and seeds
sample_temperature = 1.0
sample_seeds = [0, 1, 2]
runs_dir = "runs/04_benchmarks"
reports_dir = "reports"

# %%
from think2seg.reports import benchmarks as bm
from think2seg.reports.results import save_table

# %% [markdown]
# ## Table 1 — reasoning segmentation

# %%
t1 = bm.table1(prompters, runs_dir, data=data, splits=splits, protocols=protocols, segmenter=segmenter,
               question_kind=question_kind, limit=limit, published=published, sampled=sampled_prompters,
               sample_temperature=sample_temperature, sample_seeds=sample_seeds)
save_table(t1, "04_table1_reasoning_segmentation", reports_dir)
t1

# %% [markdown]
# ## Table 2 — empty-target rejection (TRUE = rejected: authors, the answer is `[]`; segearth-r1, the mask is empty)

# %%
t2 = bm.table2({k: prompters[k] for k in rejection_prompters}, runs_dir, data=data, splits=splits,
               protocols=protocols, segmenter=segmenter, question_kind=question_kind, limit=rejection_limit,
               published=published)
save_table(t2, "04_table2_rejection", reports_dir)
t2

# %% [markdown]
# ## Table 3 — zero-shot transfer to referring segmentation

# %%
t3 = bm.table3(prompters, runs_dir, transfer, protocols=protocols, segmenter=segmenter, limit=transfer_limit,
               published=published)
save_table(t3, "04_table3_zero_shot_transfer", reports_dir)
t3

# %%
fig = bm.plot_table1(t1, out=f"{reports_dir}/figures/04_table1_gIoU.png")
