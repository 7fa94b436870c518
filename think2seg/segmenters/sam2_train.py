"""Train a SAM2 of sam2's own classes (a shipped mini size) with SAM-style interactive prompts.

    >>> cfg = load_train_config("configs/sam2_mini/mini-t.yaml")          # doctest: +SKIP
    >>> result = train_sam2(cfg, "runs/sam2-mini-t")                       # doctest: +SKIP
    >>> result["export"]                                                   # doctest: +SKIP

Data: the ground-truth masks of an EarthReason-format split (SynthEarth by default); every 8-connected
component of a mask is one instance (SynthEarth's components are exactly its instances). Each step draws
``images_per_step`` images (random flips / 90-degree turns) and ``prompts_per_image`` instances of each, and
for each instance one prompt (see :mod:`~think2seg.segmenters.sam2_prompts`). The model sees the image
exactly as ``SAM2ImagePredictor.set_image`` prepares it and the prompt as ``_predict`` encodes it (box
corners first, one padding point), and the decoder returns all four mask tokens: token 0 (the
``multimask_output=False`` mask used for rewards) and the best of tokens 1-3 (multi-mask output) are both
trained with focal + dice (on masks upsampled to the image size, or with ``loss_resolution: low`` on the
decoder's own grid against the area-averaged ground truth), the IoU head with MSE to the real IoU.
The first ``prompt_warmup`` steps train the prompt encoder and the decoder alone on all-zero image features
(:func:`blank_features`): from scratch, the full model otherwise settles on a prompt-blind mask of the
image's salient objects, and the decoder never learns to read where the prompt is.
``out/state.pt`` holds model, optimizer, step and RNG states (written every ``checkpoint_every`` steps and on
stop); a rerun resumes from it. The recipe, the measured numbers and how to rerun: ``docs/sam2.md``.
"""

from __future__ import annotations

import math
import os
import resource
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from tqdm.auto import tqdm

from think2seg.core.errors import UserError
from think2seg.core.geometry import reflect_prompts
from think2seg.core.mask_to_prompts import mask_to_instances
from think2seg.segmenters.sam2 import build_sam2_model, feature_sizes, image_predictor
from think2seg.segmenters.sam2_data import InstanceBank, load_bank, step_batch
from think2seg.segmenters.sam2_prompts import PROMPT_KINDS
from think2seg.segmenters.spec import SHIPPED_SAM2

STATE_FILE = "state.pt"


class TrainConfigError(UserError):
    """A bad ``sam2-train`` config (the message names the file and the key)."""


@dataclass
class TrainConfig:
    """The recipe (``configs/sam2_mini/<size>.yaml``); every key is optional except ``model``."""

    model: str = "mini-t"
    data: str = "synthearth"  # the embedded SynthEarth (ensure_default), or a dataset spec (earthreason:/dir)
    steps: int = 700
    images_per_step: int = 2
    prompts_per_image: int = 12
    lr: float = 6e-4
    weight_decay: float = 0.01
    warmup: int = 40
    grad_clip: float = 1.0
    min_instance_area: int = 4
    prompt_mix: dict[str, float] = field(default_factory=lambda: {"box": 0.3, "points": 0.2, "box+points": 0.3,
                                                                  "oracle": 0.2})
    box_noise: float = 0.1  # std of each box side's jitter, as a fraction of that side (SAM: 10 %)
    box_noise_max: float = 20.0  # pixels
    loss_focal: float = 1.0  # SAM: 20; from scratch 20 collapsed to empty masks (docs/sam2.md)
    loss_dice: float = 1.0
    loss_iou: float = 1.0
    loss_resolution: str = "image"  # "image": logits upsampled to the image (SAM2); "low": the decoder's own
    prompt_warmup: int = 0  # first steps: prompt encoder + decoder alone on zeroed image features (docs/sam2.md)
    val_every: int = 100
    val_images: int = 40
    checkpoint_every: int = 25
    max_minutes: float | None = None  # stop (and export) after this much wall clock; a rerun resumes
    threads: int = 1
    seed: int = 0


