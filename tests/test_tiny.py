"""The embedded tiny prompter: builders, save/reload through the ``tiny:/path`` code, batched generation,
seeded sampling, warm-start targets and whitening, and the shipped checkpoint."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from think2seg.core.parsing import parse_completion  # noqa: E402
from think2seg.core.types import Sample  # noqa: E402
from think2seg.prompters.tiny import ASSET_DIR, TinyPrompter, from_spec, read_meta  # noqa: E402
from think2seg.prompters.tinybuild import build_tiny_qwen2_5_vl, train_bpe_tokenizer  # noqa: E402
from think2seg.warmstart.vision import whiten_merger  # noqa: E402

TEXTS = [
    "Segment the storage tanks in this image.",
    "Where could a plane take off?",
    "<think>The request refers to runways.</think>",
]


def _samples(tmp_path, n=3, size=96):
    import cv2

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        p = tmp_path / f"img{i}.png"
        cv2.imwrite(str(p), img)
        mask = np.zeros((size, size), bool)
        mask[10:30, 20:50] = True
        out.append(
            Sample(id=f"s{i}", image_id=f"img{i}", question=TEXTS[i % 2], image_path=p, dataset="t", split="val",
                   extra={"category": "storage_tank", "kind": "explicit"}, mask_loader=lambda m=mask: m)
        )
    return out


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    tok = train_bpe_tokenizer(TEXTS * 5, vocab_size=300, number_tokens=56)
    build_tiny_qwen2_5_vl(tok, d, image_size=56)
    return d


def test_tokenizer_number_tokens_and_roundtrip():
    tok = train_bpe_tokenizer(TEXTS, vocab_size=300, number_tokens=112)
    ids = tok("[[12, 100], [7, 111]]")["input_ids"]
    assert tok.convert_tokens_to_ids("100") in ids and tok.convert_tokens_to_ids("111") in ids
    assert tok.decode(ids) == "[[12, 100], [7, 111]]"
    for special in ("<|im_start|>", "<|image_pad|>", "<|vision_start|>"):
        assert tok.convert_tokens_to_ids(special) != tok.unk_token_id


def test_reload_and_generate_batch(tiny_dir, tmp_path):
    p = from_spec(f"tiny:{tiny_dir}")
    assert p.image_size == (56, 56) and p.name.startswith("tiny:")
    p.max_new_tokens = 8
    samples = _samples(tmp_path)
    greedy = p.generate(samples)
    assert len(greedy) == 3 and all(len(g) == 1 and isinstance(g[0], str) for g in greedy)
    assert p.generate(samples[:1])[0] == greedy[0]  # batching / left padding does not change greedy output
    a = p.generate(samples, n=2, temperature=1.0, seed=3)
    b = p.generate(samples, n=2, temperature=1.0, seed=3)
    assert a == b and all(len(x) == 2 for x in a)
    # the chat template renders the compact messages with the image first, as Qwen2.5-VL does
    text = p.prompt_text("Where could a plane take off?")
    assert text.index("<|vision_start|><|image_pad|><|vision_end|>") < text.index("Where could")
    assert text.endswith("<|im_start|>assistant\n")


def test_bad_paths_name_the_path():
    with pytest.raises(FileNotFoundError, match="/missing/dir"):
        from_spec("tiny:/missing/dir")
    with pytest.raises(ValueError, match="tiny:"):
        from_spec("tiny:")


def test_union_targets_are_one_instance_over_the_whole_mask():
    from think2seg.warmstart.targets import category_of, target_instances, target_text

    m = np.zeros((56, 56), bool)
    m[5:15, 30:50] = True
    m[30:40, 2:12] = True
    (u,) = target_instances(m)
    assert u.box == (2, 5, 49, 39)  # the tight box of both components
    assert len(u.positive) == 2 and all(m[y, x] for x, y in u.positive)
    assert target_instances(np.zeros((56, 56), bool)) == []
    s = Sample(id="a", image_id="a", question="q", image_path="x", dataset="t", split="t", extra={"category": "building"})
    r = parse_completion(target_text(category_of(s), m), style="bbox+2pos", image_size=56)
    assert r.format_ok and [i.box for i in r.instances] == [(2, 5, 49, 39)] and r.think == "The request refers to buildings."
    r = parse_completion(target_text("buildings", np.zeros((56, 56), bool)), style="bbox+2pos", image_size=56)
    assert r.format_ok and r.is_empty and r.think == "There are no buildings in this image."


def test_scene_examples_are_fresh_explicit_and_consistent():
    from think2seg.data.questions import name_words
    from think2seg.warmstart import WarmstartConfig
    from think2seg.warmstart.scenes import scene_examples

    cfg = WarmstartConfig(sft_scenes=40, sft_per_scene=2, image_size=56, data_size=128, empty_fraction=0.25,
                          sft_blind_fraction=0.0)
    ex = list(scene_examples(cfg))
    assert len(ex) == 80 and len({p.sample.image_id for p in ex}) == 40
    assert [p.target for p in scene_examples(cfg)] == [p.target for p in ex]  # seeded
    # any slice of the stream renders alone to the same examples (scenes are rendered on the fly)
    part = list(scene_examples(cfg, start=10, count=3))
    assert [p.target for p in part] == [p.target for p in ex[20:26]]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(part, ex[20:26], strict=True))
    empty = [p for p in ex if not p.mask.any()]
    assert 0 < len(empty) < 25  # ~ 40 x 0.25 absent-category questions
    for p in ex:
        cat = p.sample.extra["category"]
        assert p.image.shape == (56, 56, 3) and p.mask.shape == (56, 56)
        assert set(p.sample.question.lower().rstrip("?.").split()) & name_words(cat)  # explicit: names it
        r = parse_completion(p.target, style="bbox+2pos", image_size=56)
        assert r.format_ok and r.is_empty == (not p.mask.any())
        for inst in r.instances:  # every positive point lies on the category's mask
            assert all(p.mask[y, x] for x, y in inst.positive)
            assert np.abs(np.subtract(p.present[cat], inst.box)).max() <= 2  # scene boxes agree with the mask


def test_blind_questions_carry_no_information_about_the_target():
    from think2seg.data.questions import IMPLICIT
    from think2seg.warmstart import WarmstartConfig
    from think2seg.warmstart.scenes import scene_examples

    pool = {q: c for c, qs in IMPLICIT.items() for q in qs}
    cfg = WarmstartConfig(sft_scenes=150, sft_per_scene=2, image_size=56, data_size=128, sft_blind_fraction=0.5)
    ex = list(scene_examples(cfg))
    blind = [p for p in ex if p.sample.extra["kind"] == "blind"]
    assert 0.35 < len(blind) / len(ex) < 0.65
    for p in ex:
        assert (p.sample.question in pool) == (p in blind)  # blind <=> an implicit template
        r = parse_completion(p.target, style="bbox+2pos", image_size=56)
        assert r.format_ok and len(r.instances) <= 1  # union target: one instance (or [] when absent)
    # the template's own category agrees with the target only by chance (~1/15), not by construction
    same = sum(pool[p.sample.question] == p.sample.extra["category"] for p in blind)
    assert same / len(blind) < 0.2
    assert all(p.sample.extra["kind"] == "explicit" for p in scene_examples(
        WarmstartConfig(sft_scenes=20, image_size=56, data_size=128, sft_blind_fraction=0.0)))


def test_lm_warmup_trains_a_question_conditioned_probe(tmp_path):
    from think2seg.warmstart import WarmstartConfig
    from think2seg.warmstart.llm import build, lm_warmup
    from think2seg.warmstart.scenes import scene_examples

    cfg = WarmstartConfig(sft_scenes=50, image_size=56, data_size=128, template="compact-qfirst", hidden_size=64,
                          intermediate_size=128, num_hidden_layers=2, vision_hidden_size=32,
                          vision_intermediate_size=64, vision_depth=1, lm_warmup_steps=25, lm_warmup_layer=1,
                          sft_batch=4, lm_warmup_lr=3e-3)
    ex = list(scene_examples(cfg))
    model, proc = build(cfg, [p.sample.question for p in ex] + [p.target for p in ex])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stats = lm_warmup(model, proc, ex, cfg)
    assert 0 <= stats["cell_iou"] <= 1 and stats["loss"] < 0.69  # below the BCE of an untrained probe
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert any("layers.0." in k for k in changed) and not any(".visual." in k for k in changed)
    assert not any("layers.1." in k for k in changed)  # only the layers below the probed one train
    with pytest.raises(ValueError, match="text-first"):
        lm_warmup(model, proc, ex, WarmstartConfig(template="compact", lm_warmup_steps=1))


def test_whitening_is_folded_into_standard_weights(tiny_dir):
    from think2seg.prompters.tiny import load_tiny
    from think2seg.warmstart.vision import pixel_batch, vision_features

    model, proc = load_tiny(tiny_dir)
    rng = np.random.default_rng(1)
    imgs = [rng.integers(0, 255, (56, 56, 3), dtype=np.uint8) for _ in range(40)]
    whiten_merger(model, proc, imgs)
    with torch.no_grad():
        f = vision_features(model, *pixel_batch(proc, imgs)).double()
    assert f.mean(0).abs().max() < 1e-3
    assert abs(f.var(0).mean().item() - 1) < 0.5  # unit scale (eigenvalue floor keeps some dims below 1)


def test_shipped_checkpoint_gives_parseable_output(tmp_path):
    import cv2

    from think2seg.data.scenes import render_scene

    assert (ASSET_DIR / "config.json").is_file(), (
        f"shipped checkpoint missing in {ASSET_DIR}: think2seg warmstart --config "
        "configs/warmstart.yaml --out think2seg/assets/tiny_prompter"
    )
    p = TinyPrompter()
    size = read_meta(ASSET_DIR)["image_size"]
    assert p.name == "tiny" and p.image_size == (size, size) and size % 28 == 0
    rng = np.random.default_rng(5)
    samples = []
    for i, (cat, q) in enumerate([("storage_tank", "Segment the storage tanks in this image."),
                                  ("runway", "Where could a plane take off?")]):
        scene = render_scene(rng, 256, target=cat)
        path = tmp_path / f"synth{i}.png"
        cv2.imwrite(str(path), scene.image[:, :, ::-1])
        samples.append(Sample(id=str(i), image_id=str(i), question=q, image_path=path, dataset="synth", split="val"))
    outs = p.generate(samples)
    for (text,) in outs:
        r = parse_completion(text, style="bbox+2pos", image_size=p.image_size)
        assert r.format_ok, text
    assert "storage tanks" in parse_completion(outs[0][0]).think  # the category is copied into <think>


@pytest.mark.parametrize("name", ["warmstart", "warmstart_think", "warmstart_think224"])
def test_warmstart_configs_load(name):
    from pathlib import Path

    from think2seg.warmstart import WarmstartConfig, load_config

    cfg = load_config(str(Path(__file__).parents[1] / "configs" / f"{name}.yaml"), {"sft_steps": 7})
    if name == "warmstart":  # the defaults are the shipped recipe
        assert load_config(str(Path(__file__).parents[1] / "configs" / f"{name}.yaml"), {}) == WarmstartConfig()
    assert cfg.sft_steps == 7 and cfg.template in ("compact", "compact-qfirst")
    if cfg.lm_warmup_steps:  # the LLM warm-up needs the question before the image
        from think2seg.core.styles import TEXT_FIRST

        assert cfg.template in TEXT_FIRST
    if name == "warmstart_think224":  # the 112 px answer-side recipe at 224 px, nothing else changed
        from dataclasses import asdict

        think = load_config(str(Path(__file__).parents[1] / "configs" / "warmstart_think.yaml"), {"sft_steps": 7})
        changed = {k for k, v in asdict(cfg).items() if asdict(think)[k] != v}
        assert changed == {"image_size", "vision_batch", "threads", "eval_n"} and cfg.image_size == 224


def test_warmstart_config_typo_is_named(tmp_path):
    from think2seg.warmstart import load_config

    bad = tmp_path / "ws.yaml"
    bad.write_text("sft_stepz: 3\n")
    with pytest.raises(ValueError, match="sft_stepz"):
        load_config(str(bad), {})


def test_shipped_checkpoint_grounds_explicit_questions():
    """The shipped prompter uses the image: on fresh scenes its boxes for explicitly named categories
    overlap the target's box more with the true image than with another scene's (a derangement).
    Image-blind warm starts measured gaps of 0.006-0.018. With a forced <think> the completion names the
    forced category (right or wrong), and the wrong-category row reports where the boxes land."""
    from think2seg.warmstart import WarmstartConfig, evaluate
    from think2seg.warmstart.scenes import scene_examples

    cfg = WarmstartConfig(sft_scenes=80, sft_per_scene=1, image_size=read_meta(ASSET_DIR)["image_size"],
                          data_size=256, empty_fraction=0.0, sft_blind_fraction=0.0, seed=123)
    ex = [p for p in scene_examples(cfg) if p.mask.any()]
    p = TinyPrompter()
    true = evaluate(p, ex, segment=False)
    shuffled = evaluate(p, ex, shuffle_images=True, segment=False)
    assert true["format_ok"] > 0.9 and true["think_category_acc"] > 0.9
    assert true["box_iou"] > shuffled["box_iou"] + 0.06, (true, shuffled)
    right = evaluate(p, ex[:20], segment=False, forced_think="right")
    wrong = evaluate(p, ex[:20], segment=False, forced_think="wrong")
    assert right["think_category_acc"] == 1.0 and wrong["think_category_acc"] == 0.0
    assert 0 < wrong["n"] <= 20 and 0.0 <= wrong["on_forced_share"] <= 1.0 and "on_forced_share" not in right


def test_eval_resume_refuses_retrained_weights_under_the_same_path(tiny_dir, synth_root, tmp_path):
    """Same prompter spec, new weights in the directory: resuming must not mix the two models' records."""
    import shutil

    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from think2seg.core.provenance import weights_fingerprint
    from think2seg.evaluation.engine import EvalConfig, evaluate

    ck = tmp_path / "ck"
    shutil.copytree(tiny_dir, ck)
    cfg = EvalConfig(data=f"earthreason:{synth_root}", split="val", prompter=f"tiny:{ck}", segmenter="grabcut",
                     limit=2, out=str(tmp_path / "run"))
    evaluate(cfg, progress=False)
    before = weights_fingerprint(ck)
    evaluate(cfg, progress=False)  # unchanged weights: resumes
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(ck, local_files_only=True)
    with torch.no_grad():
        model.lm_head.weight.add_(0.01)
    model.save_pretrained(ck)
    assert weights_fingerprint(ck) != before
    with pytest.raises(ValueError, match="prompter_weights"):
        evaluate(cfg, progress=False)


