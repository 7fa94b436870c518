"""A georeferenced SynthEarth mosaic with known targets, and the comparison of ``predict`` strategies on it.

>>> m = build_mosaic("runs/mosaic", grid=8, size=256, n_target=8, category="storage_tank", seed=0)  # doctest: +SKIP
>>> m["image"], m["truth"], m["question"]          # mosaic.tif, truth.tif (0/1), an implicit question  # doctest: +SKIP
>>> rows = compare_strategies(m, {"oracle": "oracle?image_size=112", "tiny": "tiny"}, out="runs/cmp")  # doctest: +SKIP

``python -m think2seg.predict.mosaic --out runs/mosaic`` prints the table of docs/predict.md.

The mosaic is ``grid`` x ``grid`` SynthEarth scenes of ``size`` px (:func:`think2seg.data.scenes.render_scene`),
``n_target`` of them (seeded positions) holding instances of ``category`` and the others rendered with it
absent, so most of the mosaic holds no target, as in a real scene asked a reasoning question. The truth
raster is the union of the target masks. Scores per run (:func:`score`): IoU, pixel precision and recall
of the whole mosaic, and the share of target instances (truth components) with at least half of their
pixels predicted ("found") and with at least 90 % ("found whole").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
from affine import Affine

from think2seg.data.questions import make_questions
from think2seg.data.scenes import render_scene
from think2seg.predict.run import STRATEGIES, PredictConfig, predict
from think2seg.segmenters.spec import DEFAULT_SEGMENTER


def build_mosaic(out: str | Path, grid: int = 8, size: int = 256, n_target: int = 8,
                 category: str = "storage_tank", seed: int = 0) -> dict[str, Any]:
    """Write ``mosaic.tif`` (RGB, EPSG:32631, 1 m pixels) and ``truth.tif``; returns paths and the question."""
    import rasterio

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    side = grid * size
    image = np.zeros((side, side, 3), np.uint8)
    truth = np.zeros((side, side), np.uint8)
    with_target = set(rng.choice(grid * grid, size=n_target, replace=False).tolist())
    for k in range(grid * grid):
        r, c = divmod(k, grid)
        srng = np.random.default_rng([seed, k])
        scene = render_scene(srng, size, target=category) if k in with_target else render_scene(srng, size, absent=category)
        image[r * size:(r + 1) * size, c * size:(c + 1) * size] = scene.image
        if k in with_target:
            truth[r * size:(r + 1) * size, c * size:(c + 1) * size] = scene.mask(category)
    question = make_questions(rng, category, n_implicit=1, n_explicit=0)[0][0]
    profile = {"driver": "GTiff", "width": side, "height": side, "crs": "EPSG:32631",
               "transform": Affine(1.0, 0.0, 400000.0, 0.0, -1.0, 5000000.0), "dtype": "uint8", "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate"}
    with rasterio.open(out / "mosaic.tif", "w", count=3, **profile) as f:
        f.write(np.moveaxis(image, -1, 0))
    with rasterio.open(out / "truth.tif", "w", count=1, **profile) as f:
        f.write(truth, 1)
    meta = {"image": str(out / "mosaic.tif"), "truth": str(out / "truth.tif"), "question": question,
            "category": category, "grid": grid, "size": size, "n_target": n_target, "seed": seed,
            "target_scenes": sorted(with_target)}
    (out / "mosaic.json").write_text(json.dumps(meta, indent=1))
    return meta


def score(pred: np.ndarray, truth: np.ndarray, whole: float = 0.9) -> dict[str, float]:
    """IoU / precision / recall of two (H, W) bool masks, and the shares of truth components found / whole."""
    inter, p, t = int((pred & truth).sum()), int(pred.sum()), int(truth.sum())
    union = p + t - inter
    n, labels = cv2.connectedComponents(truth.astype(np.uint8), connectivity=8)
    cover = np.array([pred[labels == k].mean() for k in range(1, n)])
    return {"iou": inter / union if union else 1.0, "precision": inter / p if p else float(t == 0),
            "recall": inter / t if t else 1.0, "found": float((cover >= 0.5).mean()) if n > 1 else 1.0,
            "found_whole": float((cover >= whole).mean()) if n > 1 else 1.0, "instances": n - 1}


def compare_strategies(mosaic: dict[str, Any], prompters: dict[str, str], out: str | Path,
                       strategies=STRATEGIES, segmenter: str = DEFAULT_SEGMENTER, **options: Any) -> list[dict[str, Any]]:
    """One ``predict`` run per (prompter, strategy) on the mosaic, scored against its truth."""
    import rasterio

    with rasterio.open(mosaic["truth"]) as f:
        truth = f.read(1) > 0
    rows = []
    for label, spec in prompters.items():
        for strategy in strategies:
            run_dir = Path(out) / f"{label}-{strategy}"
            s = predict(PredictConfig(image=mosaic["image"], questions=[mosaic["question"]], out=str(run_dir),
                                      prompter=spec, segmenter=segmenter, strategy=strategy,
                                      truth=mosaic["truth"] if spec.startswith("oracle") else None, **options))
            with rasterio.open(s["questions"][0]["mask"]) as f:
                pred = f.read(1) > 0
            rows.append({"prompter": label, "strategy": strategy, **score(pred, truth),
                         "tiles_asked": s["tiles_asked"], "n_tiles": s["n_tiles"], "seconds": s["seconds"]})
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Compare predict strategies on a SynthEarth mosaic with known targets")
    ap.add_argument("--out", required=True)
    ap.add_argument("--grid", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--n-target", type=int, default=8)
    ap.add_argument("--category", default="storage_tank")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prompter", action="append", default=None, help="LABEL=SPEC (repeatable)")
    a = ap.parse_args(argv)
    m = build_mosaic(a.out, a.grid, a.size, a.n_target, a.category, a.seed)
    specs = dict(p.split("=", 1) for p in (a.prompter or ["oracle112=oracle?image_size=112", "oracle840=oracle", "tiny=tiny"]))
    rows = compare_strategies(m, specs, Path(a.out) / "runs")
    (Path(a.out) / "strategies.json").write_text(json.dumps(rows, indent=1))

    print(f"question: {m['question']!r}")
    print(pd.DataFrame(rows).round(3).to_markdown(index=False))


if __name__ == "__main__":
    main()
