"""The in-training evaluation under real DeepSpeed ZeRO-3, on 2 CPU processes (gloo): the evaluation comes
before the first optimizer step, then a backward and a step must work.

DeepSpeed 0.19.8 runs ZeRO-3 on its CPU accelerator here. Its communication backend first JIT-compiles a
C++ shared-memory allreduce (``deepspeed.comm.torch.build_shm_op``), an optimisation over gloo that took
longer than 15 minutes to build on the shared 2-core test machine; the workers replace that builder by
"not available" (what DeepSpeed itself does when the op is incompatible), so collectives go through gloo.
Everything else is DeepSpeed's: partitioned and persistent parameters, the parameter-fetch hooks, trl's
``unwrap_model_for_generation`` gather, the engine's backward and step.
"""

import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from think2seg.prompters.tiny import ASSET_DIR

pytest.importorskip("deepspeed")


def _worker(rank: int, world: int, port: int, data: str, out: str) -> None:
    import faulthandler

    faulthandler.dump_traceback_later(840, exit=False)  # where a rank waits, should the test time out
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), ACCELERATE_USE_DEEPSPEED="true")
    import deepspeed.comm.torch  # noqa: F401

    sys.modules["deepspeed.comm.torch"].build_shm_op = lambda: None  # see module doc
    import torch
    from accelerate import Accelerator
    from accelerate.utils import DeepSpeedPlugin
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration, TrainerControl, TrainerState

    from think2seg.training.grpo import Think2SegArgs
    from think2seg.training.heldout_eval import EvalCallback

    # loaded before the plugin exists (no zero.Init); the shipped policy ends its answers well before 2048 tokens
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(ASSET_DIR, dtype=torch.float32)
    processor = AutoProcessor.from_pretrained(ASSET_DIR)
    processor.tokenizer.padding_side = "left"
    zero3 = {"stage": 3, "stage3_param_persistence_threshold": 4096}  # big matrices sharded, norms persistent
    plugin = DeepSpeedPlugin(hf_ds_config={"train_micro_batch_size_per_gpu": 1, "gradient_accumulation_steps": 1,
                                           "zero_optimization": zero3, "bf16": {"enabled": False}})
    acc = Accelerator(deepspeed_plugin=plugin)
    engine, optimizer = acc.prepare(model, torch.optim.AdamW(model.parameters(), lr=1e-4))

    meta = json.loads((ASSET_DIR / "think2seg_prompter.json").read_text())
    t2s = Think2SegArgs(data=f"earthreason:{data}", eval_split="val", eval_limit=2, segmenter="boxfill",
                        template=meta["template"], image_size=meta["image_size"])
    callback = EvalCallback(t2s)
    callback.trainer = SimpleNamespace(model_wrapped=engine, accelerator=acc)  # what train() hands it
    args = SimpleNamespace(output_dir=out, per_device_train_batch_size=1, deepspeed=None, max_completion_length=16)
    state = TrainerState(is_world_process_zero=rank == 0)
    engine.train()
    from think2seg.core.distributed import zero_stage

    print(f"rank {rank}: zero stage {zero_stage(None, args)}", flush=True)
    t0 = time.perf_counter()
    callback.on_train_begin(args, state, TrainerControl(), model=engine.module, processing_class=processor)
    print(f"rank {rank}: evaluation {time.perf_counter() - t0:.1f} s", flush=True)

    inference = [n for n, p in engine.module.named_parameters()
                 if p.is_inference() or getattr(p, "ds_tensor", p).is_inference()]
    batch = processor(text=["<think>a runway</think>"], return_tensors="pt")
    loss = engine(**batch, labels=batch["input_ids"]).loss
    acc.backward(loss)  # before the fix: "Inference tensors cannot be saved for backward"
    optimizer.step()
    Path(out, f"rank{rank}.json").write_text(json.dumps({"loss": float(loss), "inference": inference,
                                                         "training": engine.module.training}))


@pytest.mark.slow
def test_zero3_evaluation_before_the_first_step_leaves_a_trainable_model(synth_root, tmp_path):
    import torch.multiprocessing as mp

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ctx = mp.spawn(_worker, args=(2, 29500 + os.getpid() % 500, str(synth_root), str(tmp_path)), nprocs=2,
                   join=False)
    deadline = time.monotonic() + 900  # a rank stuck in a collective the other never reaches fails, not hangs
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail("ZeRO-3 evaluation did not finish in 900 s (ranks waiting on each other?)")
    res = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert all(r["inference"] == [] and r["training"] for r in res)
    assert all(r["loss"] == r["loss"] for r in res)  # finite, not NaN
    ev = tmp_path / "evals" / "step-0"
    assert len((ev / "records.jsonl").read_text().splitlines()) == 2
    config = json.loads((ev / "config.json").read_text())
    assert config["world_size"] == 2 and config["generation"]["max_new_tokens"] == 2048