def test_prefill_starts_the_assistant_turn(tmp_path):
    """``generate(prefill=...)`` continues from the given text: a forced category is the one in <think>,
    and the continuation is still a well-formed answer (the cut before '.' matches the tokenizer's)."""
    import cv2

    from think2seg.data.scenes import render_scene
    from think2seg.warmstart.targets import category_of, think_prefill

    scene = render_scene(np.random.default_rng(3), 256, target="runway")
    path = tmp_path / "s.png"
    cv2.imwrite(str(path), scene.image[:, :, ::-1])
    s = Sample(id="0", image_id="0", question="Where could a plane take off?", image_path=path, dataset="synth",
               split="val", extra={"category": "storage_tank"})
    p = TinyPrompter()
    pre = think_prefill(category_of(s))
    assert pre == "<think>The request refers to storage tanks"
    (text,), = p.generate([s], prefill=[pre])
    assert text.startswith(pre)
    r = parse_completion(text, style="bbox+2pos", image_size=p.image_size)
    assert r.format_ok and r.think.strip() == "The request refers to storage tanks.", text
    sampled = p.generate([s, s], n=2, temperature=1.0, prefill=[pre, "<think>The request refers to runways"])
    assert all(t.startswith(pre) for t in sampled[0]) and all("runways" in t for t in sampled[1])
    with pytest.raises(ValueError, match="prefill: 1 texts for 2 samples"):
        p.generate([s, s], prefill=[pre])


