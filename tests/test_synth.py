"""SynthEarth: determinism, category/question properties, target instances = connected components."""

from __future__ import annotations

import hashlib
import json
import re

import cv2
import numpy as np
import pytest

from think2seg.data import load_dataset, synth
from think2seg.data.questions import EXPLICIT, IMPLICIT, make_questions, name_words
from think2seg.data.scenes import CATEGORIES, render_scene


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != synth.META_FILE:
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_at_least_12_categories_and_templates():
    assert len(CATEGORIES) >= 12
    for cat in CATEGORIES:
        assert len(IMPLICIT[cat]) >= 3, cat
    assert len(EXPLICIT) >= 3


@pytest.mark.parametrize("cat", list(CATEGORIES))
def test_implicit_questions_never_name_the_category(cat):
    words = name_words(cat)
    for q in IMPLICIT[cat]:
        tokens = set(re.findall(r"[a-z]+", q.lower()))
        assert not tokens & words, (cat, q)


def test_explicit_questions_name_the_category():
    rng = np.random.default_rng(0)
    for cat, c in CATEGORIES.items():
        for q, kind in make_questions(rng, cat, 2, 3):
            if kind == "explicit":
                assert c.singular in q or c.plural in q, q


@pytest.mark.parametrize("cat", list(CATEGORIES))
def test_target_components_are_the_instances(cat):
    for seed in range(3):
        scene = render_scene(np.random.default_rng(seed), 128, target=cat)
        m = scene.mask(cat)
        n_cc, cc = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)
        boxes = scene.boxes(cat)
        assert 1 <= len(boxes) == n_cc - 1
        for k in range(1, n_cc):  # each component's box is one recorded instance box
            ys, xs = np.nonzero(cc == k)
            assert (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())) in boxes
        assert 0.001 < m.mean() < 0.5


def test_absent_category_is_absent():
    for seed in range(20):
        cat = list(CATEGORIES)[seed % len(CATEGORIES)]
        scene = render_scene(np.random.default_rng(seed), 128, target=None, absent=cat)
        assert cat not in scene.categories
        assert not scene.mask(cat).any()


def test_generation_is_deterministic_and_worker_independent(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    synth.generate(a, n_train=5, n_val=2, n_test=2, seed=3, size=96, workers=0, progress=False)
    synth.generate(b, n_train=5, n_val=2, n_test=2, seed=3, size=96, workers=2, progress=False)
    assert _digest(a) == _digest(b)
    c = tmp_path / "c"
    synth.generate(c, n_train=5, n_val=2, n_test=2, seed=4, size=96, workers=0, progress=False)
    assert _digest(a) != _digest(c)


def test_earthreason_files_and_extra_fields(synth_root):
    qa_files = sorted((synth_root / "train" / "QAs").glob("*.json"))
    assert len(qa_files) == 12
    n_empty = 0
    for p in qa_files:
        qa = json.loads(p.read_text())
        assert 3 <= len(qa["questions"]) <= 5
        s = qa["synth"]
        assert len(s["kinds"]) == len(qa["questions"]) and {"implicit", "explicit"} >= set(s["kinds"])
        assert "implicit" in s["kinds"] and "explicit" in s["kinds"]
        mask = cv2.imread(str(synth_root / "train" / "labels" / f"{p.stem}.png"), cv2.IMREAD_GRAYSCALE)
        assert mask.shape == (128, 128)
        if s["empty"]:
            n_empty += 1
            assert qa["answer"] == [] and mask.max() == 0 and s["category"] not in s["instances"]
        else:
            assert qa["answer"] and mask.max() == 255
            n_cc = cv2.connectedComponents((mask > 0).astype(np.uint8), connectivity=8)[0] - 1
            assert n_cc == len(s["instances"][s["category"]])
    assert n_empty == 1


def test_empty_share_is_about_2_5_percent():
    for split, n in (("train", 1000), ("test", 400)):
        cats, empties = synth._plan(0, split, n, 0.025)
        assert len(empties) == round(0.025 * n)
        assert len(set(cats)) == len(CATEGORIES)  # every category is a target


def test_ensure_default_reuses_and_refuses_other_parameters(tmp_path):
    root = synth.ensure_default(tmp_path / "se", n_train=2, n_val=1, n_test=1, size=64, progress=False)
    stamp = (root / synth.META_FILE).stat().st_mtime_ns
    assert synth.ensure_default(root, n_train=2, n_val=1, n_test=1, size=64, progress=False) == root
    assert (root / synth.META_FILE).stat().st_mtime_ns == stamp
    with pytest.raises(synth.DataError, match="other parameters"):
        synth.ensure_default(root, n_train=3, n_val=1, n_test=1, size=64, progress=False)
    assert len(load_dataset(root, "train", questions="first")) == 2


def test_synthearth_spec_generates_on_first_use_and_reuses(tmp_path, monkeypatch):
    """``synthearth[?...]`` names a SynthEarth dataset made on first use under $THINK2SEG_SYNTH_DIR."""
    from think2seg.data import load_dataset, parse_spec

    monkeypatch.setenv("THINK2SEG_SYNTH_DIR", str(tmp_path))
    spec = "synthearth?train=3&val=2&test=1&size=64&seed=5"
    fmt, root = parse_spec(spec)
    assert fmt == "earthreason" and root == tmp_path / "earthreason-64px-seed5-3-2-1"
    assert synth.read_meta(root)["n"] == {"train": 3, "val": 2, "test": 1}
    stamp = (root / synth.META_FILE).stat().st_mtime_ns
    ds = load_dataset(spec, "val")
    assert {s.image_id for s in ds} and len({s.image_id for s in ds}) == 2
    assert (root / synth.META_FILE).stat().st_mtime_ns == stamp  # reused, not regenerated
    with pytest.raises(ValueError, match="unknown SynthEarth option 'trian'"):
        parse_spec("synthearth?trian=3")
    with pytest.raises(ValueError, match="size='big' is not an integer"):
        parse_spec("synthearth?size=big")
    with pytest.raises(ValueError, match="SynthEarth spec option 'train' is not key=value"):
        parse_spec("synthearth?train")
