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
# # 05 — Ablations: Tables 4, 5, 6 and Fig. 4
#
# **Table 4**, the LVLM prompter: every prompter of `lvlm_prompters` that exists here is measured; the others
# are listed with what they need, and catalogued architectures with their parameter counts and (with
# `prompter_encoder_timings`) their vision tower's CPU time for one image, random weights. **Table 5**, SAM2 size: parameters, image-encoder milliseconds (one pass,
# Fig. 4's image) and peak memory per size; the shipped mini sizes (`sam2:mini-t`, `sam2:mini-s`: sam2's own
# classes at a mini size, trained on SynthEarth, docs/sam2.md) with their weights, the official sizes with
# random weights (`sam2:<size>:random`: these are properties of the architecture); quality (gIoU, cIoU with
# `quality_prompter`) for each size whose weights are here, and for GrabCut beside them. **Fig. 4**: one
# image segmented by each segmenter (with random weights the SAM2 masks are meaningless: the panels say so). **Table 6**, the prompt combination:
# each prompter of `style_prompters` answering in each of the five styles.

# %% tags=["parameters"]
data = None  # FORMAT:DIR; None: the default SynthEarth
lvlm_prompters = {
    "LLaVA-1.5-7B": "hf:/models/llava-1.5-7b-hf",
    "InternVL3-2B": "hf:/models/InternVL3-2B-hf?image_size=896",
    "InternVL3-8B": "hf:/models/InternVL3-8B-hf?image_size=896",
    "Qwen2.5-VL-3B": "hf:/models/Qwen2.5-VL-3B-Instruct",
    "Qwen2.5-VL-7B": "hf:/models/Qwen2.5-VL-7B-Instruct",
    "Qwen3-VL-2B": "hf:/models/Qwen3-VL-2B-Instruct",
    "Qwen3-VL-4B": "hf:/models/Qwen3-VL-4B-Instruct",
    "Qwen3.5-0.8B": "hf:/models/Qwen3.5-0.8B",
    "Qwen3.5-27B": "hf:/models/Qwen3.5-27B",
    "tiny Qwen2.5-VL warm start": "tiny",
    "tiny Qwen2.5-VL + GRPO (think2seg)": "tiny-grpo",
}
prompter_encoder_timings = True  # catalogued rows without weights: time the full-size vision tower, random weights
sam2_sizes = ["mini-t", "mini-s", "tiny", "small", "base+", "large"]
hf_segmenters = {  # transformers' SAM models (docs/models.md); without weights: random-weight timings only
    "SAM2.1-S (transformers)": "hf-sam2:/models/sam2.1-hiera-small",
    "SAM-HQ ViT-B": "samhq:/models/sam-hq-vit-base",
    "SAM3 tracker": "sam3:/models/sam3",
}
quality_prompter = {  # one label: spec, the prompts behind the quality columns of Table 5
    "oracle (whole mask)": "oracle:whole?image_size=256",
}
style_prompters = {
    "oracle (components)": "oracle?image_size=256",
    "tiny warm start": "tiny",
    "GRPO think2seg": "tiny-grpo",
}
styles = ["bbox", "2pos", "bbox+2pos", "bbox+4pos", "bbox+2pos+2neg"]
splits = ["val", "test"]
segmenter = "grabcut"
protocol = "authors"
question_kind = "implicit"  # None for datasets without kinds (EarthReason)
limit = 24
published = False  # add the paper's figures as rows (paper profile)
sampled_style_prompters = {}  # Table 6 rows decoded by sampling, one run per seed: mean, std (column ±), seeds
sample_temperature = 1.0
sample_seeds = [0, 1, 2]
stability_checks = []  # GrabCut perturbations per Table 6 row, e.g. image_lsb, points_1px: columns tol, flipping, stable
runs_dir = "runs/05_ablations"
reports_dir = "reports"

# %%
from think2seg.reports import ablations as ab
from think2seg.reports.results import save_table

# %% [markdown]
# ## Table 4 — the LVLM prompter

# %%
t4 = ab.table4(lvlm_prompters, runs_dir, data=data, splits=splits, segmenter=segmenter, protocol=protocol,
               question_kind=question_kind, limit=limit, published=published, encoder_timings=prompter_encoder_timings)
save_table(t4, "05_table4_lvlm_prompter", reports_dir)
t4

# %% [markdown]
# ## Table 5 — SAM2 size (and GrabCut), Fig. 4

# %%
t5, fig4_masks = ab.table5(sam2_sizes, runs_dir, data=data, prompter=quality_prompter, splits=splits,
                           protocol=protocol, question_kind=question_kind, limit=limit, published=published,
                           segmenters=hf_segmenters)
save_table(t5, "05_table5_sam2_size", reports_dir)
t5

# %%
fig = ab.figure4(fig4_masks, out=f"{reports_dir}/figures/05_fig4_segmenter_sizes.png")

# %% [markdown]
# ## Table 6 — the prompt combination

# %%
t6 = ab.table6(style_prompters, runs_dir, styles=styles, data=data, splits=splits, segmenter=segmenter,
               protocol=protocol, question_kind=question_kind, limit=limit, published=published,
               sampled=sampled_style_prompters, sample_temperature=sample_temperature, sample_seeds=sample_seeds,
               stability=stability_checks)
save_table(t6, "05_table6_prompt_combination", reports_dir)
t6
