"""Shared pytest fixtures.

- ``synth_root``: a tiny SynthEarth dataset in EarthReason format (12/6/6 images at 128 px, seed 0),
  generated once per test session; read it with ``load_dataset(str(synth_root), split)``. Tests must
  not write into it (copy it with ``shutil.copytree`` first when a test needs to damage files).
- ``synth_formats``: ``{format: root}`` for the referring formats (rrsisd, refsegrs, risbench), same sizes.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SYNTH_FIXTURE = {"n_train": 12, "n_val": 6, "n_test": 6, "seed": 0, "size": 128}


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    from think2seg.data import synth

    root = tmp_path_factory.mktemp("synthearth") / "earthreason"
    synth.generate(root, format="earthreason", progress=False, **SYNTH_FIXTURE)
    return root


@pytest.fixture(scope="session")
def synth_formats(tmp_path_factory, synth_root):
    from think2seg.data import synth

    roots = {"earthreason": synth_root}
    for fmt in ("rrsisd", "refsegrs", "risbench"):
        roots[fmt] = tmp_path_factory.mktemp("synthearth") / fmt
        synth.generate(roots[fmt], format=fmt, progress=False, **SYNTH_FIXTURE)
    return roots


@pytest.fixture(scope="session")
def tiny_policy(tmp_path_factory):
    """A random-init tiny Qwen2.5-VL of the real class (56 px, compact template) saved with its processor
    and a ``think2seg_prompter.json``, as ``think2seg train`` leaves a policy."""
    import json

    from think2seg.prompters.tinybuild import build_tiny_qwen2_5_vl, train_bpe_tokenizer

    d = tmp_path_factory.mktemp("policy")
    tok = train_bpe_tokenizer(
        ["<think>The request refers to runway.</think> <answer>```json[]```</answer> bbox_2d positive_points"]
        * 4,
        vocab_size=300,
        number_tokens=56,
    )
    build_tiny_qwen2_5_vl(tok, d, image_size=56)
    (d / "think2seg_prompter.json").write_text(json.dumps({"template": "compact", "image_size": 56}))
    return d
