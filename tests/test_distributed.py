"""think2seg.core.distributed and the data-parallel evaluation plan: rank-0 decisions over 2 CPU processes
(gloo), the ZeRO stage as `accelerate launch --config_file configs/accelerate/zero3.yaml` exposes it, batch
sharding and the merge of part files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from think2seg.core import distributed as dist
from think2seg.core.records import consolidate, part_path
from think2seg.evaluation.shards import plan

REPO = Path(__file__).resolve().parents[1]


def test_single_process_helpers_are_identities():
    assert (dist.rank(), dist.world_size()) == (0, 1)
    assert dist.broadcast({"a": 1}) == {"a": 1} and dist.gather(3) == [3]
    assert dist.decide(lambda: "x") == "x"
    dist.barrier()


def test_shard_round_robin_covers_everything_once():
    items = list(range(7))
    shards = [dist.shard(items, r, 3) for r in range(3)]
    assert shards == [[0, 3, 6], [1, 4], [2, 5]]
    assert sorted(sum(shards, [])) == items
    with pytest.raises(ValueError, match="shard 3/3"):
        dist.shard(items, 3, 3)


def test_plan_gives_whole_single_process_batches_and_pads_in_lockstep():
    todo = list("abcdefg")  # batches of 2: ab cd ef g
    assert plan(todo, 2, 0, 1) == [(["a", "b"], True), (["c", "d"], True), (["e", "f"], True), (["g"], True)]
    r0, r1, r2 = (plan(todo, 2, r, 3) for r in range(3))
    assert [b for b, _ in r0] == [["a", "b"], ["g"]] and [b for b, _ in r1] == [["c", "d"]]
    # lockstep (ZeRO-3): every rank runs ceil(4 / 3) = 2 generate calls; padding is marked not real
    l1 = plan(todo, 2, 1, 3, lockstep=True)
    assert l1 == [(["c", "d"], True), (["a", "b"], False)]
    assert all(len(plan(todo, 2, r, 3, lockstep=True)) == 2 for r in range(3))
    assert plan([], 2, 1, 3, lockstep=True) == []  # nothing to do: no rank generates at all


def test_consolidate_folds_parts_in_dataset_order_and_repairs(tmp_path):
    rec = tmp_path / "records.jsonl"
    rec.write_text(json.dumps({"id": "b", "v": 1}) + "\n" + '{"id": "c", "v"')  # torn last line
    part_path(tmp_path, 0).write_text(json.dumps({"id": "d", "v": 2}) + "\n" + json.dumps({"id": "b", "v": 9}) + "\n")
    part_path(tmp_path, 1).write_text(json.dumps({"id": "a", "v": 3}) + "\n")
    merged = consolidate(tmp_path, order=["a", "b", "c", "d"])
    assert [(r["id"], r["v"]) for r in merged] == [("b", 1), ("a", 3), ("d", 2)]
    assert [json.loads(x)["id"] for x in rec.read_text().splitlines()] == ["b", "a", "d"]
    assert not list(tmp_path.glob("records.part-*"))
    mtime = rec.stat().st_mtime_ns
    assert consolidate(tmp_path, order=[]) == merged and rec.stat().st_mtime_ns == mtime  # clean: untouched


def test_zero_stage_from_config_files_and_dicts(monkeypatch):
    for k in ("ACCELERATE_USE_DEEPSPEED", "ACCELERATE_DEEPSPEED_CONFIG_FILE", "ACCELERATE_DEEPSPEED_ZERO_STAGE"):
        monkeypatch.delenv(k, raising=False)
    assert dist.zero_stage() is None
    assert dist.zero_stage(str(REPO / "configs/deepspeed/zero3.json")) == 3
    assert dist.zero_stage({"zero_optimization": {"stage": 2}}) == 2
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "1")
    assert dist.zero_stage() == 1


@pytest.mark.slow
@pytest.mark.parametrize("name,stage", [("zero3", 3), ("zero2", 2)])
def test_zero_stage_under_accelerate_launch(tmp_path, name, stage):
    # the documented launch: `--deepspeed` is not given, the plugin comes from the environment
    script = tmp_path / "probe.py"
    script.write_text("from think2seg.core.distributed import zero_stage\nprint('STAGE', zero_stage())\n")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(REPO / f"configs/accelerate/{name}.yaml"), "--num_processes", "1", str(script)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"STAGE {stage}" in proc.stdout


def _budget_worker(rank: int, world: int, rdv: str, out: str) -> None:
    import torch.distributed as td
    from transformers import TrainerControl

    from think2seg.training.stop import TimeBudgetCallback

    td.init_process_group("gloo", init_method=f"file://{rdv}", rank=rank, world_size=world)
    results = {}
    # (rank 0's budget, rank 1's budget) in minutes: 0 has passed, 1000 has not
    for case, minutes in {"rank0_over": (0, 1000), "rank1_over": (1000, 0)}.items():
        cb = TimeBudgetCallback(minutes[rank])
        control = cb.on_step_end(None, type("S", (), {"global_step": 1})(), TrainerControl())
        results[case] = control.should_training_stop
    results["gathered"] = dist.gather(rank * 10)
    Path(out, f"rank{rank}.json").write_text(json.dumps(results))
    td.destroy_process_group()


@pytest.mark.slow
def test_time_budget_is_rank0s_decision_on_every_rank(tmp_path):
    import torch.multiprocessing as mp

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_budget_worker, args=(2, str(tmp_path / "rdv"), str(tmp_path)), nprocs=2, join=True)
    res = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    # both ranks stop when rank 0's clock says so, and neither when only rank 1's does: no rank is left
    # waiting in a collective that the other never reaches
    assert [r["rank0_over"] for r in res] == [True, True]
    assert [r["rank1_over"] for r in res] == [False, False]
    assert res[0]["gathered"] == res[1]["gathered"] == [0, 10]


def test_zero_stage_reads_accelerate_115s_plugin_dict(monkeypatch):
    # item 9: accelerate 1.15 keeps `deepspeed_plugins` (a dict of plugins, one selected); the old lookup of
    # `deepspeed_plugin` in the shared state never found it and fell back to the environment (stage 2 here)
    from accelerate.state import AcceleratorState
    from accelerate.utils import DeepSpeedPlugin

    for k in ("ACCELERATE_DEEPSPEED_CONFIG_FILE", "ACCELERATE_DEEPSPEED_ZERO_STAGE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "false")
    plugin = DeepSpeedPlugin(zero_stage=3)
    plugin._set_selected(True)  # what AcceleratorState does for the plugin it enables
    other = DeepSpeedPlugin(zero_stage=1)
    monkeypatch.setitem(AcceleratorState._shared_state, "deepspeed_plugins", {"other": other, "main": plugin})
    assert dist.zero_stage() == 3
    monkeypatch.setitem(AcceleratorState._shared_state, "deepspeed_plugins", plugin)  # a single plugin
    assert dist.zero_stage() == 3
    monkeypatch.delitem(AcceleratorState._shared_state, "deepspeed_plugins")
    assert dist.zero_stage() is None
    # the training arguments' own plugin (transformers sets it when DeepSpeed is on) comes first
    assert dist.zero_stage(None, type("Args", (), {"deepspeed_plugin": other})()) == 1


def test_relative_deepspeed_config_is_resolved_or_refused_in_one_line(tmp_path, monkeypatch):
    # item 9: the shipped accelerate YAMLs name configs/deepspeed/*.json relative to the repository root
    monkeypatch.chdir(tmp_path)
    env = {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_CONFIG_FILE": "configs/deepspeed/zero3.json"}
    assert dist.resolve_deepspeed_config(env) == str(REPO / "configs/deepspeed/zero3.json")
    assert env["ACCELERATE_DEEPSPEED_CONFIG_FILE"] == str(REPO / "configs/deepspeed/zero3.json")
    bad = {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_CONFIG_FILE": "configs/deepspeed/zero9.json"}
    with pytest.raises(dist.DeepSpeedConfigError, match="zero9.json.*not found") as e:
        dist.resolve_deepspeed_config(bad)
    assert "\n" not in str(e.value)
    assert dist.resolve_deepspeed_config({"ACCELERATE_DEEPSPEED_CONFIG_FILE": "none"}) is None
    # the training entry point refuses before anything loads (exit status 2 from `python -m`)
    from think2seg.core.errors import UserError
    from think2seg.training.grpo import main

    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_CONFIG_FILE", "configs/deepspeed/zero9.json")
    with pytest.raises(UserError, match="zero9.json"):
        main(["--max_steps", "1"])


def _config_worker(rank: int, world: int, rdv: str, out: str) -> None:
    import time

    import torch.distributed as td

    from think2seg.training.grpo import Think2SegArgs, save_resolved_config

    td.init_process_group("gloo", init_method=f"file://{rdv}", rank=rank, world_size=world)

    class Cfg:  # what save_resolved_config reads of a GRPOConfig; the rank shows who wrote the file
        output_dir, world_size = out, world

        def to_dict(self):
            return {"writer": rank}

    if rank == 1:
        time.sleep(1.0)  # rank 1 comes last: it would overwrite rank 0's file
    wrote = save_resolved_config(Think2SegArgs(), Cfg())
    Path(out, f"rank{rank}.json").write_text(json.dumps(wrote is not None))
    # no rank leaves before both are done: a rank 0 that exits while rank 1 is still connecting its gloo
    # mesh makes rank 1's init fail with "Connection closed by peer" (seen once on a loaded machine)
    td.barrier()
    td.destroy_process_group()


@pytest.mark.slow
def test_only_rank0_writes_the_train_config(tmp_path):
    import torch.multiprocessing as mp

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_config_worker, args=(2, str(tmp_path / "rdv"), str(tmp_path)), nprocs=2, join=True)
    assert json.loads((tmp_path / "think2seg_train_config.json").read_text())["grpo"] == {"writer": 0}
    assert [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)] == [True, False]