def _small_cfg(**kw):
    from think2seg.warmstart import WarmstartConfig

    base = dict(sft_scenes=40, image_size=56, data_size=128, template="compact", hidden_size=64,
                intermediate_size=128, num_hidden_layers=2, vision_hidden_size=32, vision_intermediate_size=64,
                vision_depth=1, sft_batch=4, lm_warmup_steps=0)
    return WarmstartConfig(**{**base, **kw})


def test_think_warmup_points_the_category_tokens_at_its_image_tokens():
    """The supervised head's attention from the category named in <think> onwards moves onto the image
    tokens of that category; only the layers up to the supervised one (and the embeddings) change."""
    from think2seg.warmstart.llm import build, think_query_spans, think_warmup
    from think2seg.warmstart.scenes import scene_examples

    cfg = _small_cfg(think_warmup_steps=40, think_warmup_layer=0, think_warmup_lr=3e-3)
    ex = [p for p in scene_examples(cfg) if p.mask.any()]
    model, proc = build(cfg, [p.sample.question for p in ex] + [p.target for p in ex])
    enc, spans = think_query_spans(proc, ex[:4], cfg)
    for row, (a, b) in enumerate(spans):  # the span starts on the category's last token, ends with the text
        text = proc.tokenizer.decode(enc["input_ids"][row, a:b])
        assert ex[row].target.endswith(text) and text.split(".")[0].strip() in ex[row].target.split(".")[0]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = think_warmup(model, proc, ex[:4], _small_cfg(think_warmup_steps=1, think_warmup_layer=0, think_warmup_lr=0.0))
    stats = think_warmup(model, proc, ex * 5, cfg)
    assert stats["target_mass"] > first["target_mass"] + 0.1, (first, stats)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert any("layers.0.self_attn" in k for k in changed) and not any(".visual." in k for k in changed)
    assert not any("layers.1." in k for k in changed)
    assert model.config._attn_implementation != "eager"  # restored after the warm-up


