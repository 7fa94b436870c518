"""EarthReason loader on SynthEarth data: counts, empties, question policy, resize policy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from think2seg.data import DataError, load_dataset, load_pair, parse_spec


def _qa(root, split):
    return {p.stem: json.loads(p.read_text()) for p in (root / split / "QAs").glob("*.json")}


@pytest.mark.parametrize("split,n", [("train", 12), ("val", 6), ("test", 6)])
def test_round_trip_counts_and_empties(synth_root, split, n):
    qas = _qa(synth_root, split)
    ds = load_dataset(f"earthreason:{synth_root}", split)
    s = ds.summary()
    assert s["images"] == n and s["questions"] == len(ds) == sum(len(q["questions"]) for q in qas.values())
    assert s["empty"] == sum(q["answer"] == [] for q in qas.values()) == 1
    assert s["skipped"] == 0 and ds.skipped == [] and s["answer_mismatch"] == 0
    for sample in ds:
        image_id, qi = sample.id.rsplit(":", 1)
        qa = qas[image_id]
        assert sample.question == qa["questions"][int(qi)]
        assert sample.gt_empty == (qa["answer"] == []) == (not sample.load_mask().any())
        assert sample.extra["kind"] == qa["synth"]["kinds"][int(qi)]
        assert sample.extra["category"] == qa["synth"]["category"]
    assert len({s.id for s in ds}) == len(ds)


def test_question_policies(synth_root):
    spec = str(synth_root)  # bare DIR means earthreason
    assert parse_spec(spec)[0] == "earthreason"
    first = load_dataset(spec, "train", questions="first")
    assert len(first) == 12 and all(s.id.endswith(":0") for s in first)
    r0 = [s.id for s in load_dataset(spec, "train", questions="random", seed=0)]
    assert r0 == [s.id for s in load_dataset(spec, "train", questions="random", seed=0)]
    draws = {tuple(s.id for s in load_dataset(spec, "train", questions="random", seed=k)) for k in range(4)}
    assert len(draws) > 1  # the seed matters
    limited = load_dataset(spec, "train", questions="random", seed=0, limit=5)
    assert [s.id for s in limited] == r0[:5]  # a draw does not depend on what else was loaded
    with pytest.raises(ValueError, match="questions"):
        load_dataset(spec, "train", questions="some")


def test_question_kind_filter(synth_root):
    imp = load_dataset(str(synth_root), "val", question_kind="implicit")
    exp = load_dataset(str(synth_root), "val", question_kind="explicit")
    assert len(imp) + len(exp) == len(load_dataset(str(synth_root), "val"))
    assert {s.extra["kind"] for s in imp} == {"implicit"} and {s.extra["kind"] for s in exp} == {"explicit"}
    one = load_dataset(str(synth_root), "val", questions="first", question_kind="explicit")
    assert len(one) == 6 and all(s.extra["kind"] == "explicit" for s in one)


def test_question_kind_needs_kinds(synth_root, tmp_path):
    import shutil

    root = tmp_path / "er"
    shutil.copytree(synth_root / "val", root / "val")
    for p in (root / "val" / "QAs").glob("*.json"):
        qa = json.loads(p.read_text())
        p.write_text(json.dumps({"questions": qa["questions"], "answer": qa["answer"]}))  # real format
    ds = load_dataset(f"earthreason:{root}", "val")
    assert len(ds) > 0 and ds.summary()["empty"] == 1 and "kind" not in ds[0].extra
    with pytest.raises(DataError, match="question_kind"):
        load_dataset(f"earthreason:{root}", "val", question_kind="implicit")


def test_resize_policy(synth_root):
    s = load_dataset(str(synth_root), "test", questions="first")[0]
    img, mask = load_pair(s)
    assert img.shape == (128, 128, 3) and img.dtype == np.uint8 and mask.shape == (128, 128)
    img2, mask2 = load_pair(s, size=(200, 100))
    assert img2.shape == (100, 200, 3) and mask2.dtype == bool
    assert set(np.unique(mask2)) <= {False, True}
    big, bigm = load_pair(s, size=840)
    assert big.shape == (840, 840, 3)
    assert abs(bigm.mean() - mask.mean()) < 0.01  # nearest keeps the area fraction


def test_pick_questions_properties():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from think2seg.data.dataset import Entry, pick_questions

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.sampled_from(["implicit", "explicit"]), min_size=1, max_size=6),
           st.sampled_from([None, "implicit", "explicit"]), st.integers(0, 2**31), st.text(min_size=1, max_size=8))
    def check(kinds, kind, seed, key):
        e = Entry(key=key, image_id=key, image_path=None, questions=[f"q{i}" for i in range(len(kinds))],
                  question_ids=[str(i) for i in range(len(kinds))], kinds=kinds)
        allowed = [i for i, k in enumerate(kinds) if kind is None or k == kind]
        assert pick_questions(e, "all", seed, kind) == allowed
        assert pick_questions(e, "first", seed, kind) == allowed[:1]
        r = pick_questions(e, "random", seed, kind)
        assert r == pick_questions(e, "random", seed, kind) and len(r) == min(1, len(allowed))
        assert set(r) <= set(allowed)

    check()
