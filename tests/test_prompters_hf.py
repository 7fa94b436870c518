"""HFPrompter on tiny random-init models of each real class, saved and reloaded offline (no mocks).

Each family (Qwen2.5-VL, InternVL3, LLaVA-1.5) is built by tests/tiny_models.py, written
with save_pretrained to a temp dir, and driven through exactly the code path a GPU user runs.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tiny_models import build_tiny  # noqa: E402

from think2seg.core.types import Sample  # noqa: E402
from think2seg.prompters import HFPrompter, build_prompter, parse_spec  # noqa: E402

# family -> (builder kwargs, image_size the prompter runs at, image tokens per sample at that size)
FAMILY_SETUP = {
    "qwen2.5-vl": ({"image_size": 56}, 56, (56 // 28) ** 2),
    "internvl3": ({"tile_size": 56}, 112, (2 * 2 + 1) * (56 // 28) ** 2),  # 2x2 tiles + thumbnail
    "llava": ({"image_size": 56}, 56, (56 // 14) ** 2),
}
DEFAULT_SIZES = {"qwen2.5-vl": 840, "internvl3": 896, "llava": 336}
FAMILIES = sorted(FAMILY_SETUP)


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_lvlms")
    out = {}
    for fam in FAMILIES:
        build_tiny(fam, root / fam, **FAMILY_SETUP[fam][0])
        out[fam] = root / fam
    return out


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    questions = ["Where is the runway?", "Which large round tanks store oil near the harbour?", "Roads?"]
    out = []
    for i, q in enumerate(questions):
        path = root / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (40 + 30 * i, 90, 3), dtype=np.uint8)).save(path)
        out.append(
            Sample(id=f"s{i}", image_id=str(i), question=q, image_path=path, dataset="unit", split="test")
        )
    return out


def _prompter(tiny_dirs, fam, **kw):
    kw.setdefault("image_size", FAMILY_SETUP[fam][1])
    kw.setdefault("max_new_tokens", 6)
    kw.setdefault("batch_size", 4)
    return HFPrompter(tiny_dirs[fam], **kw)


@pytest.mark.parametrize("fam", FAMILIES)
def test_family_and_default_size_come_from_the_config(tiny_dirs, fam):
    p = HFPrompter(tiny_dirs[fam])
    assert p.family.name == fam
    assert p.image_size == (DEFAULT_SIZES[fam],) * 2
    assert p.name == f"hf:{tiny_dirs[fam]}"
    assert p._model is None  # lazy: nothing loaded yet


@pytest.mark.parametrize("fam", FAMILIES)
def test_greedy_and_seeded_sampling(tiny_dirs, samples, fam):
    p = _prompter(tiny_dirs, fam)
    greedy = p.generate(samples)  # one left-padded batch of 3 prompts of different lengths
    assert len(greedy) == len(samples)
    assert all(len(g) == 1 and isinstance(g[0], str) and g[0] for g in greedy)
    # greedy is deterministic and does not depend on the padding: the short prompt alone gives the same
    assert p.generate(samples[:1]) == greedy[:1]
    # n=2 with batch_size=4: two samples (four sequences) per batch, so two batches here
    a = p.generate(samples, n=2, temperature=1.0, seed=7)
    assert [len(x) for x in a] == [2] * len(samples)
    assert all(isinstance(t, str) for x in a for t in x)
    assert p.generate(samples, n=2, temperature=1.0, seed=7) == a  # same seed, same completions
    assert p.generate(samples, n=2, temperature=1.0, seed=8) != a  # another seed, other completions
    assert any(x[0] != x[1] for x in a)  # the n samples of one prompt differ (sampling is not greedy)


@pytest.mark.parametrize("fam", FAMILIES)
def test_left_padding_keeps_every_image_token(tiny_dirs, samples, fam):
    p = _prompter(tiny_dirs, fam)
    inputs = p.prepare(samples[:2], repeat=2)
    ids, att = inputs["input_ids"], inputs["attention_mask"]
    assert ids.shape[0] == 4
    assert att[:, -1].all()  # left padding: every row ends with a real token
    lengths = att.sum(1)
    assert lengths[0] < lengths[2]  # the short question is padded ...
    assert not att[0, 0] and att[2, 0]  # ... on the left
    image_token_id = p.model.config.image_token_id
    per_row = (ids == image_token_id).sum(1).tolist()
    assert per_row == [FAMILY_SETUP[fam][2]] * 4


def test_qwen_processor_is_told_not_to_resize_again(tiny_dirs, samples):
    # the saved processor is fixed at 56 px (4 tokens); the prompter at 84 px must get 3x3 = 9 tokens
    p = _prompter(tiny_dirs, "qwen2.5-vl", image_size=84)
    inputs = p.prepare(samples[:1])
    assert inputs["image_grid_thw"].tolist() == [[1, 6, 6]]
    assert int((inputs["input_ids"] == p.model.config.image_token_id).sum()) == 9
    assert len(p.generate(samples[:1])[0]) == 1
    with pytest.raises(ValueError, match="multiple of 28"):
        _prompter(tiny_dirs, "qwen2.5-vl", image_size=70).load()


def test_models_load_once_per_process(tiny_dirs):
    a = _prompter(tiny_dirs, "llava")
    b = _prompter(tiny_dirs, "llava", style="bbox", image_size=56)
    assert a.model is b.model and a.processor is b.processor
    assert not a.model.training
    assert a.model.dtype.is_floating_point and str(a.model.dtype) == "torch.float32"  # fp32 on CPU


def test_prompt_is_the_chat_template_of_the_reference_messages(tiny_dirs):
    p = _prompter(tiny_dirs, "llava", style="bbox")
    text = p.prompt_text("Where is the runway?")
    assert text.startswith("You are a remote sensing analysis assistant.")
    assert 'USER: <image>\nPlease find "Where is the runway?"' in text
    assert "positive_points" not in text  # the bbox style's instruction
    assert text.endswith("ASSISTANT:")
    q = _prompter(tiny_dirs, "internvl3")
    assert q.prompt_text("x").endswith("</answer><|im_end|>\n<|im_start|>assistant\n")


def test_hf_specs_route_options(tiny_dirs):
    d = tiny_dirs["internvl3"]
    p = build_prompter(f"hf:{d}?image_size=112&style=bbox+2pos+2neg&batch_size=2&max_new_tokens=5")
    assert isinstance(p, HFPrompter)
    assert (p.image_size, p.style.name, p.batch_size, p.max_new_tokens) == (
        (112, 112),
        "bbox+2pos+2neg",
        2,
        5,
    )
    p = build_prompter(f"hf:{d}?family=internvl", image_size=(112, 56), trust_remote_code=False)
    assert p.family.name == "internvl3" and p.image_size == (112, 56)
    assert parse_spec("hf:org/model?image_size=64x32&trust_remote_code=true") == (
        "hf",
        "org/model",
        {"image_size": (64, 32), "trust_remote_code": True},
    )


def test_tiny_spec_is_routed_to_the_tiny_prompter(tiny_dirs):
    from think2seg.prompters.tiny import TinyPrompter

    p = build_prompter(f"tiny:{tiny_dirs['qwen2.5-vl']}")
    assert isinstance(p, TinyPrompter) and p.image_size == (56, 56)


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda d, t: HFPrompter(t / "nope"), FileNotFoundError, "nope: no such model directory"),
        (lambda d, t: HFPrompter(t), FileNotFoundError, "no config.json"),
        (lambda d, t: HFPrompter(d["llava"], family="blip"), ValueError, "unknown LVLM family 'blip'"),
        (lambda d, t: HFPrompter(d["llava"], template="fancy"), ValueError, "unknown template"),
        (lambda d, t: HFPrompter(d["llava"], style="bbox+3pos"), ValueError, "unknown prompt style"),
        (lambda d, t: build_prompter("hf:"), ValueError, "needs a local directory or a hub id"),
        (lambda d, t: build_prompter(f"hf:{d['llava']}?colour=red"), ValueError, "bad option"),
        (lambda d, t: build_prompter("gpt:4"), ValueError, "unknown prompter kind 'gpt'"),
        (lambda d, t: HFPrompter("no-such-org/no-such-model-t2s"), OSError, "no-such-org/no-such-model-t2s"),
    ],
)
def test_errors_name_the_path_or_option(tiny_dirs, tmp_path, make, exc, match):
    with pytest.raises(exc, match=match):
        make(tiny_dirs, tmp_path)


def test_unknown_model_type_names_the_dir_and_the_family_option(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "internvl_chat"}))
    with pytest.raises(ValueError, match=r"internvl_chat.*-hf.*family="):
        HFPrompter(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match=str(tmp_path)):
        HFPrompter(tmp_path)


def test_greedy_with_n_above_one_is_refused(tiny_dirs, samples):
    p = _prompter(tiny_dirs, "llava")
    with pytest.raises(ValueError, match="temperature > 0"):
        p.generate(samples, n=2)


def test_attach_wraps_a_live_model_like_a_loaded_one(tiny_dirs, samples):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    d = tiny_dirs["llava"]
    model = LlavaForConditionalGeneration.from_pretrained(d, local_files_only=True).eval()
    live = HFPrompter.attach(model, AutoProcessor.from_pretrained(d), image_size=56, max_new_tokens=6)
    assert live.name == "live" and live.family.name == "llava" and live.model is model
    assert live.generate(samples[:2]) == _prompter(tiny_dirs, "llava").generate(samples[:2])


@pytest.fixture(scope="module")
def qwen_released_gen(tiny_dirs, tmp_path_factory):
    """The tiny Qwen2.5-VL with a generation config like Qwen's releases (repetition penalty 1.05, top-k 1)."""
    import shutil

    d = tmp_path_factory.mktemp("qwen_rp") / "qwen"
    shutil.copytree(tiny_dirs["qwen2.5-vl"], d)
    path = d / "generation_config.json"
    cfg = json.loads(path.read_text())
    cfg.update(repetition_penalty=1.05, do_sample=True, top_k=1, top_p=0.001, temperature=0.1)
    path.write_text(json.dumps(cfg))
    return d