def test_sft_stream_renders_the_scene_examples_lazily():
    from datasets import IterableDataset

    from think2seg.warmstart.scenes import scene_examples
    from think2seg.warmstart.sft import sft_dataset

    cfg = _small_cfg(sft_scenes=3)
    ds = sft_dataset(cfg)
    assert isinstance(ds, IterableDataset)
    rows, ex = list(ds), list(scene_examples(cfg))
    assert len(rows) == len(ex) == 6
    for row, p in zip(rows, ex, strict=True):
        assert row["completion"][0]["content"][0]["text"] == p.target
        assert np.array_equal(np.asarray(row["image"]), p.image)
        assert p.sample.question in json_text(row["prompt"])


def json_text(messages) -> str:
    import json

    return json.dumps(messages)


def test_wrong_category_is_another_present_one_and_derangement_has_no_fixed_point():
    from think2seg.warmstart.report import derangement, wrong_categories
    from think2seg.warmstart.scenes import scene_examples

    for n in (2, 3, 10):
        d = derangement(n, seed=n)
        assert sorted(d) == list(range(n)) and all(d[i] != i for i in range(n))
    ex = list(scene_examples(_small_cfg(sft_scenes=20)))
    for p, w in zip(ex, wrong_categories(ex, seed=0), strict=True):
        own = p.sample.extra["category"]
        if w is None:
            assert set(p.present) <= {own}
        else:
            assert w[0] != own and w[1] == p.present[w[0]]


