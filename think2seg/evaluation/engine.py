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
from think2seg.core.geometry import as_size
from think2seg.core.metrics import DEFAULT_PROTOCOL, get_protocol, summarize
from think2seg.core.provenance import provenance, weights_fingerprint
from think2seg.core.records import (
    RECORDS,
    check_resume,
    consolidate,
    part_path,
    read_records,
    write_config,
    write_metrics,
)
from think2seg.core.styles import DEFAULT_STYLE
from think2seg.data import load_dataset
from think2seg.evaluation.generation import eval_generation, vllm_memory_share
from think2seg.evaluation.scoring import score_sample
from think2seg.evaluation.shards import plan
from think2seg.prompters import build_prompter, parse_spec
from think2seg.segmenters import DEFAULT_SEGMENTER, build_segmenter

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
