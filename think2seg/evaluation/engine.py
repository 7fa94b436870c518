"""Resumable evaluation: prompter + segmenter over a dataset split -> records.jsonl, metrics.json, config.json.

>>> from think2seg.evaluation.engine import EvalConfig, evaluate
>>> metrics = evaluate(EvalConfig(data="synthearth", split="val", prompter="oracle",
...                               segmenter="grabcut", out="runs/oracle-val"))      # doctest: +SKIP

``RUN_DIR/records.jsonl`` gets one JSON line per sample (id, question, completion, think, parsed prompts,
format flags, intersection, union, iou, gt_empty, pred_empty, answer_empty, timings, and optionally the
predicted mask as COCO RLE), appended and fsync'ed after every batch. Running again on the same RUN_DIR
does only the missing samples (a torn last line from a kill is dropped), so an interrupted run finishes
with the same records and metrics as an uninterrupted one. The options that change results are checked
against ``config.json``: resuming with different ones is refused, naming the option.

Resolution (``Protocol.resolution``): ``model`` squashes the image to the prompter's input size and scores
there (the authors'); ``native`` maps prompts back to the original image and scores at native size
(Seg-Zero); ``long1024`` scores with the long side resized to 1024 (SegEarth-R1; padding adds no pixel to
either mask, so it is not materialised). ``segment_native=True`` runs the segmenter on the native image
when the score space is larger and resizes its mask (nearest) to the score space: an upsampled image adds
no detail, and GrabCut's cost grows much faster than its pixel count (a 256 px image at 1024 px: over
100x slower). ``targets="empty"`` keeps only samples whose target is absent (rejection tables).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from think2seg.core import distributed as dist
from think2seg.core.errors import UserError
from think2seg.core.geometry import as_size, resize_image, resize_mask, scale_prompts
from think2seg.core.io import DataError
from think2seg.core.metrics import DEFAULT_PROTOCOL, get_protocol, mask_stats, sample_iou, summarize
from think2seg.core.parsing import parse_completion
from think2seg.core.provenance import provenance, weights_fingerprint
from think2seg.core.records import (
    RECORDS,
    check_resume,
    consolidate,
    encode_rle,
    part_path,
    read_records,
    write_config,
    write_metrics,
)
from think2seg.core.styles import DEFAULT_STYLE
from think2seg.data import load_dataset
from think2seg.evaluation.generation import eval_generation, vllm_memory_share
from think2seg.evaluation.shards import plan
from think2seg.prompters import build_prompter, parse_spec
from think2seg.segmenters import DEFAULT_SEGMENTER, build_segmenter, resolve_segmenter

# options whose change makes old records incomparable (resume refuses them)
RESULT_KEYS = (
    "data",
    "split",
    "prompter",
    "segmenter",
    "style",
    "questions",
    "question_kind",
    "seed",
    "image_size",
    "resolution",
    "temperature",
    "shuffle_questions",
    "prompter_weights",  # content fingerprint of a local checkpoint (same spec, retrained weights)
    "parse_policy",
    "targets",
    "segment_native",
)
LEGACY_RESULT_OPTIONS = {"parse_policy": "lenient"}  # what runs written before an option existed used


BATCHING_KINDS = ("hf", "tiny", "vllm")  # prompter kinds that take batch_size / device


@dataclass
class EvalConfig:
    data: str
    out: str
    split: str = "test"
    prompter: str = "oracle"
    segmenter: str = DEFAULT_SEGMENTER
    style: str = DEFAULT_STYLE
    protocol: str = DEFAULT_PROTOCOL
    questions: str = "random"  # authors: one question per test sample, drawn with seed 0
    question_kind: str | None = None
    seed: int = 0
    limit: int | None = None
    batch_size: int = 8
    image_size: int | None = None  # model-space size; default: the prompter's
    temperature: float = 0.0  # greedy, as the authors evaluate
    shuffle_questions: bool = False  # control: every sample is asked a question of another image
    targets: str | None = None  # "empty" | "present": only samples whose target is absent / present
    segment_native: bool = False  # segment at native size when the protocol scores at a larger one
    keep_masks: bool = False
    on_error: str = "raise"
    thresholds: Sequence[float] = (0.5,)
    resolution: str = field(default="", repr=False)  # filled from the protocol
    parse_policy: str = field(default="", repr=False)  # filled from the protocol


def _score_space(image: np.ndarray, model_size: tuple[int, int], resolution: str) -> tuple[int, int]:
    """(W, H) at which masks are compared."""
    h, w = image.shape[:2]
    if resolution == "model":
        return model_size
    if resolution == "native":
        return (w, h)
    if resolution == "long1024":
        s = 1024 / max(h, w)
        return (max(1, round(w * s)), max(1, round(h * s)))
    raise ValueError(f"unknown resolution {resolution!r}")


def evaluate(
    cfg: EvalConfig,
    *,
    prompter: Any = None,
    segmenter: Any = None,
    progress: bool = True,
    lockstep: bool = False,
) -> dict[str, Any]:
    """Run (or resume) an evaluation; returns the metrics dict also written to ``metrics.json``.

    Under a process group (``accelerate launch ... -m think2seg.cli eval``, or the live policy during
    training) every rank evaluates its share of the batches and every rank gets the metrics
    (:mod:`think2seg.evaluation.shards`); ``lockstep`` pads the ranks to equal batch counts (ZeRO-3)."""

    protocol = get_protocol(cfg.protocol)
    cfg = replace(cfg, resolution=protocol.resolution, parse_policy=protocol.parse_policy)  # the caller's stays as given
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    rec_path = out / RECORDS

    rank, world = dist.rank(), dist.world_size()
    if prompter is None:
        prompter = eval_prompter(cfg, world)
    if segmenter is None:
        segmenter = build_segmenter(cfg.segmenter, device=_rank_device(world))
    model_size = as_size(cfg.image_size or prompter.image_size)

    wanted = {k: v for k, v in asdict(cfg).items() if k in RESULT_KEYS}
    wanted["image_size"] = list(model_size)
    local = getattr(prompter, "model_id", None) if getattr(prompter, "local", False) else None
    wanted["prompter_weights"] = weights_fingerprint(local) if local else None
    check_resume(out, wanted, legacy=LEGACY_RESULT_OPTIONS)

    if cfg.targets not in (None, "empty", "present"):
        raise ValueError(f"targets={cfg.targets!r}: use None, 'empty' or 'present'")
    ds = load_dataset(
        cfg.data,
        cfg.split,
        questions=cfg.questions,
        seed=cfg.seed,
        on_error=cfg.on_error,
        question_kind=cfg.question_kind,
        limit=None if cfg.targets else cfg.limit,
    )
    skipped = [list(s) for s in getattr(ds, "skipped", [])]
    if cfg.targets:
        ds = [s for s in ds if _target_empty(s) == (cfg.targets == "empty")][: cfg.limit]
    if cfg.shuffle_questions:
        ds = shuffle_questions(ds, cfg.seed)
    config = {
        "result_options": wanted,
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
        "protocol": protocol.to_dict(),
        "prompter_name": getattr(prompter, "name", cfg.prompter),
        "segmenter_name": getattr(segmenter, "name", cfg.segmenter),
        "parse_policy": protocol.parse_policy,
        "generation": _generation_parameters(prompter, cfg.temperature),
        "engine": getattr(prompter, "engine_kwargs", None),  # vLLM: gpu_memory_utilization, max_model_len...
        "dataset": {"n_samples": len(ds), "skipped": skipped},
        **provenance(),
    }
    config["world_size"] = world
    order = [s.id for s in ds]
    dist.barrier()  # every rank has checked the old config.json before it is replaced
    if rank == 0:
        write_config(out, config)
        consolidate(out, order)  # parts of a killed multi-process run; a torn last line
    dist.barrier()

    by_id = {r["id"]: r for r in read_records(rec_path, missing_ok=True)}
    todo = [s for s in ds if s.id not in by_id]
    mine = plan(todo, cfg.batch_size, rank, world, lockstep=lockstep)
    bar = tqdm(
        total=len(ds), initial=len(ds) - len(todo), desc=f"eval {cfg.split}", disable=not progress or rank > 0
    )
    with (rec_path if world == 1 else part_path(out, rank)).open("a") as f:
        for batch, real in mine:
            t0 = time.perf_counter()
            texts = [c[0] for c in prompter.generate(batch, n=1, temperature=cfg.temperature, seed=cfg.seed)]
            if not real:  # lockstep padding: generated so that every rank ran as many batches
                continue
            gen_s = (time.perf_counter() - t0) / len(batch)
            for sample, text in zip(batch, texts, strict=True):
                rec = score_sample(sample, text, cfg, model_size, protocol, segmenter)
                rec["gen_s"] = round(gen_s, 4)
                f.write(json.dumps(rec) + "\n")
            f.flush()
            os.fsync(f.fileno())
            bar.update(min(len(batch) * world, bar.total - bar.n))  # rank 0 counts for all ranks
    bar.close()

    dist.barrier()
    metrics = None
    if rank == 0:
        by_id = {r["id"]: r for r in consolidate(out, order)}
        ordered = [by_id[s.id] for s in ds if s.id in by_id]
        metrics = summarize(ordered, protocol, thresholds=cfg.thresholds)
        metrics["seconds_per_sample"] = {
            k: float(np.mean([r[k] for r in ordered])) for k in ("gen_s", "seg_s") if ordered
        }
        write_metrics(out, metrics)
    return dist.broadcast(metrics)


def eval_prompter(cfg: EvalConfig, world: int) -> Any:
    """The prompter of ``cfg``; models that batch get ``cfg.batch_size`` (unless the spec sets one) and,
    with several CUDA processes, this rank's GPU. ``hf`` and ``vllm`` prompters decode with the
    protocol's settings (:func:`think2seg.evaluation.generation.eval_generation`) unless the spec names a
    ``generation``. A ``vllm`` prompter is refused with several processes (each would take a share of
    the same GPU); its ``gpu_memory_utilization`` leaves room for the segmenter unless the spec sets it."""

    kind, _, options = parse_spec(cfg.prompter)
    kw: dict[str, Any] = {"image_size": cfg.image_size} if cfg.image_size else {}
    if kind in ("hf", "vllm") and "generation" not in options:
        kw["generation"] = eval_generation(cfg.protocol)["generation"]
    if kind == "vllm":
        if world > 1:
            raise VLLMWorldError(
                f"--prompter {cfg.prompter}: vLLM evaluation runs in one process ({world} were launched); "
                "run 'think2seg eval' without accelerate launch and spread the model over GPUs with "
                "?tensor_parallel_size=N"
            )
        if "gpu_memory_utilization" not in options:
            share = vllm_memory_share(cfg.segmenter, _gpu_total_bytes())
            if share is not None:
                kw["gpu_memory_utilization"] = share
    if kind in BATCHING_KINDS:
        if "batch_size" not in options:
            kw["batch_size"] = cfg.batch_size
        device = _rank_device(world)
        if device is not None and "device" not in options:
            kw["device"] = device
    return build_prompter(cfg.prompter, style=cfg.style, **kw)


class VLLMWorldError(UserError, ValueError):
    """A ``vllm:`` prompter under several processes (one line, names the option)."""


def _gpu_total_bytes() -> int | None:
    """Total memory of the current CUDA device, None without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None
    return int(torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory)