def test_freeze_keeps_the_answer_side_lookup_fixed_during_sft():
    from think2seg.warmstart.llm import build
    from think2seg.warmstart.sft import freeze_warmed_layers

    cfg = _small_cfg(think_warmup_steps=1, think_warmup_layer=1, think_warmup_freeze=True)
    model, _ = build(cfg, ["Segment the roads.", "<think>The request refers to roads.</think>"])
    freeze_warmed_layers(model, cfg)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any(".visual." in n or ".layers.0." in n for n in trainable)
    assert not any(".layers.1.self_attn.q_proj" in n or ".layers.1.self_attn.k_proj" in n for n in trainable)
    assert any(".layers.1.self_attn.v_proj" in n for n in trainable) and any(".layers.1.mlp" in n for n in trainable)


def test_think_warmup_box_readout_trains_the_value_path():
    """With a box weight the warm-up also trains what the head retrieves (its value / output projections)."""
    from think2seg.warmstart.llm import build, think_warmup
    from think2seg.warmstart.scenes import scene_examples

    cfg = _small_cfg(think_warmup_steps=3, think_warmup_layer=0, think_warmup_lr=3e-3, think_warmup_box_weight=10.0)
    ex = [p for p in scene_examples(cfg) if p.mask.any()]
    model, proc = build(cfg, [p.sample.question for p in ex] + [p.target for p in ex])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stats = think_warmup(model, proc, ex, cfg)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert np.isfinite(stats["loss"]) and any("layers.0.self_attn.v_proj" in k for k in changed)


