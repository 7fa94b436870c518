"""The catalogue of released architectures (think2seg.prompters.catalog): spec matching and parameter
counts on the meta device, against the sizes the model cards state."""

from __future__ import annotations

import pytest

from think2seg.prompters.catalog import CHECKPOINTS, checkpoint_for, count_parameters
from think2seg.prompters.families import FAMILIES

pytest.importorskip("torch")

MATCHES = [
    ("hf:/models/Qwen3-VL-2B-Instruct", "Qwen3-VL-2B-Instruct"),
    ("hf:/models/qwen2.5-vl-7b-instruct/?batch_size=2", "Qwen2.5-VL-7B-Instruct"),
    ("vllm:/data/Qwen3-VL-4B-Instruct?gpu_memory_utilization=0.8", "Qwen3-VL-4B-Instruct"),
    ("/ckpt/Qwen2.5-VL-3B-Instruct", "Qwen2.5-VL-3B-Instruct"),
    ("hf:/models/Qwen3.5-0.8B", "Qwen3.5-0.8B"),
    ("hf:/models/Qwen3.5-27B", None),  # not catalogued: no count rather than a guessed one
    ("tiny", None),
]


@pytest.mark.parametrize("spec,name", MATCHES)
def test_checkpoint_for_matches_the_folder_name(spec, name):
    got = checkpoint_for(spec)
    assert (got.name if got else None) == name


# (checkpoint, total parameters in billions as the model card rounds them, vision tower in millions)
SIZES = [
    ("Qwen2.5-VL-3B-Instruct", 3.75, 669),
    ("Qwen2.5-VL-7B-Instruct", 8.29, 677),
    ("Qwen3-VL-2B-Instruct", 2.13, 407),
    ("Qwen3-VL-4B-Instruct", 4.44, 415),
    ("Qwen3.5-0.8B", 0.85, 101),  # the card says 0.8B; transformers builds no multi-token-prediction head
]


@pytest.mark.parametrize("name,billions,vision_m", SIZES)
def test_parameter_counts_match_the_released_sizes(name, billions, vision_m):
    total, vision = count_parameters(CHECKPOINTS[name])
    assert round(total / 1e9, 2) == billions and round(vision / 1e6) == vision_m


def test_every_checkpoint_names_a_family_of_its_model_type():
    assert {s[0] for s in SIZES} == set(CHECKPOINTS)  # every catalogued size is checked above
    for c in CHECKPOINTS.values():
        assert c.model_type in FAMILIES[c.family].model_types, c.name


def test_table4_times_the_vision_tower_of_a_catalogued_row_without_weights(synth_root, tmp_path):
    import json

    from think2seg.reports.ablations import table4

    prompters = {"Qwen3.5-0.8B": "hf:/nonexistent/Qwen3.5-0.8B"}
    t4 = table4(prompters, tmp_path, data=f"earthreason:{synth_root}", encoder_timings=True)
    row = t4.loc["Qwen3.5-0.8B"]
    assert row["status"].startswith("needs weights") and "timed with random weights (832 px, bfloat16" in row["status"]
    assert row["image tokens"] == 676 and row["encoder s (random weights)"] > 0
    assert row["encoder peak RSS (GiB)"] > 0.2  # the bfloat16 tower alone is 0.2 GB
    cache = tmp_path / "table4" / "encoders" / "Qwen3.5-0.8B-bfloat16.json"
    assert json.loads(cache.read_text())["vision_params_M"] == pytest.approx(100.6)
    # a second table reads the kept measurement instead of timing again
    cache.write_text(json.dumps({**json.loads(cache.read_text()), "encode_s": 123.0}))
    again = table4(prompters, tmp_path, data=f"earthreason:{synth_root}", encoder_timings=True)
    assert again.loc["Qwen3.5-0.8B", "encoder s (random weights)"] == 123.0
    plain = table4(prompters, tmp_path, data=f"earthreason:{synth_root}")
    assert "encoder s (random weights)" not in plain.columns
