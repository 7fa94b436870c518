"""docs/gpus.md read back against the configs it documents: the vLLM environment's install lines, the
memory table's generation rows, the launch lines' shutdown timeout."""

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs/gpus.md").read_text()
PARAMS = {"3B": 3_754_622_976, "7B": 8_292_166_656}  # the doc's counts (Qwen2.5-VL, built on `meta`)


def _section(title: str) -> str:
    start = DOC.index(f"## {title}")
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end > 0 else None]


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_vllm_install_block_has_every_extra_and_flag_its_training_config_needs():
    # item 3: `.[vllm,sam2]` without deepspeed, sam2 built with isolation, for a ZeRO-3 launch
    cfg_path = REPO / "configs/train/paper_qwen3b_vllm.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    launch = re.search(r"--config_file (\S+)", cfg_path.read_text()).group(1)
    accel = yaml.safe_load((REPO / launch).read_text())
    needed = {"vllm"} if cfg["use_vllm"] else set()
    needed |= {"sam2"} if cfg["segmenter"].startswith("sam2") else set()
    needed |= {"deepspeed"} if accel["distributed_type"] == "DEEPSPEED" else set()
    assert needed == {"vllm", "sam2", "deepspeed"}

    (block,) = [b for b in _bash_blocks(_section("vLLM")) if "pip install" in b]
    lines = [x.strip() for x in block.splitlines() if "pip install" in x]
    editable = next(x for x in lines if " -e " in x)
    extras = set(re.search(r"\.\[([^\]]+)\]", editable).group(1).split(","))
    assert needed <= extras, f"missing extras {needed - extras}"
    order = {name: next(i for i, x in enumerate(lines) if re.search(rf"\b{name}\b", x) and " -e " not in x)
             for name in ("vllm", "sam2", "deepspeed")}
    assert order["vllm"] < order["sam2"] and order["vllm"] < order["deepspeed"]  # they build against vLLM's torch
    assert "--no-build-isolation" in lines[order["sam2"]] and "SAM2_BUILD_CUDA=0" in lines[order["sam2"]]
    assert "--no-build-isolation" in lines[order["deepspeed"]] and "DS_BUILD_OPS=0" in lines[order["deepspeed"]]
    assert any("setuptools" in x and "wheel" in x for x in lines[: order["sam2"]])  # no isolation: needs them
    make = (REPO / "Makefile").read_text()  # the same pins as the default set-up
    for pin in ("sam2==1.1.0", "deepspeed==0.19.8"):
        assert pin in make and pin in block


def test_memory_table_counts_generation_batch_and_gathered_weights():
    # item 8: trl generates per_device_train_batch_size x steps_per_generation sequences per call, and ZeRO-3
    # gathers the full weights to generate
    table = _section("Memory and disk")
    assert "computed, not measured" in table
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in table.splitlines() if line.startswith("| ") and not line.startswith("| |")}
    seq_row = next(v for k, v in rows.items() if k.startswith("sequences per generate call"))
    assert "per_device_train_batch_size × steps_per_generation" in next(k for k in rows if k.startswith("sequences"))
    for cell, recipe in zip(seq_row, ("paper_qwen3b", "paper_qwen7b", "lora_24gb"), strict=True):
        cfg = yaml.safe_load((REPO / f"configs/train/{recipe}.yaml").read_text())
        steps = cfg.get("steps_per_generation") or cfg.get("gradient_accumulation_steps", 1)
        assert cell.endswith(f"= {cfg['per_device_train_batch_size'] * steps} seq"), (recipe, cell)
    kv = next(v for k, v in rows.items() if k.startswith("KV cache"))
    assert kv[0].startswith("36.9 kB/token: 32 seq") and "2.5 GB" in kv[0] and kv[1].startswith("57.3 kB/token: 24 seq")
    gathered = next(v for k, v in rows.items() if k.startswith("full weights gathered for generation"))
    assert gathered[:2] == [f"{2 * PARAMS['3B'] / 1e9:.1f} GB / GPU", f"{2 * PARAMS['7B'] / 1e9:.1f} GB / GPU"]


def test_documented_launch_lines_raise_the_elastic_shutdown_timeout():
    # item 5: the launcher SIGKILLs the workers TORCH_ELASTIC_SHUTDOWN_TIMEOUT (30) s after forwarding SIGTERM
    from think2seg.training.stop import SHUTDOWN_TIMEOUT_S

    (training,) = [b for b in _bash_blocks(_section("Training")) if "accelerate launch" in b]
    assert f"export TORCH_ELASTIC_SHUTDOWN_TIMEOUT={SHUTDOWN_TIMEOUT_S}" in training
    assert training.index("TORCH_ELASTIC_SHUTDOWN_TIMEOUT") < training.index("accelerate launch")