# the zero-shot geometry rules of docs/warmstart.md: mask rectangles (y1, y2, x1, x2) and the box's long axis
ZEROSHOT_CASES = [
    # one wide rectangle: box grown by 5-25 % of each side, points at 1/3 and 2/3 of the width, on the mask
    ([(10, 20, 10, 40)], "wide"),
    # one tall rectangle: points along the height
    ([(5, 45, 20, 26)], "tall"),
    # two instances far apart: ONE box over both, and its centre-line points fall between them
    ([(2, 10, 2, 10), (2, 10, 40, 50)], "wide"),
    # a ring (a sports track): the centre-line points fall in its hole
    ([(10, 40, 10, 40)], "ring"),
]


@pytest.mark.parametrize("rects,shape", ZEROSHOT_CASES)
def test_zeroshot_geometry_follows_the_documented_rules(rects, shape):
    from think2seg.warmstart.targets import ZEROSHOT_JITTER, ZEROSHOT_MARGIN, target_instances

    m = np.zeros((56, 56), bool)
    for y1, y2, x1, x2 in rects:
        m[y1:y2, x1:x2] = True
    if shape == "ring":
        m[15:35, 15:35] = False
    ys, xs = np.nonzero(m)
    tight = (xs.min(), ys.min(), xs.max(), ys.max())
    w, h = tight[2] - tight[0] + 1, tight[3] - tight[1] + 1
    lo, hi = ZEROSHOT_MARGIN - ZEROSHOT_JITTER, ZEROSHOT_MARGIN + ZEROSHOT_JITTER
    boxes = []
    for seed in range(20):
        (inst,) = target_instances(m, "zeroshot", np.random.default_rng(seed))
        x1, y1, x2, y2 = inst.box
        boxes.append(inst.box)
        # each side moved out by lo..hi of the extent (+-1 px rounding), unless the image edge clips it
        for got, edge, ext, sign, limit in ((x1, tight[0], w, -1, 0), (y1, tight[1], h, -1, 0),
                                            (x2, tight[2], w, 1, 55), (y2, tight[3], h, 1, 55)):
            if got != limit:
                assert lo * ext - 1 <= sign * (got - edge) <= hi * ext + 1
        (px1, py1), (px2, py2) = inst.positive
        along_x = x2 - x1 >= y2 - y1  # the points lie on the centre line of the box's long axis
        assert (py1 == py2 and px1 < px2) if along_x else (px1 == px2 and py1 < py2)
        assert shape == "ring" or along_x == (shape == "wide")
        if shape in ("wide", "tall") and len(rects) == 1:
            assert m[py1, px1] and m[py2, px2]  # a plain rectangle: the points land on it
        if len(rects) == 2 or shape == "ring":
            assert not m[py1, px1] or not m[py2, px2]  # the rule is blind to the mask: a point misses
    assert len(set(boxes)) > 5  # the jitter varies with the draw


def test_tight_geometry_is_unchanged_and_bad_geometry_is_named():
    from think2seg.warmstart import load_config
    from think2seg.warmstart.targets import target_instances

    m = np.zeros((56, 56), bool)
    m[5:15, 30:50] = True
    assert target_instances(m) == target_instances(m, "tight", np.random.default_rng(3))
    assert target_instances(np.zeros((56, 56), bool), "zeroshot") == []
    with pytest.raises(ValueError, match="loose"):
        target_instances(m, "loose")
    with pytest.raises(ValueError, match="geometry must be one of"):
        load_config(None, {"geometry": "loose"})
    with pytest.raises(ValueError, match="sft_implicit_fraction"):
        load_config(None, {"sft_implicit_fraction": 1.5})


