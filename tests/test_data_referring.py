"""Referring formats (RRSIS-D, RefSegRS, RISBench): SynthEarth writes them, the loaders read them back."""

from __future__ import annotations

import json
import pickle

import cv2
import numpy as np
import pytest

from think2seg.data import load_dataset, load_pair
from think2seg.data.referring import coco_mask

SPLITS = {"train": 12, "val": 6, "test": 6}


def _meta(root):
    return json.loads((root / "synth_meta.json").read_text())


@pytest.mark.parametrize("fmt", ["rrsisd", "refsegrs", "risbench"])
def test_round_trip_counts(synth_formats, fmt):
    root = synth_formats[fmt]
    meta = _meta(root)
    for split in SPLITS:
        ds = load_dataset(f"{fmt}:{root}", split)
        s = ds.summary()
        assert s["images"] == meta["splits"][split]["images"] > 0
        assert s["questions"] == s["samples"] == len(ds) == meta["splits"][split]["questions"]
        assert s["empty"] == 0 and s["skipped"] == 0
        assert len({x.id for x in ds}) == len(ds)
        assert all(x.dataset == fmt and x.split == split and x.gt_empty is False for x in ds)
        first = load_dataset(f"{fmt}:{root}", split, questions="first")
        assert len(first) == s["entries"]


@pytest.mark.parametrize("fmt", ["refsegrs", "risbench"])
def test_phrase_lines_become_samples(synth_formats, fmt):
    root = synth_formats[fmt]
    lines = (root / "output_phrase_test.txt").read_text().splitlines()
    ds = load_dataset(f"{fmt}:{root}", "test")
    assert len(ds) == len(lines)
    for s in ds:
        name, n = s.id.rsplit(":", 1)
        file, phrase = lines[int(n) - 1].split(" ", 1)
        assert file.startswith(name) and s.question == phrase
        image, mask = load_pair(s)
        assert image.shape == (128, 128, 3) and mask.any()


def test_refsegrs_phrases_are_semantic_risbench_instance_level(synth_formats):
    from think2seg.data.scenes import CATEGORIES

    for s in load_dataset(f"refsegrs:{synth_formats['refsegrs']}", "train"):
        assert CATEGORIES[s.extra["category"]].plural in s.question
        m = s.load_mask()  # all instances of the category
        assert m.any()
    for s in load_dataset(f"risbench:{synth_formats['risbench']}", "train"):
        n_cc = cv2.connectedComponents(s.load_mask().astype(np.uint8), connectivity=8)[0] - 1
        assert n_cc == 1 or s.question.split()[-1] == CATEGORIES[s.extra["category"]].plural


def test_rrsisd_polygon_and_rle_masks(synth_formats):
    root = synth_formats["rrsisd"]
    coco = json.loads((root / "rrsisd" / "instances.json").read_text())
    anns = {a["id"]: a for a in coco["annotations"]}
    kinds = {type(a["segmentation"]).__name__ for a in anns.values()}
    assert kinds == {"list", "dict"}  # both encodings are exercised
    with open(root / "rrsisd" / "refs(unc).p", "rb") as f:
        refs = pickle.load(f)
    ds = load_dataset(f"rrsisd:{root}", "train", questions="first")
    assert len(ds) == sum(r["split"] == "train" for r in refs)
    for s in ds:
        ann = anns[s.extra["ann_id"]]
        m = s.load_mask()
        x, y, w, h = ann["bbox"]
        ys, xs = np.nonzero(m)
        assert xs.min() >= x - 1 and ys.min() >= y - 1 and xs.max() <= x + w and ys.max() <= y + h
        if isinstance(ann["segmentation"], dict):
            assert m.sum() == ann["area"]  # RLE is exact
        else:
            assert abs(int(m.sum()) - ann["area"]) <= 0.5 * ann["area"]  # polygon rasterisation is close
        assert s.question == next(r for r in refs if r["ref_id"] == int(s.id.split(":")[0]))["sentences"][0]["sent"]


def test_coco_mask_encodings():
    from pycocotools import mask as mask_utils

    m = np.zeros((20, 30), bool)
    m[5:10, 3:20] = True
    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    assert (coco_mask({"size": [20, 30], "counts": rle["counts"].decode()}, 20, 30) == m).all()
    poly = [[3, 5, 19, 5, 19, 9, 3, 9]]
    assert coco_mask(poly, 20, 30)[6:9, 4:19].all()
    # uncompressed RLE: run lengths in column-major order
    flat = m.flatten(order="F").astype(int)
    runs, cur, n = [], 0, 0
    for v in flat:
        if v != cur:
            runs.append(n)
            cur, n = v, 0
        n += 1
    runs.append(n)
    assert (coco_mask({"size": [20, 30], "counts": runs}, 20, 30) == m).all()


class _Payload:
    """Unpickling this with the standard pickle calls os.system, which creates ``target``."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.target}",))


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_rrsisd_refs_pickle_cannot_run_code(synth_formats, tmp_path, protocol):
    import shutil

    from think2seg.data import DataError
    from think2seg.data.referring import read_plain_pickle

    root = tmp_path / "rrsisd_bad"
    shutil.copytree(synth_formats["rrsisd"], root)
    refs_path = root / "rrsisd" / "refs(unc).p"
    target = tmp_path / "pwned"
    refs = [{"ref_id": 1, "split": "train", "sentences": [{"sent": "x"}], "evil": _Payload(target)}]
    refs_path.write_bytes(pickle.dumps(refs, protocol=protocol))
    with pytest.raises(DataError) as e:
        read_plain_pickle(refs_path)
    assert str(e.value).startswith(str(refs_path)) and "system" in str(e.value)
    with pytest.raises(DataError, match=r"refs\(unc\)\.p"):
        load_dataset(f"rrsisd:{root}", "train")
    ds = load_dataset(f"rrsisd:{root}", "train", on_error="skip")
    assert len(ds) == 0 and ds.skipped[0][0] == str(refs_path)
    assert not target.exists()  # the payload never ran
    pickle.loads(refs_path.read_bytes())  # ...while the standard unpickler would have run it
    assert target.exists()


def test_plain_pickle_reads_containers_and_scalars(tmp_path):
    from collections import OrderedDict

    from think2seg.data.referring import read_plain_pickle

    obj = [{"ref_id": 3, "split": "test", "sentences": [{"sent": "the tank", "tokens": ["the", "tank"]}],
            "score": 0.5, "ok": True, "none": None, "pair": (1, 2), "ids": {4, 5}, "frozen": frozenset({6}),
            "ordered": OrderedDict(a=1), "raw": b"\x00\xff", "big": 2**70}]
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        f = tmp_path / f"refs{protocol}.p"
        f.write_bytes(pickle.dumps(obj, protocol=protocol))
        if protocol < 3:  # bytes need a codecs call below protocol 3: refused, not run
            from think2seg.data import DataError

            with pytest.raises(DataError, match="_codecs.encode"):
                read_plain_pickle(f)
            f.write_bytes(pickle.dumps([{k: v for k, v in obj[0].items() if k != "raw"}], protocol=protocol))
            assert read_plain_pickle(f) == [{k: v for k, v in obj[0].items() if k != "raw"}]
        else:
            assert read_plain_pickle(f) == obj