def _rank_device(world: int) -> str | None:
    """``cuda:<local rank>`` when several processes share a machine's GPUs, else None (the default)."""
    import torch

    return f"cuda:{dist.local_rank()}" if world > 1 and torch.cuda.is_available() else None


class ControlUnavailable(ValueError):
    """The question-shuffle control cannot be built from these samples (they show a single image)."""


def shuffle_questions(samples: Sequence[Any], seed: int = 0) -> list[Any]:
    """The question-dependence control: the same samples (image, target mask, id), each asked a question
    that belongs to ANOTHER image. Images are put in a seeded random cycle and every sample takes the
    question of a sample of the next image (``extra["question_from"]`` names it). A prompter that answers
    the question scores lower here; one that ignores it scores the same. Needs two images or more."""

    by_image: dict[str, list[Any]] = {}
    rank = []  # position of each sample among its image's samples
    for s in samples:
        rank.append(len(by_image.setdefault(s.image_id, [])))
        by_image[s.image_id].append(s)
    images = list(by_image)
    if len(images) < 2:
        raise ControlUnavailable(f"shuffle_questions needs samples of two images or more, got {len(images)}")
    random.Random(seed).shuffle(images)
    donor = {a: by_image[b] for a, b in zip(images, images[1:] + images[:1], strict=True)}
    out = []
    for s, k in zip(samples, rank, strict=True):
        d = donor[s.image_id][k % len(donor[s.image_id])]
        out.append(dataclasses.replace(s, question=d.question, extra={**s.extra, "question_from": d.id}))
    return out