def load_train_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """Read a recipe YAML; unknown keys, a wrong type or an unknown model raise :class:`TrainConfigError`."""
    p = Path(path)
    if not p.is_file():
        raise TrainConfigError(f"{p}: sam2-train config not found")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise TrainConfigError(f"{p}: not valid YAML ({e})") from e
    if not isinstance(raw, dict):
        raise TrainConfigError(f"{p}: expected a mapping of recipe keys")
    raw.update({k: v for k, v in overrides.items() if v is not None})
    known = set(TrainConfig.__dataclass_fields__)
    bad = sorted(set(raw) - known)
    if bad:
        raise TrainConfigError(f"{p}: unknown key(s) {bad}; expected some of {sorted(known)}")
    try:
        cfg = TrainConfig(**raw)
    except TypeError as e:
        raise TrainConfigError(f"{p}: {e}") from e
    if cfg.model not in SHIPPED_SAM2:
        raise TrainConfigError(f"{p}: model {cfg.model!r} is not a mini size ({', '.join(SHIPPED_SAM2)})")
    if cfg.loss_resolution not in ("image", "low"):
        raise TrainConfigError(f"{p}: loss_resolution must be 'image' or 'low', not {cfg.loss_resolution!r}")
    if set(cfg.prompt_mix) - set(PROMPT_KINDS) or sum(cfg.prompt_mix.values()) <= 0:
        raise TrainConfigError(f"{p}: prompt_mix keys must be among {PROMPT_KINDS} with a positive sum")
    return cfg


# ------------------------------------------------------------------------------------------- the model
def image_features(model: torch.nn.Module, batch: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``SAM2ImagePredictor.set_image``'s features for a (B, 3, S, S) normalized batch: the image embedding
    (B, C, S/16, S/16) and the high-resolution features [(B, C/8, S/4, S/4), (B, C/4, S/8, S/8)]."""
    backbone_out = model.forward_image(batch)
    _, vision_feats, _, _ = model._prepare_backbone_features(backbone_out)
    if model.directly_add_no_mem_embed:
        vision_feats[-1] = vision_feats[-1] + model.no_mem_embed
    b = batch.shape[0]
    feats = [f.permute(1, 2, 0).reshape(b, -1, *hw) for f, hw in zip(vision_feats, feature_sizes(model), strict=True)]
    return feats[-1], feats[:-1]


def decode_all_tokens(model: torch.nn.Module, embed: torch.Tensor, high_res: Sequence[torch.Tensor],
                      coords: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All four mask tokens for N prompt rows of one length: low-res logits (N, 4, S/4, S/4) and IoU
    predictions (N, 4). ``embed``/``high_res`` are already one row per prompt; ``coords`` (N, P, 2) are in
    the model's input pixels with box corners first (labels 2, 3), as ``_predict`` builds them."""
    sparse, dense = model.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=None)
    masks, iou, _, _ = model.sam_mask_decoder.predict_masks(
        image_embeddings=embed, image_pe=model.sam_prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, repeat_image=False,
        high_res_features=list(high_res))
    return masks, iou


