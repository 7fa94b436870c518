"""Bad input: every error names the file and the problem; ``on_error="skip"`` records and counts it."""

from __future__ import annotations

import json
import shutil

import pytest

from think2seg.data import DataError, load_dataset


@pytest.fixture
def er(synth_root, tmp_path):
    """A private copy of the tiny EarthReason-format dataset's val split (6 images, safe to damage)."""
    root = tmp_path / "er"
    shutil.copytree(synth_root / "val", root / "val")
    return root


def _first(root, sub, pattern):
    return sorted((root / "val" / sub).glob(pattern))[0]


def _truncate(p):
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 3])


CASES = {  # name -> (damage function returning the offending path, expected code, message fragment)
    "missing folder": (lambda r: (shutil.rmtree(r / "val" / "labels"), r / "val" / "labels")[1],
                       "missing", "folder not found"),
    "truncated image": (lambda r: (_truncate(p := _first(r, "images", "*.jpg")), p)[1],
                        "unreadable", "truncated"),
    "unreadable mask": (lambda r: ((p := _first(r, "labels", "*.png")).write_bytes(b"not a png"), p)[1],
                        "unreadable", "unreadable"),
    "truncated mask": (lambda r: (_truncate(p := _first(r, "labels", "*.png")), p)[1],
                       "unreadable", "truncated"),
    "size mismatch": (lambda r: (__import__("cv2").imwrite(str(p := _first(r, "labels", "*.png")),
                                                           __import__("numpy").zeros((64, 80), "uint8")), p)[1],
                      "size_mismatch", "does not match image"),
    "invalid json": (lambda r: ((p := _first(r, "QAs", "*.json")).write_text("{'questions': [oops"), p)[1],
                     "bad_json", "not valid JSON"),
    "no questions": (lambda r: ((p := _first(r, "QAs", "*.json")).write_text(json.dumps({"answer": []})), p)[1],
                     "bad_qa", "questions"),
    "missing image": (lambda r: (_first(r, "images", "*.jpg").unlink(), r / "val" / "images")[1],
                      "missing", "no image"),
    "missing mask": (lambda r: ((p := _first(r, "labels", "*.png")).unlink(), p)[1], "missing", "not found"),
    "orphan image": (lambda r: (_first(r, "QAs", "*.json").unlink(), _first(r, "images", "*.jpg"))[1],
                     "no_qa", "no QA file"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_earthreason_bad_input(er, case):
    damage, code, fragment = CASES[case]
    bad = damage(er)
    with pytest.raises(DataError) as info:
        load_dataset(f"earthreason:{er}", "val")
    msg = str(info.value)
    assert msg.startswith(str(bad)) and fragment in msg, msg
    ds = load_dataset(f"earthreason:{er}", "val", on_error="skip")
    s = ds.summary()
    assert s["skipped"] == len(ds.skipped) == 1 and s["skip_reasons"] == {code: 1}
    path, reason = ds.skipped[0]
    assert path.startswith(str(bad)) and fragment in reason
    expected_images = 0 if case == "missing folder" else 5
    assert s["images"] == expected_images  # only the damaged image is dropped, and it is on record


def test_answer_mask_disagreement_is_counted_not_dropped(er):
    qa = next(p for p in (er / "val" / "QAs").glob("*.json") if json.loads(p.read_text())["answer"] == [])
    d = json.loads(qa.read_text())
    d["answer"] = ["something"]
    qa.write_text(json.dumps(d))
    ds = load_dataset(str(er), "val")
    assert ds.summary()["answer_mismatch"] == 1 and ds.summary()["empty"] == 1 and ds.summary()["images"] == 6


def test_bad_options(er):
    with pytest.raises(ValueError, match="on_error"):
        load_dataset(str(er), "val", on_error="ignore")
    with pytest.raises(ValueError, match="unknown dataset format"):
        load_dataset(f"coco:{er}", "val")


@pytest.fixture
def phrases(synth_formats, tmp_path):
    root = tmp_path / "ris"
    shutil.copytree(synth_formats["risbench"], root)
    return root


def test_phrase_format_errors(phrases):
    pf = phrases / "output_phrase_val.txt"
    lines = pf.read_text().splitlines()
    pf.write_text("\n".join(lines + ["lonelyname", "99999.png a ghost"]) + "\n")
    with pytest.raises(DataError, match=r"output_phrase_val.txt:\d+: expected"):
        load_dataset(f"risbench:{phrases}", "val")
    ds = load_dataset(f"risbench:{phrases}", "val", on_error="skip")
    assert ds.summary()["skip_reasons"] == {"bad_qa": 1, "missing": 1}
    assert any(p.endswith("99999.png") for p, _ in ds.skipped)
    assert len(ds) == len(lines)
    pf.unlink()
    with pytest.raises(DataError, match="output_phrase_val.txt: file not found"):
        load_dataset(f"risbench:{phrases}", "val")


def test_rrsisd_errors(synth_formats, tmp_path):
    root = tmp_path / "rr"
    shutil.copytree(synth_formats["rrsisd"], root)
    inst = root / "rrsisd" / "instances.json"
    coco = json.loads(inst.read_text())
    coco["annotations"] = coco["annotations"][1:]
    inst.write_text(json.dumps(coco))
    n = len(load_dataset(f"rrsisd:{root}", "train", on_error="skip", questions="first"))
    with pytest.raises(DataError, match=r"instances.json: annotation \d+ of ref \d+ not found"):
        load_dataset(f"rrsisd:{root}", "train")
    assert n >= 1
    inst.write_text("{")
    with pytest.raises(DataError, match="instances.json: not valid JSON"):
        load_dataset(f"rrsisd:{root}", "train")
    (root / "rrsisd" / "refs(unc).p").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"refs\(unc\).p: unreadable annotations"):
        load_dataset(f"rrsisd:{root}", "train")


@pytest.mark.parametrize("kind,expect", [(None, None), ("all", None), ("ALL", None), ("any", None), ("", None),
                                         ("implicit", "implicit"), (" Explicit ", "explicit")])
def test_question_kind_accepted(kind, expect):
    from think2seg.data.dataset import check_question_kind

    assert check_question_kind(kind) == expect


def test_question_kind_all_keeps_every_question_and_typo_is_named(synth_root):
    every = load_dataset(str(synth_root), "val", questions="all")
    assert len(load_dataset(str(synth_root), "val", questions="all", question_kind="all")) == len(every) > 0
    with pytest.raises(ValueError, match="question_kind='implict'"):
        load_dataset(str(synth_root), "val", question_kind="implict")