def test_authors_generation_ignores_the_checkpoint_config(qwen_released_gen, samples):
    ckpt = HFPrompter(qwen_released_gen, image_size=56, max_new_tokens=12)
    authors = HFPrompter(qwen_released_gen, image_size=56, generation="authors")
    assert ckpt.generation_parameters()["repetition_penalty"] == 1.05
    params = authors.generation_parameters()
    assert params == {
        "generation": "authors",
        "do_sample": False,
        "temperature": 1.0,
        "top_p": 1.0,
        "top_k": 50,
        "repetition_penalty": 1.0,
        "max_new_tokens": 2048,
        "num_beams": 1,
    }
    # what generate() really uses once transformers has filled unset fields from the checkpoint
    effective = authors.model._prepare_generation_config(authors._generation_config(0.0))[0]
    assert effective.repetition_penalty == 1.0 and effective.do_sample is False
    assert effective.eos_token_id == ckpt.model.generation_config.eos_token_id
    short = HFPrompter(qwen_released_gen, image_size=56, generation="authors", generation_kwargs={"max_new_tokens": 12})
    neutral = HFPrompter(qwen_released_gen, image_size=56, max_new_tokens=12, generation_kwargs={"repetition_penalty": 1.0})
    assert short.generate(samples) == neutral.generate(samples)
    with pytest.raises(ValueError, match="greedy"):
        short.generate(samples[:1], temperature=0.7)
    with pytest.raises(ValueError, match="unknown generation 'sampled'"):
        HFPrompter(qwen_released_gen, generation="sampled")


def test_authors_protocol_evaluates_with_the_authors_generation(qwen_released_gen, synth_root, tmp_path):
    from think2seg.evaluation.engine import EvalConfig, evaluate

    run = tmp_path / "run"
    for protocol, penalty in (("strict", 1.05), ("authors", 1.0)):
        cfg = EvalConfig(
            data=f"earthreason:{synth_root}",
            split="val",
            prompter=f"hf:{qwen_released_gen}?image_size=56&max_new_tokens=4",
            segmenter="grabcut",
            protocol=protocol,
            limit=1,
            out=str(run / protocol),
        )
        evaluate(cfg, progress=False)
        recorded = json.loads((run / protocol / "config.json").read_text())
        assert recorded["generation"]["repetition_penalty"] == penalty
        assert recorded["parse_policy"] == ("released-test" if protocol == "authors" else "lenient")
