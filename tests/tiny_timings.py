"""Parameter counts and CPU timings of the tiny random-init models the tests build (issue #27's note):
each prompter family through ``hf:<dir>`` and each transformers SAM through its segmenter spec, loaded
by the same code a user's weights go through.

    .venv/bin/python tests/tiny_timings.py --threads 2      # a markdown table; run it on an idle machine

Prompters: parameters, one vision-tower pass on the processor's output for a ``--size`` px image, and one
greedy generation of ``--tokens`` new tokens (random weights never stop early; ``min_new_tokens`` holds
them to it). Segmenters: parameters, one image encoding, one decode of a box + 2 points. Each time is the
median of ``--repeats`` passes after an untimed first one. Test-only: the builders live in tests/.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tiny_models import build_tiny  # noqa: E402
from tiny_sam import TINY_SAM_BACKENDS, build_tiny_sam  # noqa: E402

from think2seg.core.types import Instance, Sample  # noqa: E402
from think2seg.prompters import build_prompter  # noqa: E402
from think2seg.segmenters import build_segmenter  # noqa: E402

FAMILIES = ("qwen2.5-vl", "qwen3-vl", "qwen3.5", "internvl3", "llava")


def _median(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _sample(size: int) -> Sample:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    return Sample(id="t:0", image_id="t", question="Where could a plane take off?", image_path=Path("mem.png"),
                  dataset="t", split="val", image_loader=lambda: image, mask_loader=lambda: np.zeros((size, size), bool))


def prompter_row(family: str, root: Path, size: int, tokens: int, repeats: int) -> dict:
    import torch

    kwargs = {"image_size": size} if family.startswith("qwen3") else {}
    build_tiny(family, root / family, **kwargs)
    p = build_prompter(f"hf:{root / family}?max_new_tokens={tokens}", generation_kwargs={"min_new_tokens": tokens})
    model, _ = p.load()
    sample = _sample(p.image_size[0])
    inputs = p.prepare([sample])
    vision = getattr(model.model, "visual", None) or getattr(model.model, "vision_tower", None)
    pixels = {k: v for k, v in inputs.items() if k.startswith(("pixel_values", "image_grid"))}

    def encode():
        with torch.inference_mode():
            if hasattr(model.model, "get_image_features"):
                model.model.get_image_features(**pixels)
            else:
                vision(pixels["pixel_values"])

    return {"model": family, "params": sum(t.numel() for t in model.parameters()),
            "vision params": sum(t.numel() for t in vision.parameters()) if vision is not None else 0,
            "image px": p.image_size[0], "pixel_values": "x".join(str(d) for d in pixels["pixel_values"].shape),
            "encode ms": 1000 * _median(encode, repeats),
            "generate s": _median(lambda: p.generate([sample]), repeats), "new tokens": tokens}


def segmenter_row(backend: str, root: Path, repeats: int) -> dict:
    build_tiny_sam(backend, root / backend)
    seg = build_segmenter(f"{backend}:{root / backend}")
    image = np.random.default_rng(1).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    prompt = [[Instance(box=(40, 40, 120, 140), positive=((80, 90), (70, 100)))]]

    def encode():
        seg.clear_cache()
        seg.set_image(image)

    encode_s = _median(encode, repeats)
    decode_s = _median(lambda: seg.predict(prompt), repeats)
    return {"model": backend, "params": seg.num_parameters, "image px": 256, "encode ms": 1000 * encode_s,
            "decode ms": 1000 * decode_s, "dtype": seg.dtype, "device": seg.device}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--size", type=int, default=64, help="prompter image side (Qwen3 families: multiple of 32)")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    import os

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f}")
        print("| prompter family | parameters | vision tower | image px | pixel_values | vision pass (ms) | "
              f"generate {args.tokens} tokens (s) |\n|---|---|---|---|---|---|---|")
        for fam in FAMILIES:
            r = prompter_row(fam, root, args.size, args.tokens, args.repeats)
            print(f"| {r['model']} | {r['params']:,} | {r['vision params']:,} | {r['image px']} | {r['pixel_values']} | "
                  f"{r['encode ms']:.1f} | {r['generate s']:.3f} |", flush=True)
        print("\n| segmenter | parameters | input image px | image encoding (ms) | box + 2 points decode (ms) | dtype, device |"
              "\n|---|---|---|---|---|---|")
        for b in TINY_SAM_BACKENDS:
            r = segmenter_row(b, root, args.repeats)
            print(f"| {r['model']} | {r['params']:,} | {r['image px']} | {r['encode ms']:.1f} | "
                  f"{r['decode ms']:.1f} | {r['dtype']}, {r['device']} |", flush=True)
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