def _generation_parameters(prompter: Any, temperature: float) -> dict[str, Any] | None:
    """The decoding fields of an HF prompter (None for prompters that do not decode)."""
    fn = getattr(prompter, "generation_parameters", None)
    return fn(temperature) if callable(fn) else None


def _target_empty(sample: Any) -> bool:
    return bool(sample.gt_empty) if sample.gt_empty is not None else not sample.load_mask().any()


def score_text(
    text: str,
    image: np.ndarray,
    gt: np.ndarray,
    *,
    model_size: tuple[int, int],
    protocol: Any,
    segmenter: Any,
    style: str,
    segment_native: bool = False,
) -> dict[str, Any]:
    """Parse one completion (model-space coordinates), segment ``image`` ((H, W, 3) uint8, any size) in the
    protocol's scoring space and compare with ``gt`` ((H, W) bool, same size as ``image``): the record
    fields of the answer and of the masks, ``pred`` (the predicted mask, in the scoring space) included.
    ``segment_native``: segment at ``image``'s own size when the scoring space is larger (mask resized)."""
    protocol = get_protocol(protocol)
    parsed = parse_completion(text, style, model_size, policy=protocol.parse_policy)
    space = _score_space(image, model_size, protocol.resolution)
    gt_s = resize_mask(gt, space)
    t0 = time.perf_counter()
    seg_space = space
    if segment_native and space[0] * space[1] > image.shape[0] * image.shape[1]:
        seg_space = (image.shape[1], image.shape[0])  # upsampling adds no detail; the mask is resized
    if parsed.instances:
        img_s = resize_image(image, seg_space)
        # prompts are kept as written when segmenting in model space (the released code hands them to SAM so)
        prompts = (parsed.instances if tuple(seg_space) == tuple(model_size)
                   else scale_prompts(parsed.instances, model_size, seg_space))
        pred = resize_mask(segmenter.segment(img_s, [prompts])[0], space)
    else:
        pred = np.zeros_like(gt_s)
    seg_s = time.perf_counter() - t0
    inter, union = mask_stats(pred, gt_s)
    rec: dict[str, Any] = {
        **parsed.to_record(),
        "format_ok": parsed.format_ok,
        "intersection": inter,
        "union": union,
        "gt_empty": not gt_s.any(),
        "pred_empty": not pred.any(),
        "produced": bool(parsed.instances),
        "model_size": list(model_size),  # the space of "instances"
        "score_size": list(space),  # the space of intersection / union / pred_rle
        "seg_s": round(seg_s, 4),
    }
    rec["iou"] = sample_iou(rec, protocol)
    rec["pred"] = pred
    return rec


