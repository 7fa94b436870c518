"""``think2seg bench``: benchmarks. ``bench reward`` times the reward's mask path; ``bench parse`` measures
how much the parse policy changes rewards and gIoU on a seeded mix of malformed answers
(:mod:`think2seg.reports.malformed`); ``bench encoder`` times a released prompter's vision tower at full
size with random weights (:func:`think2seg.prompters.catalog.vision_tower`), for the Table 4 rows whose
weights are not here.

    think2seg bench reward --segmenter sam2:small:random --group 16 --instances 2 --size 840
    think2seg bench reward --segmenter grabcut --size 256 --repeats 3
    think2seg bench encoder --checkpoint Qwen2.5-VL-3B-Instruct --threads 2

One synthetic image (``--size`` px square, one object per instance) and G = ``--group`` completions, each
a prompt set of ``--instances`` instances (box + two positive points, jittered per completion, as the
paper's answers). Both paths run on the same prompts in the same process:

- released: a fresh embedding per completion, instances decoded one at a time (the released reward);
- ours: one embedding per group (content cache cleared first, so it is counted), instances batched.

With E an encoder pass, d one released decode and d' one of ours, the ratio is G(E + k d) / (E + G k d')
for k instances per completion: the decoder, not the encoder, bounds it. Ours decodes single rows with
the prompt-independent part of SAM2's decoder done once per image (``sam2_decoder.py``; same masks bit for
bit). The header, printed after the warm-up, says which decoder path single rows take and the layout of
the upscaling convolutions. Measured values of E, d, d' and the ratio: docs/sam2.md.

The masks must agree (bit for bit by default; ``--tolerance`` is the fraction of pixels per mask allowed
to differ, default 0 except with batched decoding or CUDA, 1e-3). The table gives seconds per group
(median over ``--repeats``); the last line is ``speedup: X.Y`` (released / ours). Timings on shared
machines are noisy: compare the ratio from one run, and read the load average printed in the header
(on a CPU shared with another busy job, torch's default threads thrash on the decoder's many small ops:
``--threads 1`` then gives the fairer ratio).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import cv2
import numpy as np
from tqdm import tqdm

from think2seg.cli.options import add_segmenter
from think2seg.core.errors import CLIError
from think2seg.core.types import Instance
from think2seg.prompters.catalog import CHECKPOINTS, vision_inputs, vision_tower
from think2seg.prompters.families import FAMILIES
from think2seg.reports.malformed import malformed_mix, policy_effects
from think2seg.segmenters import (
    CheckpointNotFoundError,
    build_segmenter,
    parse_segmenter_spec,
    released_style_segment,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="benchmarks (bench reward, bench parse)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="bench_command", metavar="BENCH")
    r = sub.add_parser("reward", help="released vs cached+batched mask path of the reward",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_segmenter(r, default="sam2:small:random", what="the segmenter to time: ")
    r.add_argument("--group", "-G", type=int, default=16, help="completions per image, G (default: 16)")
    r.add_argument("--instances", type=int, default=2, help="instances per completion (default: 2)")
    r.add_argument("--size", type=int, default=840, help="image side in px (default: 840)")
    r.add_argument("--repeats", type=int, default=1, help="timed repetitions of both paths (default: 1)")
    r.add_argument("--device", default=None, help="cpu / cuda / cuda:1 (default: cuda if available)")
    r.add_argument("--decoder-batch", type=int, default=None,
                   help="SAM2 decoder rows per call (default: 1 on CPU, 64 on CUDA)")
    r.add_argument("--tolerance", type=float, default=None,
                   help="max fraction of differing pixels per mask (default: 0, or 1e-3 when batched/CUDA)")
    r.add_argument("--seed", type=int, default=0, help="seed of the synthetic image and prompts")
    r.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's own); 1 is fairer on a CPU shared with other jobs")
    r.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up pass")
    r.set_defaults(func=run_reward)
    q = sub.add_parser("parse", help="how much the parse policy changes rewards and gIoU on malformed answers",
                       description="A seeded mix of malformed completions (think2seg.reports.malformed) scored under "
                       "every parse policy: the share whose total reward differs from lenient, per mutation, "
                       "and the authors-protocol gIoU with each policy.")
    q.add_argument("--n", type=int, default=1000, help="completions in the mix (default: 1000)")
    q.add_argument("--seed", type=int, default=0, help="seed of the mix (default: 0)")
    add_segmenter(q, default="boxfill", what="boxfill (the mask = the union of the boxes) needs no weights; ")
    q.add_argument("--json", action="store_true", help="print the full result as JSON")
    q.set_defaults(func=run_parse)
    e = sub.add_parser("encoder", help="a released prompter's vision tower at full size, random weights",
                       description="Build the vision tower of a catalogued checkpoint (its real transformers class, "
                       "random weights; the language model is not built), encode one square image --repeats times "
                       "after an untimed first pass, and print one JSON line: parameters, build seconds, first and "
                       "median encode seconds, patches and image tokens, this process's peak RSS and the load "
                       "average. Run one checkpoint per process on an otherwise idle machine.")
    e.add_argument("--checkpoint", required=True, choices=sorted(CHECKPOINTS), help="a catalogued checkpoint")
    e.add_argument("--image-size", type=int, default=None,
                   help="square image side in px (default: the family's model size, 840 or 832)")
    e.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="(default: %(default)s)")
    e.add_argument("--repeats", type=int, default=2, help="timed passes after the first (default: %(default)s)")
    e.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    e.set_defaults(func=run_encoder)
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


def run_parse(args: argparse.Namespace) -> int:
    try:
        seg = build_segmenter(args.segmenter)
    except ValueError as e:
        raise CLIError(f"--segmenter: {e}") from e
    res = policy_effects(malformed_mix(args.n, args.seed), segmenter=seg)
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    policies = list(res["changed"])
    print(f"{res['n']} completions (seed {args.seed}, segmenter {args.segmenter}); total reward differs from lenient:")
    print(f"{'mutation':<22}" + "".join(f"{p:>16}" for p in policies))
    for kind, row in res["changed_by_mutation"].items():
        print(f"{kind:<22}" + "".join(f"{100 * row[p]:>15.1f}%" for p in policies))
    print(f"{'all':<22}" + "".join(f"{100 * res['changed'][p]:>15.1f}%" for p in policies))
    print("authors-protocol gIoU: " + ", ".join(f"{p} {100 * v:.1f}" for p, v in res["authors_gIoU"].items()))
    return 0


def make_case(size: int, group: int, instances: int, seed: int = 0):
    """A synthetic (size, size, 3) uint8 image with ``instances`` objects and ``group`` prompt sets of them.

    Returns ``(image, prompt_sets)``; each prompt set has one instance per object: the object's box with
    ±8 % jitter of its side and two positive points inside it, in image pixels.
    """

    rng = np.random.default_rng(seed)
    base = rng.integers(60, 140, 3)
    low = cv2.resize(rng.normal(0, 25, (8, 8, 3)), (size, size), interpolation=cv2.INTER_CUBIC)
    image = np.clip(base + low + rng.normal(0, 8, (size, size, 3)), 0, 255)
    objects = []
    for _ in range(instances):
        w, h = (rng.uniform(0.12, 0.35, 2) * size).astype(int) + 2
        x, y = rng.integers(0, size - w), rng.integers(0, size - h)
        image[y : y + h, x : x + w] = rng.integers(0, 256, 3)
        objects.append((int(x), int(y), int(x + w - 1), int(y + h - 1)))
    image = image.astype(np.uint8)
    prompt_sets = []
    for _ in range(group):
        insts = []
        for x1, y1, x2, y2 in objects:
            jx, jy = 0.08 * (x2 - x1), 0.08 * (y2 - y1)
            box = (x1 + rng.uniform(-jx, jx), y1 + rng.uniform(-jy, jy),
                   x2 + rng.uniform(-jx, jx), y2 + rng.uniform(-jy, jy))
            box = tuple(int(np.clip(round(v), 0, size - 1)) for v in box)
            pts = tuple((int(rng.integers(x1, x2 + 1)), int(rng.integers(y1, y2 + 1))) for _ in range(2))
            insts.append(Instance(box=box, positive=pts))
        prompt_sets.append(insts)
    return image, prompt_sets


def run_reward(args: argparse.Namespace) -> int:
    for opt in ("group", "instances", "size", "repeats"):
        if getattr(args, opt) < 1:
            raise CLIError(f"--{opt} must be >= 1 (got {getattr(args, opt)})")
    if args.size < 8:
        raise CLIError(f"--size must be >= 8 px (got {args.size})")

    try:
        spec = parse_segmenter_spec(args.segmenter)
    except ValueError as e:
        raise CLIError(f"--segmenter: {e}") from e
    is_sam = spec.backend == "sam2"
    if not is_sam and (args.decoder_batch is not None or args.threads is not None):
        raise CLIError(f"--decoder-batch and --threads apply to sam2 segmenters only, not {args.segmenter}")
    for opt in ("decoder_batch", "threads"):
        if getattr(args, opt) is not None and getattr(args, opt) < 1:
            raise CLIError(f"--{opt.replace('_', '-')} must be >= 1 (got {getattr(args, opt)})")
    try:
        seg = build_segmenter(spec, device=args.device)
    except CheckpointNotFoundError as e:
        raise CLIError(f"--segmenter {args.segmenter}: {e}") from e
    if not is_sam:
        return _bench(args, seg, is_sam=False)
    import torch

    # the segmenter is cached per process: leave it (and torch's threads) as found
    saved = seg.decoder_batch, torch.get_num_threads()
    try:
        if args.decoder_batch is not None:
            seg.decoder_batch = args.decoder_batch
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        return _bench(args, seg, is_sam=True)
    finally:
        seg.decoder_batch = saved[0]
        torch.set_num_threads(saved[1])


def _bench(args: argparse.Namespace, seg, is_sam: bool) -> int:
    device = str(getattr(seg, "device", "cpu"))
    batched = is_sam and (seg.decoder_batch > 1 or device.startswith("cuda"))
    tol = args.tolerance if args.tolerance is not None else (1e-3 if batched else 0.0)
    image, sets = make_case(args.size, args.group, args.instances, args.seed)
    n_inst = sum(len(s) for s in sets)
    if not args.no_warmup:  # first calls pay one-off costs (model load, kernel selection, layout check)
        seg.segment(image[: args.size // 2, : args.size // 2], [sets[0][:1]])
    threads = ""
    if is_sam:
        import torch

        threads = (f", torch threads {torch.get_num_threads()}, decoder batch {seg.decoder_batch}, "
                   f"single rows: {seg.decoder_path}")
        if seg.conv_layout is not None:
            threads += f", conv layout: {seg.conv_layout}"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"bench reward: {seg.name} on {device}{threads}, image {args.size}x{args.size}, "
          f"G={args.group} completions x {args.instances} instances, repeats {args.repeats}, "
          f"load avg {load:.2f}", flush=True)
    if getattr(seg, "random", False):
        print("NOTE: random SAM2 weights: the timings are real, the masks are meaningless", flush=True)

    t_rel, t_ours, worst, differing = [], [], 0.0, 0
    calls = {}
    for rep in range(args.repeats):
        t0 = time.perf_counter()
        released = []
        for prompts in tqdm(sets, desc=f"released path {rep + 1}/{args.repeats}", leave=False):
            released += released_style_segment(seg, image, [prompts])
        t_rel.append(time.perf_counter() - t0)

        seg.clear_cache()
        before = dict(seg.stats)
        t0 = time.perf_counter()
        ours = seg.segment(image, sets)
        t_ours.append(time.perf_counter() - t0)
        calls = {k: v - before.get(k, 0) for k, v in seg.stats.items()}
        for a, b in zip(released, ours, strict=True):
            d = int(np.count_nonzero(a != b))
            differing += d
            worst = max(worst, d / a.size)

    rel, our = statistics.median(t_rel), statistics.median(t_ours)
    enc_rel = str(args.group) if is_sam else "-"
    enc_ours = str(calls.get("encoder_calls", 0)) if is_sam else "-"
    dec_ours = calls.get("decoder_calls", calls.get("grabcut_calls", 0) + calls.get("fallbacks", 0)
                         + calls.get("tiny_boxes", 0))
    rows = [
        ("released (embed per completion, 1 by 1)", enc_rel, str(n_inst), rel),
        ("ours (cached embedding, batched)", enc_ours, str(dec_ours), our),
    ]
    print(f"{'path':<42}{'encoder':>8}{'decoder':>8}{'s/group':>10}{'s/completion':>14}{'ms/instance':>13}")
    for name, enc, dec, t in rows:
        print(f"{name:<42}{enc:>8}{dec:>8}{t:>10.3f}{t / args.group:>14.4f}{1000 * t / n_inst:>13.1f}")
    total = args.group * args.repeats
    if differing == 0:
        verdict = f"masks: identical ({total}/{total} completions, 0 differing pixels)"
    else:
        verdict = (f"masks: {differing} differing pixels over {total} completions "
                   f"(worst {worst:.2e} of a mask, tolerance {tol:g})")
    print(verdict)
    print(f"speedup: {rel / our:.1f}", flush=True)
    if worst > tol:
        raise CLIError(f"released and cached paths disagree beyond --tolerance {tol:g}: {verdict}")
    return 0


def run_encoder(args: argparse.Namespace) -> int:
    import resource

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.repeats < 1:
        raise CLIError(f"--repeats must be at least 1, not {args.repeats}")
    ckpt = CHECKPOINTS[args.checkpoint]
    size = args.image_size or FAMILIES[ckpt.family].image_size
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    try:
        pixels, grid = vision_inputs(ckpt, size, dtype)
    except ValueError as e:
        raise CLIError(f"--image-size: {e}") from None
    t0 = time.perf_counter()
    tower = vision_tower(ckpt, dtype)
    build_s = time.perf_counter() - t0
    times = []
    with torch.inference_mode():
        for _ in range(args.repeats + 1):
            t0 = time.perf_counter()
            tower(pixels, grid_thw=grid)
            times.append(time.perf_counter() - t0)
    merge = tower.config.spatial_merge_size
    print(json.dumps({
        "checkpoint": ckpt.name, "image_size": size, "dtype": args.dtype, "threads": torch.get_num_threads(),
        "vision_params_M": round(sum(p.numel() for p in tower.parameters()) / 1e6, 1),
        "patches": int(pixels.shape[0]), "image_tokens": int(pixels.shape[0]) // merge ** 2,
        "build_s": round(build_s, 2), "first_encode_s": round(times[0], 3),
        "encode_s": round(statistics.median(times[1:]), 3), "repeats": args.repeats,
        "peak_rss_GiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }), flush=True)
    return 0
