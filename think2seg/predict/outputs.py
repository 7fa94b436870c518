"""What ``predict`` writes: per-question mask rasters (built window by window), overlays, map coordinates.

>>> store = MaskStore(scene, "out", n_questions=2)          # doctest: +SKIP
>>> with store.writing():  # doctest: +SKIP
...     store.add(0, tile_window, keep)                     # OR a tile's (h, w) bool mask into question 0
>>> paths = store.finish()                                  # q1.mask.tif (georeferenced) or q1.mask.png  # doctest: +SKIP

Masks accumulate in one single-band uint8 GeoTIFF per question (0 / 1), OR-ed window by window, so memory
is one window, not the scene; the files are closed after every batch, so an interrupted run can resume.
While the run lasts they are named ``.qK.mask.partial.tif``; :meth:`MaskStore.finish` gives them their
final names, so a file named ``qK.mask.*`` is always complete. A georeferenced scene (a non-identity
geotransform, rotated or not, with or without a CRS) keeps its transform, and its CRS when it has one, in
``qK.mask.tif``; for any other input the raster is converted to ``qK.mask.png`` (0 / 255) at the end,
which does read it whole.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from think2seg.core.drawing import overlay
from think2seg.core.types import Instance


@contextmanager
def _no_georef_warning():
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield


class MaskStore:
    """One on-disk uint8 mask per question, the size of ``scene`` (module doc). ``resume=True`` keeps the
    rasters an interrupted run left (when they are all there)."""

    def __init__(self, scene: Any, out: str | Path, n_questions: int, resume: bool = False) -> None:
        import rasterio

        self.scene, self.out = scene, Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        profile: dict[str, Any] = {
            "driver": "GTiff", "dtype": "uint8", "count": 1, "width": scene.width, "height": scene.height,
            "compress": "deflate",
        }
        if scene.width >= 256 and scene.height >= 256:
            profile.update(tiled=True, blockxsize=256, blockysize=256)
        if scene.georeferenced:
            profile["transform"] = scene.transform
        if scene.crs is not None:
            profile["crs"] = scene.crs
        self.paths = [self.out / f".q{k + 1}.mask.partial.tif" for k in range(n_questions)]
        self.resumed = resume and all(p.is_file() for p in self.paths)
        self.files: list[Any] = []
        if not self.resumed:
            with _no_georef_warning():
                for p in self.paths:
                    rasterio.open(p, "w", **profile).close()  # GDAL fills the unwritten blocks with zeros

    @contextmanager
    def writing(self):
        """Open every mask read-write for a batch of :meth:`add` calls; closed (on disk) afterwards."""
        import rasterio

        with _no_georef_warning():
            self.files = [rasterio.open(p, "r+") for p in self.paths]
        try:
            yield self
        finally:
            for f in self.files:
                f.close()
            self.files = []

    def add(self, q: int, window: Any, keep: np.ndarray) -> None:
        """OR the (h, w) bool ``keep`` into question ``q``'s mask at ``window`` (scene pixels); inside
        :meth:`writing`."""
        if not keep.any():
            return
        f = self.files[q]
        cur = f.read(1, window=window)
        f.write((cur | keep.astype(np.uint8)).astype(np.uint8), 1, window=window)

    def _open(self, q: int):
        import rasterio

        with _no_georef_warning():
            return rasterio.open(self.paths[q])

    def read(self, q: int, out_hw: tuple[int, int] | None = None) -> np.ndarray:
        """Question ``q``'s (H, W) bool mask (nearest-resampled to ``out_hw=(h, w)`` when given)."""
        from rasterio.enums import Resampling

        kw = {"out_shape": out_hw, "resampling": Resampling.nearest} if out_hw else {}
        with self._open(q) as f:
            return f.read(1, **kw).astype(bool)

    def pixels(self, q: int) -> int:
        """Mask pixels of question ``q``, counted window by window."""
        with self._open(q) as f:
            return int(sum(int(f.read(1, window=w).sum()) for _, w in f.block_windows(1)))

    def finish(self) -> list[Path]:
        """Rename each mask to ``qK.mask.tif`` (georeferenced scene) or convert it to ``qK.mask.png``.
        The final paths."""
        out = []
        for k, p in enumerate(self.paths):
            if self.scene.georeferenced:
                out.append(self.out / f"q{k + 1}.mask.tif")
                os.replace(p, out[-1])
                continue
            out.append(save_png(Image.fromarray(self.read(k).astype(np.uint8) * np.uint8(255)),
                                self.out / f"q{k + 1}.mask.png"))
            p.unlink()
        return out


def save_png(image: Image.Image, path: Path) -> Path:
    """Save ``image`` as PNG under a temporary name, then rename it to ``path`` (never a torn file)."""
    tmp = path.with_name(f".{path.stem}.partial.png")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)
    return path


def instance_map(inst: Instance, transform: Any) -> dict[str, Any]:
    """Map coordinates of a scene-pixel instance: the box as ``[xmin, ymin, xmax, ymax]`` over the pixel
    edges (inclusive pixel corners -> outer edges; with a rotated transform, the bounds of the four
    transformed corners), points at pixel centres."""
    out: dict[str, Any] = {}
    if inst.box is not None:
        x1, y1, x2, y2 = inst.box
        corners = ((x1, y1), (x2 + 1, y1), (x1, y2 + 1), (x2 + 1, y2 + 1))
        xs, ys = zip(*(transform @ (x, y) for x, y in corners), strict=True)
        out["bbox"] = [min(xs), min(ys), max(xs), max(ys)]
    if inst.positive:
        out["positive_points"] = [list(transform @ (x + 0.5, y + 0.5)) for x, y in inst.positive]
    if inst.negative:
        out["negative_points"] = [list(transform @ (x + 0.5, y + 0.5)) for x, y in inst.negative]
    return out


def write_overlay(scene: Any, store: MaskStore, q: int, instances: list[Instance], path: Path, side: int) -> Path:
    """``path``: the scene (long side at most ``side`` px) with question ``q``'s mask and the prompts drawn."""

    s = min(1.0, side / max(scene.width, scene.height))
    hw = (max(1, round(scene.height * s)), max(1, round(scene.width * s)))
    image = scene.read(None, out_hw=hw)
    mask = store.read(q, out_hw=hw)
    sx, sy = hw[1] / scene.width, hw[0] / scene.height
    drawn = [i.scaled(sx, sy, size=(hw[1], hw[0])) for i in instances]
    return save_png(Image.fromarray(overlay(image, mask, drawn)), path)
