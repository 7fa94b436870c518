"""``think2seg data-stats`` and ``think2seg synth`` through the real CLI entry point."""

from __future__ import annotations

import json
import shutil

import pytest

from think2seg.cli import main
from think2seg.data import load_dataset


@pytest.mark.parametrize("fmt", ["earthreason", "rrsisd", "refsegrs", "risbench"])
def test_data_stats_json_matches_generator(synth_formats, capsys, fmt):
    root = synth_formats[fmt]
    meta = json.loads((root / "synth_meta.json").read_text())
    assert main(["data-stats", f"{fmt}:{root}", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["train", "val", "test"]
    for split, s in out.items():
        for key in ("images", "questions", "empty"):
            assert s[key] == meta["splits"][split][key], (split, key)
        assert s["mask_area"]["n"] > 0


def test_data_stats_table_and_split(synth_root, capsys):
    assert main(["data-stats", str(synth_root), "--split", "test"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith("test")]
    assert rows and rows[0][:4] == ["test", "6", str(len(load_dataset(str(synth_root), "test"))), "1"]
    assert "train" not in out.split("\n", 2)[2].split()[0:1]


def test_data_stats_bad_input(synth_root, tmp_path, capsys):
    root = tmp_path / "er"
    shutil.copytree(synth_root / "test", root / "test")
    qa = sorted((root / "test" / "QAs").glob("*.json"))[0]
    qa.write_text("not json")
    assert main(["data-stats", f"earthreason:{root}", "--json"]) == 2
    err = capsys.readouterr().err
    assert str(qa) in err and "not valid JSON" in err
    assert main(["data-stats", f"earthreason:{root}", "--json", "--on-error", "skip"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["test"]["skipped"] == 1 and out["test"]["images"] == 5 and out["test"]["skip_reasons"] == {"bad_json": 1}
    assert main(["data-stats", f"earthreason:{tmp_path / 'nope'}"]) == 2
    assert "nope: folder not found" in capsys.readouterr().err
    assert main(["data-stats", f"refsegrs:{root}"]) == 2  # no phrase files at all
    assert "no refsegrs split found" in capsys.readouterr().err


def test_synth_command(tmp_path, capsys):
    out = tmp_path / "ris"
    assert main(["synth", "--format", "risbench", "--out", str(out), "--train", "3", "--val", "1", "--test", "2",
                 "--size", "64", "--seed", "5"]) == 0
    assert "images/s" in capsys.readouterr().out
    assert load_dataset(f"risbench:{out}", "test", questions="first").summary()["images"] == 2
    assert main(["synth", "--out", str(tmp_path / "x"), "--size", "10"]) == 2
    assert "--size" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    assert main(["synth", "--out", str(tmp_path / "full"), "--train", "1", "--val", "0", "--test", "0"]) == 2