def mask_losses(logits: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sigmoid focal (alpha 0.25, gamma 2) and dice losses (N, K) of logits (N, K, H, W) against gt
    (N, H, W) in [0, 1] (hard, or soft when area-averaged), and the IoU (N, K) of the thresholded masks
    against ``gt > 0.5`` (no gradient)."""
    g = gt[:, None].expand_as(logits)
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, g, reduction="none")
    pt = p * g + (1 - p) * (1 - g)
    focal = (ce * (1 - pt) ** 2 * (0.25 * g + 0.75 * (1 - g))).mean((2, 3))
    dice = 1 - (2 * (p * g).sum((2, 3)) + 1) / (p.sum((2, 3)) + g.sum((2, 3)) + 1)
    with torch.no_grad():
        hard, target = logits > 0, g > 0.5
        inter = (hard & target).sum((2, 3)).float()
        union = (hard | target).sum((2, 3)).float()
        iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
    return focal, dice, iou


# ------------------------------------------------------------------------------------------- training
def _lr(cfg: TrainConfig, step: int, minutes: float) -> float:
    """Linear warm-up, then cosine decay to 0 over the run's progress: the larger of ``step / steps`` and
    ``minutes / max_minutes`` (so a run cut by the wall-clock budget still ends annealed)."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    if cfg.max_minutes:
        t = max(t, minutes / cfg.max_minutes)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def blank_features(model: torch.nn.Module, b: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """All-zero features of :func:`image_features`' shapes: a decoder fed these can only answer from the
    prompt (the ``prompt_warmup`` phase)."""
    c = int(model.sam_prompt_embed_dim)
    (h0, w0), (h1, w1), (h2, w2) = feature_sizes(model)
    return torch.zeros(b, c, h2, w2), [torch.zeros(b, c // 8, h0, w0), torch.zeros(b, c // 4, h1, w1)]


def train_step(model, opt, cfg: TrainConfig, batch: torch.Tensor, rows: list, blank: bool = False) -> dict[str, float]:
    """One optimizer step; returns the step's loss terms and the train IoU of token 0 and the best token.
    ``blank``: the image features are zeros (:func:`blank_features`); the encoder gets no gradient."""
    embed, high_res = blank_features(model, batch.shape[0]) if blank else image_features(model, batch)
    groups: dict[int, list[int]] = {}
    for r, row in enumerate(rows):
        groups.setdefault(len(row[2]), []).append(r)
    tot = {"loss": 0.0, "focal": 0.0, "dice": 0.0, "iou_mse": 0.0, "iou0": 0.0, "iou_best": 0.0}
    loss = torch.zeros(())
    for idx in groups.values():
        b = torch.as_tensor([rows[r][0] for r in idx])
        coords = torch.as_tensor(np.stack([rows[r][1] for r in idx]), dtype=torch.float32)
        labels = torch.as_tensor(np.stack([rows[r][2] for r in idx]), dtype=torch.int32)
        gt = torch.as_tensor(np.stack([rows[r][4] for r in idx]), dtype=torch.float32)
        low, iou_pred = decode_all_tokens(model, embed[b], [f[b] for f in high_res], coords, labels)
        if cfg.loss_resolution == "low":  # the ground truth area-averaged to the low-res grid (soft targets)
            logits, gt = low, F.adaptive_avg_pool2d(gt[:, None], tuple(low.shape[-2:]))[:, 0]
        else:
            logits = F.interpolate(low, tuple(gt.shape[1:]), mode="bilinear", align_corners=False)
        focal, dice, iou = mask_losses(logits, gt)
        per = cfg.loss_focal * focal + cfg.loss_dice * dice  # (n, 4)
        best = per[:, 1:].argmin(1)
        mask_loss = per[:, 0] + per[:, 1:].gather(1, best[:, None])[:, 0]
        iou_mse = ((iou_pred - iou) ** 2).mean(1)
        loss = loss + (mask_loss + cfg.loss_iou * iou_mse).sum()
        tot["focal"] += float(focal[:, 0].detach().sum())
        tot["dice"] += float(dice[:, 0].detach().sum())
        tot["iou_mse"] += float(iou_mse.detach().sum())
        tot["iou0"] += float(iou[:, 0].sum())
        tot["iou_best"] += float(iou.max(1).values.sum())
    loss = loss / len(rows)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    opt.step()
    out = {k: v / len(rows) for k, v in tot.items()}
    out["loss"] = float(loss.detach())
    return out


def validate(model: torch.nn.Module, bank: InstanceBank) -> dict[str, float]:
    """gIoU of the released path (``SAM2ImagePredictor.predict``, ``multimask_output=False``) on ``bank``'s
    images with oracle box + 2 positive points per component, OR-united (``gIoU``), and with the same prompts
    reflected through the image centre (``reflected_gIoU``: a prompt-blind model scores the same)."""
    was = model.training
    model.eval()
    pred = image_predictor(model)
    ious: dict[str, list[float]] = {"gIoU": [], "reflected_gIoU": []}
    with torch.inference_mode():
        for image, labels in zip(bank.images, bank.labels, strict=True):
            gt = labels > 0
            pred.set_image(image)
            oracle = mask_to_instances(gt, "bbox+2pos", "components")
            for key, prompts in (("gIoU", oracle), ("reflected_gIoU", reflect_prompts(oracle, gt.shape[::-1]))):
                union = np.zeros(gt.shape, bool)
                for inst in prompts:
                    m, _, _ = pred.predict(point_coords=np.asarray(inst.positive, np.float32),
                                           point_labels=np.ones(len(inst.positive), np.int32),
                                           box=np.asarray(inst.box, np.float32), multimask_output=False)
                    union |= m[0] > 0
                ious[key].append((union & gt).sum() / max(1, (union | gt).sum()))
    model.train(was)
    return {k: float(np.mean(v)) for k, v in ious.items()}


def _save(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def export_half(model: torch.nn.Module, path: Path) -> int:
    """Write ``{"model": state_dict}`` with floating tensors in float16 (the official checkpoint layout);
    returns the file size in bytes."""
    sd = {k: (v.half() if v.is_floating_point() else v).clone() for k, v in model.state_dict().items()}
    _save(path, {"model": sd})
    return path.stat().st_size


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (Linux ``ru_maxrss`` is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _recipe(d: dict) -> dict:
    """The keys a resumed run must share with its state (``steps``, ``max_minutes`` and ``threads`` may
    change; a state written before ``prompt_warmup`` existed had none)."""
    d = {"prompt_warmup": 0, "loss_resolution": "image", **d}
    return {k: v for k, v in d.items() if k not in ("steps", "max_minutes", "threads")}


def train_sam2(cfg: TrainConfig, out: str | Path, progress: bool = True) -> dict[str, Any]:
    """Train (or resume) ``cfg.model`` into ``out``; returns the curve, timings and the export path."""
    from sam2.utils.transforms import SAM2Transforms

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    model = build_sam2_model(cfg.model, mode="train")
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    state_path = out / STATE_FILE
    step, curve, seconds = 0, {"train": [], "val": []}, 0.0
    if state_path.is_file():
        st = torch.load(state_path, map_location="cpu", weights_only=False)
        if _recipe(st.get("config", {})) != _recipe(asdict(cfg)):
            raise TrainConfigError(f"{state_path}: was written with another recipe; use a new --out folder")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        rng.bit_generator.state = st["rng"]
        torch.set_rng_state(st["torch_rng"])
        step, curve, seconds = st["step"], st["curve"], st["seconds"]
    bank = load_bank(cfg.data, "train", cfg.min_instance_area)
    val = load_bank(cfg.data, "val", 1, limit=cfg.val_images) if cfg.val_images > 0 else None
    transforms = SAM2Transforms(resolution=int(model.image_size), mask_threshold=0.0)
    size = int(model.image_size)
    t0, start_step = time.perf_counter(), step

    def state() -> dict:
        return {"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(), "step": step, "curve": curve,
                "seconds": seconds + time.perf_counter() - t0, "config": asdict(cfg)}

    bar = tqdm(total=cfg.steps, initial=step, desc=f"sam2-train {cfg.model}", unit="step", disable=not progress)
    stopped = "steps"
    while step < cfg.steps:
        if cfg.max_minutes and (seconds + time.perf_counter() - t0) / 60 >= cfg.max_minutes:
            stopped = "max_minutes"  # the budget is spent (this run or before a resume)
            break
        for g in opt.param_groups:
            g["lr"] = _lr(cfg, step, (seconds + time.perf_counter() - t0) / 60)
        batch, rows = step_batch(cfg, rng, bank, transforms, size)
        rec = train_step(model, opt, cfg, batch, rows, blank=step < cfg.prompt_warmup)
        step += 1
        rec.update(step=step, lr=opt.param_groups[0]["lr"], t=round(seconds + time.perf_counter() - t0, 1))
        curve["train"].append(rec)
        bar.update(1)
        bar.set_postfix(loss=f"{rec['loss']:.3f}", iou=f"{rec['iou0']:.3f}")
        if val is not None and (step % cfg.val_every == 0 or step == cfg.steps):
            curve["val"].append({"step": step, **validate(model, val)})
            v = curve["val"][-1]
            bar.write(f"step {step}: val gIoU {v['gIoU']:.4f} (oracle box+2pos, {len(val.ids)} images), reflected "
                      f"prompts {v['reflected_gIoU']:.4f}")
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            _save(state_path, state())
        if cfg.max_minutes and (seconds + time.perf_counter() - t0) / 60 >= cfg.max_minutes:
            _save(state_path, state())
    bar.close()
    if val is not None and step > 0 and (not curve["val"] or curve["val"][-1]["step"] != step):
        curve["val"].append({"step": step, **validate(model, val)})  # the final weights' figure
        _save(state_path, state())
    model.eval()
    export = out / SHIPPED_SAM2[cfg.model][1]
    nbytes = export_half(model, export)
    return {"model": cfg.model, "steps_done": step, "steps": cfg.steps, "stopped_by": stopped,
            "resumed_from": start_step, "seconds": round(seconds + time.perf_counter() - t0, 1),
            "curve": curve, "export": str(export), "export_mb": round(nbytes / 2**20, 2),
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "train_images": len(bank.ids), "train_instances": bank.n_instances,
            "train_categories": sorted(set(bank.categories)), "peak_rss_mb": round(peak_rss_mb(), 1)}
