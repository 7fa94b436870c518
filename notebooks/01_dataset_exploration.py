# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 — Dataset exploration
#
# Counts per split, the empty-target share, category, mask-area and question-length distributions, and a
# grid of examples with their masks and questions. By default it runs on **SynthEarth**, the embedded
# procedural dataset (generated once under `data/synthearth/`, then reused); point `data` at real data
# (`earthreason:/path/to/EarthReason`, `rrsisd:...`, `refsegrs:...`, `risbench:...`) to explore that, or at
# a dataset built from your own GeoTIFFs and labels by `think2seg dataset build --out data/mine`
# (`data = "earthreason:data/mine"`; docs/datasets.md, "Your own data").
# Figures are shown and saved under `figures_dir`. The same numbers come from
# `think2seg data-stats FORMAT:DIR`.

# %% tags=["parameters"]
data = "synthearth"  # the default SynthEarth (generated once), or FORMAT:DIR: earthreason:/data/EarthReason, earthreason:data/mine
split = "test"  # split for the distributions and the example grid
n_examples = 8
questions = "all"  # question policy: first | random | all
seed = 0
figures_dir = "reports/figures"

# %%
from think2seg.data import load_dataset
from think2seg.data import stats as st

spec = st.resolve(data)
print(spec)

# %% [markdown]
# ## Counts per split

# %%
summary = st.split_summary(spec)
st.summary_frame(summary)

# %%
fig = st.plot_split_counts(summary)
st.save_figure(fig, "01_split_counts", figures_dir)

# %% [markdown]
# ## Distributions in one split

# %%
ds = load_dataset(spec, split, questions=questions, seed=seed)
ds.summary()

# %%
fig = st.plot_categories(ds)
st.save_figure(fig, "01_categories", figures_dir)

# %%
fig = st.plot_mask_area(ds)
st.save_figure(fig, "01_mask_area", figures_dir)

# %%
fig = st.plot_question_lengths(ds)
st.save_figure(fig, "01_question_lengths", figures_dir)

# %% [markdown]
# ## Examples (red = target mask; `[empty]` = the question asks for something absent)

# %%
fig = st.plot_examples(ds, n_examples, seed=seed)
st.save_figure(fig, "01_examples", figures_dir)
