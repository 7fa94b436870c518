"""One rule for local model directories (hf and tiny prompters, train --model, doctor)."""

import json

import pytest

from think2seg.core.errors import ModelNotFoundError, UserError
from think2seg.core.model_dirs import check_model_dir, find_model_dirs, looks_local, read_model_type


@pytest.mark.parametrize(
    "spec, local",
    [
        ("Qwen/Qwen2.5-VL-3B-Instruct", False),
        ("gpt2", False),
        ("/models/qwen", True),
        ("./runs/ckpt", True),
        ("../ckpt", True),
        ("~/models/qwen", True),
        ("runs/grpo/checkpoint-100", True),  # more than one '/': not a hub id
    ],
)
def test_looks_local(spec, local):
    assert looks_local(spec) is local


def test_an_existing_relative_folder_is_local(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ckpt").mkdir()
    assert looks_local("ckpt") and not looks_local("other")


def test_check_model_dir_names_what_is_missing(tmp_path):
    d = tmp_path / "m"
    with pytest.raises(ModelNotFoundError, match=rf"^--model {d}: no such model directory$"):
        check_model_dir(d, "--model")
    d.mkdir()
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        check_model_dir(d, "--model")
    (d / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    assert check_model_dir(d, "--model") == d
    with pytest.raises(ModelNotFoundError, match=r"no tokenizer.json;.*\(rebuild: x\)$"):
        check_model_dir(d, "tiny", ("config.json", "tokenizer.json"), hint="rebuild: x")
    with pytest.raises(ModelNotFoundError, match="no model weights"):
        check_model_dir(d, "tiny", weights=True)
    (d / "model.safetensors").write_bytes(b"0")
    assert check_model_dir(d, "tiny", weights=True) == d
    assert read_model_type(d) == "qwen2_5_vl"
    assert issubclass(ModelNotFoundError, UserError) and issubclass(ModelNotFoundError, FileNotFoundError)


def test_find_model_dirs(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "config.json").write_text('{"model_type": "llava"}')
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.json").write_text("{not json")
    (tmp_path / "c").mkdir()  # no config: not listed
    found = find_model_dirs([tmp_path, tmp_path / "missing"])
    assert found[0] == {"path": str(tmp_path / "a"), "model_type": "llava"}
    assert found[1]["path"] == str(tmp_path / "b") and found[1]["model_type"].startswith("unreadable config.json")
    assert found[2] == {"path": str(tmp_path / "missing"), "error": "not a directory"}
    assert len(found) == 3
