"""The mini SAM2 sizes: built by sam2's own builder from the shipped configs, trained by ``sam2-train``
(a two-step smoke run on a tiny SynthEarth), exported as float16 and loaded back like an official
checkpoint; SAM-style prompt sampling. Budget: a few seconds of encoder passes at 256 px."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from think2seg.cli import main
from think2seg.data.synth import generate
from think2seg.segmenters import build_segmenter, parse_segmenter_spec
from think2seg.segmenters.checkpoints import (
    CheckpointNotFoundError,
    resolve_sam2_checkpoint,
    shipped_sam2_checkpoints,
    shipped_sam2_config,
)
from think2seg.segmenters.sam2 import SAM2Segmenter, build_sam2_model, feature_sizes
from think2seg.segmenters.sam2_prompts import PROMPT_KINDS, sample_prompt
from think2seg.segmenters.sam2_train import (
    TrainConfig,
    blank_features,
    load_train_config,
    train_sam2,
    train_step,
)
from think2seg.segmenters.spec import SHIPPED_SAM2


@pytest.mark.parametrize("size", list(SHIPPED_SAM2))
def test_shipped_configs_build_through_sam2s_own_builder(size):
    from hydra.core.global_hydra import GlobalHydra
    from sam2.build_sam import build_sam2
    from sam2.modeling.backbones.hieradet import Hiera
    from sam2.modeling.sam2_base import SAM2Base

    assert shipped_sam2_config(size).is_file()
    model = build_sam2_model(size)
    assert isinstance(model, SAM2Base) and isinstance(model.image_encoder.trunk, Hiera)
    assert model.image_size == 256 and feature_sizes(model) == [(64, 64), (32, 32), (16, 16)]
    assert sum(p.numel() for p in model.parameters()) < 10_000_000  # float16 <= 20 MB
    # sam2's own config search path is back: the official configs still build by their package names
    assert GlobalHydra.instance().is_initialized()
    build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu")


def test_specs_name_the_shipped_sizes():
    assert str(parse_segmenter_spec("sam2:mini-t")) == "sam2:mini-t"
    assert str(parse_segmenter_spec("sam2:mini_s:random")) == "sam2:mini-s:random"
    assert set(shipped_sam2_checkpoints()) == set(SHIPPED_SAM2)


def test_a_missing_shipped_checkpoint_names_the_command_that_builds_it(tmp_path, monkeypatch):
    import think2seg.segmenters.checkpoints as checkpoints

    monkeypatch.setattr(checkpoints, "MINI_DIR", tmp_path)  # a checkout whose weights were not built
    assert shipped_sam2_checkpoints() == {size: None for size in SHIPPED_SAM2}
    with pytest.raises(CheckpointNotFoundError, match="sam2-train --config configs/sam2_mini/mini-s.yaml"):
        resolve_sam2_checkpoint("mini-s")


@pytest.mark.parametrize("size", list(SHIPPED_SAM2))
def test_shipped_mini_checkpoints_load_like_official_ones(size):
    path = shipped_sam2_checkpoints()[size]
    assert path is not None, f"think2seg/assets/sam2_mini/{size}.pt is shipped"
    assert path.stat().st_size <= 20 * 2**20
    state = torch.load(path, map_location="cpu", weights_only=True)["model"]
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}
    seg = build_segmenter(f"sam2:{size}", device="cpu")
    assert seg.name == f"sam2:{size}" and not seg.random and seg.checkpoint == path
    model = seg.predictor.model
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(model.state_dict()[k].half(), state[k]) for k in state if state[k].is_floating_point())
    assert not model.training and seg.decoder_path == "cached"


@pytest.mark.parametrize("kind", PROMPT_KINDS)
def test_prompt_sampling_is_sam_style(kind):
    rng = np.random.default_rng(1)
    mask = np.zeros((80, 96), bool)
    mask[20:40, 30:70] = True
    for _ in range(20):
        coords, labels = sample_prompt(rng, mask, kind)
        assert coords.shape == (len(labels), 2) and coords.dtype == np.float32
        has_box = kind != "points"
        assert (labels[:2].tolist() == [2, 3]) == has_box  # box corners first, as _predict builds them
        pts, lab = (coords[2:], labels[2:]) if has_box else (coords, labels)
        assert set(lab.tolist()) <= {0, 1} and (lab == 1).sum() >= (0 if kind == "box" else 1)
        assert (coords[:, 0] >= 0).all() and (coords[:, 0] <= 95).all() and (coords[:, 1] <= 79).all()
        for (x, y), v in zip(pts.astype(int), lab, strict=True):
            assert mask[y, x] == (v == 1)  # positives on the mask, negatives off it
        if has_box:
            x1, y1, x2, y2 = coords[:2].ravel()
            assert x1 <= x2 and y1 <= y2 and abs(x1 - 30) <= 20 and abs(y2 - 39) <= 20
        if kind == "oracle":
            assert coords[:2].ravel().tolist() == [30, 20, 69, 39] and labels.tolist() == [2, 3, 1, 1]
    with pytest.raises(ValueError, match="unknown prompt kind"):
        sample_prompt(rng, mask, "scribble")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("se")
    generate(root, n_train=4, n_val=2, n_test=1, seed=0, size=64, progress=False)
    return root


def test_two_step_training_resumes_and_exports_a_loadable_checkpoint(tiny_data, tmp_path):
    recipe = tmp_path / "mini.yaml"
    recipe.write_text(f"model: mini-t\ndata: earthreason:{tiny_data}\nsteps: 2\nimages_per_step: 2\n"
                      "prompts_per_image: 2\nval_every: 2\nval_images: 1\ncheckpoint_every: 1\n")
    out = tmp_path / "run"
    first = train_sam2(load_train_config(recipe), out, progress=False)
    assert first["steps_done"] == 2 and len(first["curve"]["train"]) == 2 and len(first["curve"]["val"]) == 1
    assert all(np.isfinite(r["loss"]) for r in first["curve"]["train"])
    assert first["peak_rss_mb"] < 8192 and first["export_mb"] <= 20
    again = train_sam2(load_train_config(recipe, steps=3), out, progress=False)  # resumes at step 2
    assert again["resumed_from"] == 2 and again["steps_done"] == 3
    assert [r["loss"] for r in again["curve"]["train"][:2]] == [r["loss"] for r in first["curve"]["train"]]
    seg = SAM2Segmenter("mini-t", again["export"], device="cpu")  # the float16 file, as a user passes it
    image = np.zeros((64, 64, 3), np.uint8)
    (mask,) = seg.segment(image, [[parse_instance()]])
    assert mask.shape == (64, 64) and mask.dtype == bool


def test_prompt_warmup_steps_train_the_decoder_alone_on_blank_features():
    from sam2.utils.transforms import SAM2Transforms

    torch.manual_seed(0)
    model = build_sam2_model("mini-t", mode="train")
    embed, high_res = blank_features(model, 3)
    (h0, _), (h1, _), (h2, _) = feature_sizes(model)
    assert embed.shape == (3, 64, h2, h2) and [tuple(f.shape) for f in high_res] == [(3, 8, h0, h0), (3, 16, h1, h1)]
    assert not embed.any() and not any(f.any() for f in high_res)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gt = np.zeros((256, 256), bool)
    gt[40:90, 60:120] = True
    rows = [(0, np.array([[60, 40], [119, 89]], np.float32), np.array([2, 3], np.int32), "box", gt)]
    batch = SAM2Transforms(resolution=256, mask_threshold=0.0).forward_batch([np.zeros((256, 256, 3), np.uint8)])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_step(model, opt, TrainConfig(), batch, rows, blank=True)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert any(k.startswith("sam_mask_decoder.") for k in changed)
    assert not any(k.startswith("image_encoder.") for k in changed)  # the encoder saw no gradient
    train_step(model, opt, TrainConfig(), batch, rows, blank=False)
    assert any(not torch.equal(v, before[k]) for k, v in model.state_dict().items() if k.startswith("image_encoder."))


def parse_instance():
    from think2seg.core.types import Instance

    return Instance(box=(8, 8, 40, 40), positive=((20, 20),))


def test_sam2_train_cli_smoke_and_named_errors(tiny_data, tmp_path, capsys):
    recipe = tmp_path / "mini.yaml"
    recipe.write_text(f"model: mini-t\ndata: earthreason:{tiny_data}\nsteps: 2\nimages_per_step: 1\n"
                      "prompts_per_image: 2\nval_images: 0\n")
    out = tmp_path / "run"
    assert main(["sam2-train", "--config", str(recipe), "--out", str(out), "--no-bars"]) == 0
    report = json.loads((out / "training_report.json").read_text())
    assert report["recipe"]["steps"] == 2 and "git_sha" in report and report["config_file"] == str(recipe)
    assert len(report["result"]["curve"]["train"]) == 2 and (out / "training_curve.png").stat().st_size > 0
    capsys.readouterr()
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: mini-t\nlearning_rate: 1\n")
    assert main(["sam2-train", "--config", str(bad), "--out", str(out)]) == 2
    assert "learning_rate" in capsys.readouterr().err
    bad.write_text("model: small\n")
    assert main(["sam2-train", "--config", str(bad), "--out", str(out)]) == 2
    assert "not a mini size" in capsys.readouterr().err
    assert main(["sam2-train", "--config", str(tmp_path / "none.yaml"), "--out", str(out)]) == 2
