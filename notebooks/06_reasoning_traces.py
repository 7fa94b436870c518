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
# # 06 — Reasoning traces: why did a sample fail?
#
# Two evaluation runs side by side on the same samples — by default notebook 03's starting model and its
# policy after GRPO (`runs/03_grpo/eval/` under the runs folder of the profile, evaluated with stored masks). Per sample: the image with the
# answer's box (red), positive points (green) and negative points (blue), the predicted mask (magenta), the
# ground truth (cyan), the `<think>` text, the raw answer, IoU, format flags and parse warnings.
# Filter by category, question kind, IoU range, outcome on empty targets (true / false rejection) or parse
# failures, and sort by IoU or by the IoU difference of the two runs. Any run of `think2seg eval
# --keep-masks` can be opened. In a headless run (`think2seg reproduce`) the same panels for the samples
# that changed most go into a self-contained page, `06_reasoning_traces.html` in the reports folder.

# %% tags=["parameters"]
runs_root = "runs"  # the runs folder of the profile (think2seg reproduce sets it)
runs = {  # run folders, relative to runs_root (an absolute path is taken as it is)
    "before (tiny)": "03_grpo/eval/before_tiny_",
    "after GRPO (think2seg)": "03_grpo/eval/after_GRPO_think2seg_",
}
reports_dir = "reports"
gallery_sort = "delta"  # iou (first run) | delta (second run minus first) | order
gallery_worst = 12  # the lowest samples of the order
gallery_best = 12  # the highest samples of the order
gallery_filters = []  # the --filter items of `think2seg gallery` (category, kind, iou, parse, outcome)

# %%
from pathlib import Path

from think2seg.reports.viewer import Filter, view, write_gallery

run_dirs = [str(Path(runs_root) / p) for p in runs.values()]
filters = Filter.parse_args(gallery_filters)
page = write_gallery(run_dirs, f"{reports_dir}/06_reasoning_traces.html", labels=list(runs),
                     worst=gallery_worst, best=gallery_best, sort=gallery_sort, filters=filters, progress=False)
print("gallery:", page)

# %% [markdown]
# The viewer (needs a live kernel; in a static copy of this notebook, open the gallery page instead).

# %%
view(run_dirs, labels=list(runs))
