"""``think2seg bench reward``: output format, mask agreement, errors (small sizes; the full run is by hand)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from think2seg.cli import main
from think2seg.cli.bench import make_case

SPEEDUP = re.compile(r"^speedup: \d+\.\d$")


def test_make_case_is_deterministic_and_in_bounds():
    image, sets = make_case(100, group=5, instances=3, seed=4)
    again, sets2 = make_case(100, group=5, instances=3, seed=4)
    assert image.shape == (100, 100, 3) and image.dtype == np.uint8 and np.array_equal(image, again)
    assert sets == sets2 and len(sets) == 5 and all(len(s) == 3 for s in sets)
    assert len({s[0].box for s in sets}) > 1  # completions differ (jitter)
    for s in sets:
        for inst in s:
            x1, y1, x2, y2 = inst.box
            assert 0 <= x1 <= x2 < 100 and 0 <= y1 <= y2 < 100 and len(inst.positive) == 2


def run(capsys, *argv):
    rc = main(["bench", "reward", *argv])
    out, err = capsys.readouterr()
    return rc, out.strip().splitlines(), err


def test_bench_reward_grabcut(capsys):
    rc, lines, _ = run(capsys, "--segmenter", "grabcut", "--size", "64", "--group", "3", "--instances", "2",
                       "--repeats", "2")
    assert rc == 0
    assert lines[0].startswith("bench reward: grabcut on cpu, image 64x64, G=3 completions x 2 instances")
    released, ours = (ln for ln in lines if ln.startswith(("released", "ours")))
    assert released.split()[-5:-3] == ["-", "6"] and ours.split()[-5:-3] == ["-", "6"]
    assert lines[-2] == "masks: identical (6/6 completions, 0 differing pixels)"
    assert SPEEDUP.match(lines[-1])


def test_bench_reward_sam2_tiny(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc, lines, _ = run(capsys, "--segmenter", "sam2:tiny:random", "--device", "cpu", "--size", "96",
                           "--group", "2", "--instances", "2", "--no-warmup")
    assert rc == 0
    assert lines[0].startswith("bench reward: sam2:tiny:random on cpu, torch threads")
    assert "decoder batch 1, single rows: cached, conv layout: " in lines[0]
    assert lines[1].startswith("NOTE: random SAM2 weights")
    released, ours = (ln for ln in lines if ln.startswith(("released", "ours")))
    # encoder passes: one per completion vs one per group; decoder calls: one per instance (CPU default)
    assert released.split()[-5:-3] == ["2", "4"] and ours.split()[-5:-3] == ["1", "4"]
    assert lines[-2] == "masks: identical (2/2 completions, 0 differing pixels)"
    assert SPEEDUP.match(lines[-1])
    assert float(lines[-1].split()[1]) > 1.2  # one encoder pass instead of two


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--segmenter", "sam2:huge"], ["--segmenter", "huge"]),
        (["--segmenter", "grabcut", "--group", "0"], ["--group", ">= 1"]),
        (["--segmenter", "grabcut", "--decoder-batch", "4"], ["--decoder-batch", "sam2"]),
        (["--segmenter", "sam2:tiny:random", "--threads", "0"], ["--threads", ">= 1"]),
        (["--segmenter", "sam2:large"], ["sam2.1_hiera_large.pt", "dl.fbaipublicfiles.com"]),
    ],
)
def test_bench_reward_errors_name_the_option(capsys, tmp_path, monkeypatch, argv, words):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("THINK2SEG_SAM2_DIR", raising=False)
    rc, _, err = run(capsys, *argv)
    assert rc == 2 and err.startswith("think2seg bench: error:")
    for w in words:
        assert w in err


def test_bench_without_subcommand_prints_help(capsys):
    assert main(["bench"]) == 1
    assert "bench reward" in capsys.readouterr().out


def test_bench_encoder_times_the_full_size_tower_of_a_catalogued_checkpoint(capsys):
    import json

    from think2seg.prompters.catalog import CHECKPOINTS, count_parameters

    assert main(["bench", "encoder", "--checkpoint", "Qwen3.5-0.8B", "--image-size", "64", "--repeats", "1",
                 "--threads", "1"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # the tower built with random weights is the catalogued architecture's, parameter for parameter
    assert row["vision_params_M"] == round(count_parameters(CHECKPOINTS["Qwen3.5-0.8B"])[1] / 1e6, 1)
    assert row["patches"] == (64 // 16) ** 2 and row["image_tokens"] == row["patches"] // 4
    assert row["encode_s"] > 0 and row["peak_rss_GiB"] > 0


def test_bench_encoder_builds_the_tower_in_the_asked_dtype():
    import torch

    from think2seg.prompters.catalog import CHECKPOINTS, vision_tower

    tower = vision_tower(CHECKPOINTS["Qwen3.5-0.8B"], torch.bfloat16)
    assert {p.dtype for p in tower.parameters()} == {torch.bfloat16}


@pytest.mark.parametrize("argv, words", [
    (["--checkpoint", "Qwen3.5-0.8B", "--image-size", "70"], "--image-size"),
    (["--checkpoint", "Qwen3.5-0.8B", "--repeats", "0"], "--repeats"),
])
def test_bench_encoder_errors_name_the_option(capsys, argv, words):
    assert main(["bench", "encoder", *argv]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1
