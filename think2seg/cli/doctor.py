"""``think2seg doctor``: what this machine can run, and which weights it can find.

Environment variables (also options): ``THINK2SEG_SAM2_DIR`` — a folder with the official SAM2.1
checkpoints (``sam2.1_hiera_{tiny,small,base_plus,large}.pt``); ``THINK2SEG_MODELS_DIR`` — a folder whose
sub-folders are transformers model directories (e.g. ``Qwen2.5-VL-3B-Instruct``, a Think2Seg-RS checkpoint).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from typing import Any

from think2seg.core.model_dirs import find_model_dirs, hf_weights_missing
from think2seg.prompters.families import FAMILIES
from think2seg.segmenters import find_sam2_checkpoints
from think2seg.segmenters.checkpoints import REBUILD, checkpoint_dirs, shipped_sam2_checkpoints
from think2seg.segmenters.spec import HF_SAM_BACKENDS
from think2seg.training.setup import flash_attention_status


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor",
        help="print torch/CUDA/bf16 and library versions, and the SAM2 checkpoints and LVLM dirs found",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--sam2-dir", action="append", default=[], help="folder with SAM2.1 checkpoints (repeatable)"
    )
    p.add_argument("--models-dir", action="append", default=[], help="folder of LVLM model dirs (repeatable)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def _version(module: str) -> str | None:
    try:
        mod = importlib.import_module(module)
    except Exception as e:  # a broken install is worth reporting, not crashing on
        return f"not importable ({type(e).__name__}: {str(e)[:80]})"
    version = getattr(mod, "__version__", None)
    if version is None:
        try:
            version = dist_version(module)
        except PackageNotFoundError:
            version = "installed"
    return version


def _installed_version(dist: str) -> str | None:
    """A distribution's version without importing it (None when absent)."""

    try:
        return dist_version(dist)
    except PackageNotFoundError:
        return None


def collect(sam2_dirs: list[str], models_dirs: list[str]) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "bf16_supported": bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported()),
        "cpu_threads": torch.get_num_threads(),
    }
    for name in (
        "think2seg",
        "transformers",
        "trl",
        "accelerate",
        "peft",
        "sam2",
        "deepspeed",
        "cv2",
        "papermill",
    ):
        info[name] = _version(name)
    try:
        import flash_attn  # noqa: F401

        info["flash_attn"] = _version("flash_attn")
    except Exception:
        info["flash_attn"] = None

    why = flash_attention_status()
    info["attention"] = (
        "flash_attention_2 usable" if why is None
        else f"sdpa: {why} (configs asking for flash_attention_2 fall back to sdpa with a warning)"
    )
    info["vllm"] = _installed_version("vllm")
    try:
        # the options first, then exactly the folders build_segmenter searches ($THINK2SEG_SAM2_DIR, ./checkpoints)
        search = [*sam2_dirs, *checkpoint_dirs()]
        info["sam2_search_dirs"] = [str(d) for d in search]
        found = find_sam2_checkpoints(search)
        info["sam2_checkpoints"] = {k: (str(v) if v else None) for k, v in found.items()}
    except ImportError as e:
        info["sam2_checkpoints"] = f"segmenters unavailable ({e})"
    info["prompter_families"] = ", ".join(
        f"{f.name} ({f.model_class}{'' if f.vllm else ', no vLLM'})" for f in FAMILIES.values())
    # transformers' SAM segmenters: default hub id and whether its weights are in the local hub cache
    info["hf_segmenters"] = {
        b: f"{b}:{hub} ({hf_weights_missing(hub) or 'cached'})" for b, hub in HF_SAM_BACKENDS.items()}
    # what runs with no download: the weightless ones and the SAM2 sizes shipped in the package
    shipped: dict[str, str] = {"grabcut": "weightless", "boxfill": "weightless"}
    for size, path in shipped_sam2_checkpoints().items():
        shipped[f"sam2:{size}"] = str(path) if path else f"not shipped (build: {REBUILD.format(size=size)})"
    info["segmenters_shipped"] = shipped
    env_models = os.environ.get("THINK2SEG_MODELS_DIR")

    info["model_dirs"] = find_model_dirs([*models_dirs, *([env_models] if env_models else [])])
    info["hf_offline"] = os.environ.get("HF_HUB_OFFLINE") == "1"
    return info


def run(args: argparse.Namespace) -> int:
    info = collect(args.sam2_dir, args.models_dir)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    width = max(len(k) for k in info)
    for k, v in info.items():
        if k == "model_dirs":
            print(
                f"{k:<{width}}  " + ("none found (use --models-dir or THINK2SEG_MODELS_DIR)" if not v else "")
            )
            for m in v:
                print(f"{'':<{width}}  - {m['path']}: {m.get('model_type') or m.get('error')}")
        elif k == "hf_segmenters":
            print(f"{k:<{width}}  " + ", ".join(v))
            for line in v.values():
                print(f"{'':<{width}}  - {line}")
        elif k == "segmenters_shipped":
            print(f"{k:<{width}}  " + ", ".join(v))
            for s, p in v.items():
                print(f"{'':<{width}}  - {s}: {p}")
        elif k == "sam2_checkpoints" and isinstance(v, dict):
            print(f"{k:<{width}}  " + ", ".join(f"{s}={'found' if p else 'missing'}" for s, p in v.items()))
            for s, p in v.items():
                if p:
                    print(f"{'':<{width}}  - {s}: {p}")
        else:
            print(f"{k:<{width}}  {v}")
    return 0