def score_sample(
    sample: Any, text: str, cfg: EvalConfig, model_size: tuple[int, int], protocol: Any, segmenter: Any
) -> dict[str, Any]:
    """The evaluation record of one sample's completion (``cfg`` gives the style and ``keep_masks``)."""
    image, gt = sample.load_image(), sample.load_mask()
    if gt.shape != image.shape[:2]:
        raise DataError(
            f"{sample.mask_path or sample.id}: mask {gt.shape} does not match image {image.shape[:2]}"
        )
    scored = score_text(
        text, image, gt, model_size=model_size, protocol=protocol, segmenter=segmenter, style=cfg.style,
        segment_native=cfg.segment_native,
    )
    pred = scored.pop("pred")
    rec: dict[str, Any] = {
        "id": sample.id,
        "image_id": sample.image_id,
        "question": sample.question,
        "image_path": str(sample.image_path),
        "mask_path": str(sample.mask_path) if sample.mask_path else None,
        "completion": text,
        **scored,
        "extra": {
            k: v for k, v in sample.extra.items() if isinstance(v, (str, int, float, bool, type(None)))
        },
    }
    if cfg.keep_masks:
        rec["pred_rle"] = encode_rle(pred)
    return rec


def score_completions(
    completions: Sequence[str],
    images: Sequence[np.ndarray],
    gt_masks: Sequence[np.ndarray],
    *,
    segmenter: Any = DEFAULT_SEGMENTER,
    style: str = DEFAULT_STYLE,
    protocol: Any = DEFAULT_PROTOCOL,
    thresholds: Sequence[float] = (0.5,),
) -> dict[str, Any]:
    """Metrics of completions produced elsewhere, as :func:`think2seg.core.metrics.summarize` returns them.

    >>> score_completions([text], [image], [mask], segmenter="grabcut", protocol="authors")   # doctest: +SKIP
    {'gIoU': 0.71, 'cIoU': 0.74, 'P@0.5': 0.8, ...}

    ``images``: (H, W, 3) uint8 in model space (the image the model saw, so the completions' coordinates
    refer to it); ``gt_masks``: (H, W) bool of the same size. Masks are compared at that size, whatever
    the protocol's ``resolution`` (scoring at native size needs the native images: ``think2seg score``).
    ``segmenter``: a spec name (``grabcut``, ``sam2:small``...) or an object with ``segment(image,
    prompt_sets)``. The parse policy is the protocol's."""
    n = len(completions)
    if not (len(images) == len(gt_masks) == n):
        raise ValueError(f"score_completions: {n} completions, {len(images)} images, {len(gt_masks)} masks")
    segmenter = resolve_segmenter(segmenter)
    protocol = get_protocol(protocol)
    model_protocol = replace(protocol, resolution="model")
    records = []
    for k, (text, image, gt) in enumerate(zip(completions, images, gt_masks, strict=True)):
        image, gt = np.asarray(image), np.asarray(gt, dtype=bool)
        if image.ndim != 3 or gt.shape != image.shape[:2]:
            raise ValueError(f"score_completions: item {k} has image {image.shape} and mask {gt.shape}")
        size = (image.shape[1], image.shape[0])
        rec = score_text(
            text, image, gt, model_size=size, protocol=model_protocol, segmenter=segmenter, style=style
        )
        rec.pop("pred")
        records.append(rec)
    return summarize(records, model_protocol, thresholds=thresholds)


def evaluate_many(prompters: dict[str, str], runs_dir: str | Path, progress: bool = True, **common: Any) -> dict[str, Path]:
    """Evaluate several labelled prompter specs with shared options; ``{label: run_dir}`` (resumable).

    >>> evaluate_many({"oracle": "oracle", "tiny": "tiny"}, "runs/02", data="synthearth",
    ...               split="val", segmenter="grabcut")                                  # doctest: +SKIP
    """

    out = {}
    for label, spec in prompters.items():
        run_dir = Path(runs_dir) / re.sub(r"[^A-Za-z0-9_.+-]+", "_", label)
        evaluate(EvalConfig(prompter=spec, out=str(run_dir), **common), progress=progress)
        out[label] = run_dir
    return out
