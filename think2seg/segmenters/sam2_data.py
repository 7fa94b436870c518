"""The training data of ``sam2-train``: every image of a split with its ground-truth instances, and the
SAM-style prompt rows of one step.

    >>> bank = load_bank("synthearth", "val", min_area=1, limit=4)      # doctest: +SKIP
    >>> bank.images.shape, bank.labels.shape, bank.n_instances         # doctest: +SKIP
    ((4, 256, 256, 3), (4, 256, 256), 9)

Every 8-connected component of a ground-truth mask is one instance (SynthEarth's components are exactly
its instances); components under ``min_area`` pixels are dropped, and images left without any are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from think2seg.core.errors import UserError
from think2seg.data import load_dataset
from think2seg.data.synth import ensure_default
from think2seg.segmenters.sam2_prompts import sample_prompt


@dataclass
class InstanceBank:
    """Images (N, H, W, 3) uint8, instance labels (N, H, W) int32 (0 = none) and per-image instance ids."""

    images: np.ndarray
    labels: np.ndarray
    ids: list[list[int]]
    categories: list[str]

    @property
    def n_instances(self) -> int:
        return sum(len(i) for i in self.ids)


def dataset_spec(data: str) -> str:
    return f"earthreason:{ensure_default(progress=False)}" if data == "synthearth" else data


def load_bank(data: str, split: str, min_area: int, limit: int | None = None) -> InstanceBank:
    """Every distinct image of ``split`` with its ground-truth mask's components as instances."""
    ds = load_dataset(dataset_spec(data), split, verify=False)
    seen: dict[str, Any] = {}
    for s in ds:
        seen.setdefault(str(s.image_path), s)
    samples = list(seen.values())[:limit]
    images, labels, ids, cats = [], [], [], []
    for s in samples:
        mask = s.load_mask().astype(np.uint8)
        n, lab, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        keep = [k for k in range(1, n) if stats[k, cv2.CC_STAT_AREA] >= min_area]
        if not keep:
            continue
        images.append(s.load_image())
        labels.append(lab.astype(np.int32))
        ids.append(keep)
        cats.append(str((s.extra or {}).get("category", "")))
    if not images:
        raise UserError(f"{data} ({split}): no instances of at least {min_area} px")
    return InstanceBank(np.stack(images), np.stack(labels), ids, cats)


def _augment(rng: np.random.Generator, image: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = int(rng.integers(4))
    image, labels = np.rot90(image, k), np.rot90(labels, k)
    if rng.random() < 0.5:
        image, labels = image[:, ::-1], labels[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(labels)


def step_batch(cfg: Any, rng: np.random.Generator, bank: InstanceBank, transforms: Any, size: int):
    """One step's batch for the recipe ``cfg`` (``images_per_step``, ``prompts_per_image``, ``prompt_mix``,
    ``box_noise``, ``box_noise_max``): normalized images (B, 3, S, S) from ``transforms.forward_batch``, and
    per prompt row (image index, coords (P, 2) in model pixels, labels (P,), kind, gt mask (H, W) bool)."""
    kinds, weights = zip(*cfg.prompt_mix.items(), strict=True)
    probs = np.asarray(weights, float) / sum(weights)
    picks = rng.choice(len(bank.ids), size=cfg.images_per_step, replace=False)
    images, rows = [], []
    for b, i in enumerate(picks):
        image, labels = _augment(rng, bank.images[i], bank.labels[i])
        images.append(image)
        scale = size / max(image.shape[:2])
        for inst in rng.choice(bank.ids[i], size=cfg.prompts_per_image):
            gt = labels == inst
            kind = str(rng.choice(kinds, p=probs))
            coords, labs = sample_prompt(rng, gt, kind, cfg.box_noise, cfg.box_noise_max)
            rows.append((b, coords * scale, labs, kind, gt))
    return transforms.forward_batch(images), rows
