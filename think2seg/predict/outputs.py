"""What ``predict`` writes: per-question mask rasters (built window by window), overlays, map coordinates.

>>> store = MaskStore(scene, "out", n_questions=2)          # doctest: +SKIP
>>> store.add(0, tile_window, keep)                         # OR a tile's (h, w) bool mask into question 0
>>> paths = store.finish()                                  # q1.mask.tif (georeferenced) or q1.mask.png

Masks accumulate in one single-band uint8 GeoTIFF per question (0 / 1) opened read-write, so memory is one
window, not the scene. A georeferenced scene keeps its CRS and transform in ``qK.mask.tif``; for any other
input the raster is converted to ``qK.mask.png`` (0 / 255) at the end, which does read it whole.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from think2seg.types import Instance


class MaskStore:
    """One on-disk uint8 mask per question, the size of ``scene`` (module doc)."""

    def __init__(self, scene: Any, out: str | Path, n_questions: int) -> None:
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning

        self.scene, self.out = scene, Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        profile: dict[str, Any] = {
            "driver": "GTiff", "dtype": "uint8", "count": 1, "width": scene.width, "height": scene.height,
            "compress": "deflate",
        }
        if scene.width >= 256 and scene.height >= 256:
            profile.update(tiled=True, blockxsize=256, blockysize=256)
        if scene.georeferenced:
            profile.update(crs=scene.crs, transform=scene.transform)
        self.paths = [self.out / (f"q{k + 1}.mask.tif" if scene.georeferenced else f".q{k + 1}.mask.tmp.tif")
                      for k in range(n_questions)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            self.files = [rasterio.open(p, "w+", **profile) for p in self.paths]
        for f in self.files:  # start from zeros, window by window
            for _, w in f.block_windows(1):
                f.write(np.zeros((int(w.height), int(w.width)), np.uint8), 1, window=w)

    def add(self, q: int, window: Any, keep: np.ndarray) -> None:
        """OR the (h, w) bool ``keep`` into question ``q``'s mask at ``window`` (scene pixels)."""
        if not keep.any():
            return
        f = self.files[q]
        cur = f.read(1, window=window)
        f.write((cur | keep.astype(np.uint8)).astype(np.uint8), 1, window=window)

    def read(self, q: int, out_hw: tuple[int, int] | None = None) -> np.ndarray:
        """Question ``q``'s (H, W) bool mask (nearest-resampled to ``out_hw=(h, w)`` when given)."""
        from rasterio.enums import Resampling

        kw = {"out_shape": out_hw, "resampling": Resampling.nearest} if out_hw else {}
        return self.files[q].read(1, **kw).astype(bool)

    def pixels(self, q: int) -> int:
        """Mask pixels of question ``q``, counted window by window."""
        f = self.files[q]
        return int(sum(int(f.read(1, window=w).sum()) for _, w in f.block_windows(1)))

    def finish(self) -> list[Path]:
        """Close the rasters; for a non-georeferenced scene convert each to ``qK.mask.png``. Final paths."""
        from PIL import Image

        out = []
        for k, (f, p) in enumerate(zip(self.files, self.paths, strict=True)):
            if self.scene.georeferenced:
                f.close()
                out.append(p)
                continue
            png = self.out / f"q{k + 1}.mask.png"
            Image.fromarray(f.read(1) * np.uint8(255)).save(png)
            f.close()
            p.unlink()
            out.append(png)
        return out


def instance_map(inst: Instance, transform: Any) -> dict[str, Any]:
    """Map coordinates of a scene-pixel instance: the box as ``[xmin, ymin, xmax, ymax]`` over the pixel
    edges (inclusive pixel corners -> outer edges), points at pixel centres."""
    out: dict[str, Any] = {}
    if inst.box is not None:
        x1, y1, x2, y2 = inst.box
        xs, ys = zip(*(transform @ (x, y) for x, y in ((x1, y1), (x2 + 1, y2 + 1))), strict=True)
        out["bbox"] = [min(xs), min(ys), max(xs), max(ys)]
    if inst.positive:
        out["positive_points"] = [list(transform @ (x + 0.5, y + 0.5)) for x, y in inst.positive]
    if inst.negative:
        out["negative_points"] = [list(transform @ (x + 0.5, y + 0.5)) for x, y in inst.negative]
    return out


def write_overlay(scene: Any, store: MaskStore, q: int, instances: list[Instance], path: Path, side: int) -> Path:
    """``path``: the scene (long side at most ``side`` px) with question ``q``'s mask and the prompts drawn."""
    from PIL import Image

    from think2seg.viz import overlay

    s = min(1.0, side / max(scene.width, scene.height))
    hw = (max(1, round(scene.height * s)), max(1, round(scene.width * s)))
    image = scene.read(None, out_hw=hw)
    mask = store.read(q, out_hw=hw)
    sx, sy = hw[1] / scene.width, hw[0] / scene.height
    drawn = [i.scaled(sx, sy, size=(hw[1], hw[0])) for i in instances]
    Image.fromarray(overlay(image, mask, drawn)).save(path)
    return path