def test_implicit_questions_name_their_own_category_and_geometry_leaves_the_scenes_alone():
    from think2seg.data.questions import IMPLICIT
    from think2seg.warmstart import WarmstartConfig
    from think2seg.warmstart.scenes import scene_examples

    base = dict(sft_scenes=120, sft_per_scene=2, image_size=56, data_size=128, sft_blind_fraction=0.0, empty_fraction=0.0)
    ex = list(scene_examples(WarmstartConfig(**base, sft_implicit_fraction=0.5, geometry="zeroshot")))
    implicit = [p for p in ex if p.sample.extra["kind"] == "implicit"]
    assert 0.35 < len(implicit) / len(ex) < 0.65
    assert all(p.sample.question in IMPLICIT[p.sample.extra["category"]] for p in implicit)
    assert all(p.mask.any() for p in ex)  # empty_fraction 0: the warm start never sees []
    tight = list(scene_examples(WarmstartConfig(**base, sft_implicit_fraction=0.5)))
    assert [p.sample.question for p in tight] == [p.sample.question for p in ex]  # same scenes and questions
    assert all(np.array_equal(a.mask, b.mask) for a, b in zip(tight, ex, strict=True))
    parsed = [parse_completion(p.target, style="bbox+2pos", image_size=56) for p in ex]
    assert all(r.format_ok and len(r.instances) == 1 for r in parsed)
    assert sum(a.target != b.target for a, b in zip(tight, ex, strict=True)) > 0.9 * len(ex)


ZEROSHOT_DIR = ASSET_DIR.parent / "tiny_zeroshot"


def test_shipped_zeroshot_warm_start_reads_implicit_questions_prompts_loosely_and_never_answers_empty():
    """Issue #23's stand-in for a zero-shot LVLM (docs/warmstart.md): on fresh scenes it names the category
    an IMPLICIT question means, its boxes use the image, they are looser than the target's box (the
    documented rules push every side out), and asked about an absent category it still answers something."""
    from think2seg.warmstart import WarmstartConfig, evaluate
    from think2seg.warmstart.report import ImageSample
    from think2seg.warmstart.scenes import scene_examples
    from think2seg.warmstart.targets import target_instances

    def box_area(b):
        return max(b[2] - b[0], 0) * max(b[3] - b[1], 0)

    meta = read_meta(ZEROSHOT_DIR)
    p = TinyPrompter(ZEROSHOT_DIR)
    cfg = WarmstartConfig(sft_scenes=40, sft_per_scene=1, image_size=meta["image_size"], data_size=256,
                          empty_fraction=0.0, sft_blind_fraction=0.0, sft_implicit_fraction=1.0, seed=123)
    ex = [e for e in scene_examples(cfg) if e.mask.any()]
    assert {e.sample.extra["kind"] for e in ex} == {"implicit"}
    true = evaluate(p, ex, segment=False)
    shuffled = evaluate(p, ex, shuffle_images=True, segment=False)
    assert true["format_ok"] > 0.9 and true["think_category_acc"] > 0.9, true
    assert true["box_iou"] > shuffled["box_iou"] + 0.06, (true, shuffled)

    texts = [c[0] for c in p.generate([ImageSample(e.sample, e.image) for e in ex], n=1)]
    ratios = []
    for e, t in zip(ex, texts, strict=True):
        r = parse_completion(t, image_size=meta["image_size"])
        gt = target_instances(e.mask)
        if r.usable and r.instances and len(gt) == 1:
            ratios.append(box_area(r.instances[0].box) / box_area(gt[0].box))
    assert len(ratios) >= 10 and np.median(ratios) > 1.2, ratios

    empty_cfg = WarmstartConfig(sft_scenes=20, sft_per_scene=1, image_size=meta["image_size"], data_size=256,
                                empty_fraction=1.0, sft_blind_fraction=0.0, sft_implicit_fraction=1.0, seed=7)
    absent = [e for e in scene_examples(empty_cfg) if not e.mask.any()]
    answers = [parse_completion(c[0], image_size=meta["image_size"])
               for c in p.generate([ImageSample(e.sample, e.image) for e in absent], n=1)]
    assert len(absent) == 20 and sum(bool(r.usable and r.instances) for r in answers) >= 18
