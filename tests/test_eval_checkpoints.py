"""`think2seg eval --checkpoints RUN_DIR [--every K]` and `--seeds`: every checkpoint of a real tiny GRPO run
scored through think2seg eval's own path (same completions as a plain eval of that checkpoint), resumable per
checkpoint; seeds reported as mean ± std with n."""

import json

import pandas as pd
import pytest

from think2seg.cli import main
from think2seg.core.records import read_records


@pytest.fixture(scope="module")
def tiny_run(tiny_policy, synth_root, tmp_path_factory):
    from tests.test_train import _args
    from think2seg.training.grpo import main as train_main

    out = tmp_path_factory.mktemp("ckpt") / "run"
    assert train_main(_args(tiny_policy, synth_root, out, 2)) == 0  # save_steps 1: checkpoint-1, checkpoint-2
    return out


@pytest.mark.slow
def test_every_checkpoint_is_scored_and_resumed(tiny_run, tiny_policy, synth_root, tmp_path, capsys):
    out = tmp_path / "evals"
    common = ["eval", "--checkpoints", str(tiny_run), "--split", "val", "--limit", "2", "--out", str(out)]
    assert main([*common, "--protocol", "authors", "segearth-r1"]) == 0
    df = pd.read_csv(out / "checkpoints.csv")
    # checkpoint-2 holds the final model's weights (step 2): the final model stands for it
    assert list(zip(df["step"], df["checkpoint"], df["protocol"], strict=True)) == [
        (1, "checkpoint-1", "authors"), (1, "checkpoint-1", "segearth-r1"),
        (2, "run", "authors"), (2, "run", "segearth-r1")]
    # eval's own generation budget (the checkpoint's 200 new tokens), not training's max_completion_length 16
    assert set(df["n"]) == {2} and (df["mean completion tokens"] > 16).all() and (df["mean completion tokens"] <= 200).all()
    for col in ("gIoU", "cIoU", "P@0.5", "rejection", "format rate"):
        assert col in df
    assert (out / "checkpoints.png").stat().st_size > 5_000
    # the data came from the run's config (the fixture dataset), not from a default
    cfg = json.loads((out / "step-1" / "authors" / "config.json").read_text())
    assert cfg["options"]["data"] == f"earthreason:{synth_root}" and cfg["options"]["temperature"] == 0.0

    # the same generation as `think2seg eval` of that checkpoint
    spec = cfg["options"]["prompter"]
    assert spec.startswith(f"tiny:{tiny_run / 'checkpoint-1'}?")
    plain = tmp_path / "plain"
    assert main(["eval", "--data", f"earthreason:{synth_root}", "--split", "val", "--limit", "2", "--prompter", spec,
                 "--out", str(plain)]) == 0
    assert [r["completion"] for r in read_records(plain)] == [
        r["completion"] for r in read_records(out / "step-1" / "authors")]

    # resumable per checkpoint: a finished checkpoint is not evaluated again; a removed one is redone
    capsys.readouterr()
    (out / "step-2" / "authors" / "metrics.json").unlink()
    assert main([*common, "--protocol", "authors", "segearth-r1"]) == 0
    printed = capsys.readouterr().out
    assert "step 1 (checkpoint-1)" not in printed and "step 2 (run), protocol authors" in printed
    pd.testing.assert_frame_equal(pd.read_csv(out / "checkpoints.csv"), df)

    # --every 2: only the multiples of 2 (and the final model; step 2 is done already); --with-start adds the
    # starting model as step 0, evaluated the same way
    assert main([*common, "--every", "2", "--with-start"]) == 0
    printed = capsys.readouterr().out
    assert "step 0 (start), protocol authors" in printed and "step 2" not in printed
    again = pd.read_csv(out / "checkpoints.csv")
    assert list(again["step"]) == [0, 2] and list(again["checkpoint"]) == ["start", "run"]
    start_cfg = json.loads((out / "step-0" / "authors" / "config.json").read_text())
    assert start_cfg["options"]["prompter"].startswith(f"tiny:{tiny_policy}?")


def test_checkpoints_of_a_non_run_is_one_line(tmp_path, capsys):
    assert main(["eval", "--checkpoints", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "think2seg_train_config.json" in err and "Traceback" not in err
    assert main(["eval", "--out", str(tmp_path / "x")]) == 2
    assert "--data is required" in capsys.readouterr().err
    assert main(["eval", "--data", "synthearth", "--out", str(tmp_path / "x"), "--seeds", "0,x"]) == 2
    assert "--seeds" in capsys.readouterr().err
    assert main(["eval", "--data", "synthearth", "--out", str(tmp_path / "x"), "--protocol", "authors", "strict"]) == 2
    assert "one protocol (several only with --checkpoints)" in capsys.readouterr().err


@pytest.mark.slow
def test_seeds_report_mean_std_and_n(tiny_policy, synth_root, tmp_path, capsys):
    data = ["--data", f"earthreason:{synth_root}", "--split", "val", "--limit", "2", "--prompter", f"tiny:{tiny_policy}"]
    assert main(["eval", *data, "--temperature", "1.0", "--seeds", "0,1,2", "--out", str(tmp_path / "s")]) == 0
    res = json.loads((tmp_path / "s" / "spread.json").read_text())
    g = res["spread"]["gIoU"]
    assert res["seeds"] == [0, 1, 2] and g["n"] == 3 and len(g["values"]) == 3
    assert g["std"] >= 0 and abs(g["mean"] - sum(g["values"]) / 3) < 1e-9
    texts = [[r["completion"] for r in read_records(tmp_path / "s" / f"seed-{s}")] for s in (0, 1, 2)]
    assert texts[0] != texts[1]  # sampling differs with the seed
    printed = capsys.readouterr().out
    assert "gIoU: " in printed and "(n=3)" in printed
    # greedy with every question: the seeds change nothing (std exactly 0)
    assert main(["eval", *data, "--questions", "all", "--seeds", "0,1", "--out", str(tmp_path / "g")]) == 0
    greedy = json.loads((tmp_path / "g" / "spread.json").read_text())["spread"]["gIoU"]
    assert greedy["std"] == 0.0 and greedy["n"] == 2
    assert "the seeds change nothing" in capsys.readouterr().out
