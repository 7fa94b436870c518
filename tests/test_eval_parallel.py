"""Data-parallel evaluation over 2 CPU processes (gloo, `accelerate launch ... -m think2seg.cli eval`):
the same records and metrics as one process, and a resume that folds a killed run's part files in. The
prompter is the shipped tiny Qwen2.5-VL named as `hf:<dir>`, so its think2seg_prompter.json (112 px,
its template) must be read for the answers to parse in the right space."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from think2seg.prompters.tiny import ASSET_DIR

REPO = Path(__file__).resolve().parents[1]
TIMINGS = ("gen_s", "seg_s")


def _eval(out: Path, data: Path, processes: int) -> subprocess.CompletedProcess:
    args = ["eval", "--data", f"earthreason:{data}", "--split", "val", "--prompter", f"hf:{ASSET_DIR}",
            "--segmenter", "grabcut", "--batch-size", "2", "--limit", "5", "--out", str(out)]
    if processes == 1:
        cmd = [sys.executable, "-m", "think2seg.cli", *args]
    else:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(REPO / "configs/accelerate/cpu2.yaml"), "-m", "think2seg.cli", *args]
    # one thread in every process, so single- and multi-process runs do the same arithmetic
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _records(out: Path) -> list[dict]:
    rows = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMINGS} for r in rows]


def _metrics(out: Path) -> dict:
    m = json.loads((out / "metrics.json").read_text())
    m.pop("seconds_per_sample")
    return m


@pytest.fixture(scope="module")
def single(tmp_path_factory, synth_root):
    out = tmp_path_factory.mktemp("eval") / "single"
    _eval(out, synth_root, 1)
    return out


@pytest.mark.slow
def test_two_processes_give_the_records_and_metrics_of_one(single, synth_root, tmp_path):
    out = tmp_path / "multi"
    proc = _eval(out, synth_root, 2)
    assert "by 2 processes" in proc.stdout
    one, two = _records(single), _records(out)
    assert len(one) == 5 and one == two  # same samples, same order, same completions and scores
    assert _metrics(single) == _metrics(out)
    assert json.loads((out / "config.json").read_text())["world_size"] == 2
    assert not list(out.glob("records.part-*"))
    # the checkpoint's own size (112 px), not the family default (840): answers are scored where given
    assert {tuple(r["model_size"]) for r in one} == {(112, 112)}
    assert sum(r["produced"] for r in one) >= 3  # real answers, so the metrics compare real masks


@pytest.mark.slow
def test_two_processes_resume_a_killed_runs_part_files(single, synth_root, tmp_path):
    out = tmp_path / "resumed"
    out.mkdir()
    done = [json.loads(x) for x in (single / "records.jsonl").read_text().splitlines()][:2]
    for r in done:
        r["gen_s"] = -1.0  # marks a record that must be kept, not recomputed
    # what rank 1 of an earlier 2-process run had written when it was killed (a torn line at the end)
    (out / "records.part-1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in done) + '{"id": "x')
    _eval(out, synth_root, 2)
    rows = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert [r["gen_s"] for r in rows[:2]] == [-1.0, -1.0] and all(r["gen_s"] >= 0 for r in rows[2:])
    assert sorted(map(json.dumps, _records(out))) == sorted(map(json.dumps, _records(single)))
    assert _metrics(out) == _metrics(single)


def test_batch_size_reaches_the_model_unless_the_spec_sets_one(tiny_policy):
    from think2seg.evaluation.engine import EvalConfig, eval_prompter

    def built(spec: str, **kw):
        return eval_prompter(EvalConfig(data="synthearth", out="unused", prompter=spec, **kw), world=1)

    assert built(f"hf:{tiny_policy}", batch_size=3).batch_size == 3
    assert built(f"tiny:{tiny_policy}", batch_size=5).batch_size == 5
    assert built(f"hf:{tiny_policy}?batch_size=2", batch_size=3).batch_size == 2
    assert built("oracle", batch_size=3).name.startswith("oracle")  # takes no batch size: none passed
