"""Reading a scene for prediction: rasterio windows, band selection, a fixed 8-bit scaling rule.

>>> scene = open_scene("scene.tif", bands=(4, 3, 2))             # doctest: +SKIP
>>> scene.width, scene.height, scene.georeferenced  # doctest: +SKIP
(4096, 4096, True)
>>> tile = scene.read(Window(0, 0, 512, 512))                    # (512, 512, 3) uint8 RGB  # doctest: +SKIP
>>> small = scene.read(None, out_hw=(112, 112))                  # the whole scene, resampled (average)  # doctest: +SKIP
>>> scene.close()  # doctest: +SKIP

Bands: 1 band is grey (repeated to RGB); 3 bands are RGB; 4 bands are taken as R, G, B, (alpha or NIR)
and the first three are used; any other count needs ``bands`` (three 1-based indices, or one for grey).
Scaling to uint8: uint8 data is used as is. Every other supported dtype (``DTYPES``) gets a per-band
linear *percentile stretch*: the 2nd and 98th percentiles of the band (nodata excluded), measured ONCE on a
decimated read of the whole scene (long side <= 1024 px), map to 0 and 255, values outside are clipped.
Measuring on the whole scene, not per tile, keeps a pixel's value independent of the tile it is read in.

Errors (:class:`SceneError`, a ``ValueError``) name the file and, where one is at fault, the option; a
block GDAL cannot decode (a corrupt or truncated file) names the window that was being read.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from think2seg.core.errors import UserError

DTYPES = ("uint8", "uint16", "int16", "uint32", "int32", "float32", "float64")
STRETCH_PERCENTILES = (2.0, 98.0)
STATS_SIDE = 1024  # long side of the decimated read the stretch is measured on


class SceneError(UserError, ValueError):
    """A scene that cannot be read as asked; the message names the file (and the option at fault)."""


def parse_bands(text: str | Sequence[int] | None) -> tuple[int, ...] | None:
    """``"4,3,2"`` -> ``(4, 3, 2)`` (1-based band indices); None stays None."""
    if text is None:
        return None
    try:
        vals = tuple(int(v) for v in (text.split(",") if isinstance(text, str) else text))
    except ValueError:
        raise SceneError(f"--bands {text!r}: give 1-based band numbers, e.g. --bands 4,3,2") from None
    if len(vals) not in (1, 3) or min(vals) < 1:
        raise SceneError(f"--bands {text!r}: give three band numbers (R,G,B) or one (grey), each >= 1")
    return vals


@dataclass
class Scene:
    """An open raster: size, georeference and windowed 8-bit RGB reads (see the module doc)."""

    path: Path
    dataset: Any  # rasterio DatasetReader
    bands: tuple[int, ...]
    lo: np.ndarray = field(repr=False)  # per selected band, value mapped to 0 (None-equivalent for uint8)
    hi: np.ndarray = field(repr=False)

    @property
    def width(self) -> int:
        return int(self.dataset.width)

    @property
    def height(self) -> int:
        return int(self.dataset.height)

    @property
    def crs(self):
        return self.dataset.crs

    @property
    def transform(self):
        return self.dataset.transform

    @property
    def georeferenced(self) -> bool:
        """True when the file has a non-identity geotransform: map coordinates exist (in the CRS when
        :attr:`crs` is set, else in the transform's own units). A rotated transform counts; it is applied
        as an affine everywhere (masks keep it, polygons and map points go through it)."""

        return self.dataset.transform != Affine.identity()

    @property
    def rotated(self) -> bool:
        """True when the geotransform has rotation / shear terms (``b`` or ``d`` non-zero)."""
        t = self.dataset.transform
        return bool(t.b or t.d)

    def read(self, window=None, out_hw: tuple[int, int] | None = None) -> np.ndarray:
        """(h, w, 3) uint8 RGB of ``window`` (a rasterio ``Window`` in scene pixels; None: the whole scene),
        resampled with the average rule to ``out_hw=(h, w)`` when given. Memory: the output size only."""
        from rasterio.enums import Resampling

        kw: dict[str, Any] = {}
        if out_hw is not None:
            kw.update(out_shape=(len(self.bands), int(out_hw[0]), int(out_hw[1])), resampling=Resampling.average)
        data = read_window(self.dataset, self.path, list(self.bands), window, **kw)
        return to_rgb8(data, self.lo, self.hi, self.dataset.dtypes[0])

    def close(self) -> None:
        self.dataset.close()

    def __enter__(self) -> Scene:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def describe_window(window: Any) -> str:
    """``"window x 256-511, y 0-255 (col_off=256, row_off=0, 256 x 256 px)"`` (None: the whole scene)."""
    if window is None:
        return "the whole scene"
    c, r, w, h = (int(round(v)) for v in (window.col_off, window.row_off, window.width, window.height))
    return f"window x {c}-{c + w - 1}, y {r}-{r + h - 1} (col_off={c}, row_off={r}, {w} x {h} px)"


def read_window(ds: Any, path: Path, bands: Any, window: Any = None, **kw: Any) -> np.ndarray:
    """``ds.read(bands, window=window, **kw)``; a read GDAL cannot do (a corrupt or truncated block) raises
    :class:`SceneError` naming ``path`` and the window, instead of rasterio's bare "Read failed"."""
    from rasterio.errors import RasterioError

    try:
        return ds.read(bands, window=window, **kw)
    except RasterioError as e:
        cause = e.__cause__ or e.__context__
        why = " ".join(str(cause or e).split())[:200]
        raise SceneError(f"{path}: could not read {describe_window(window)}: {why}; the file is corrupt or "
                         "truncated there (tiles done so far are kept: rerun after repairing it)") from None


def to_rgb8(data: np.ndarray, lo: np.ndarray, hi: np.ndarray, dtype: str) -> np.ndarray:
    """(C, h, w) band data (C = 1 or 3) -> (h, w, 3) uint8 by the module's scaling rule."""
    if dtype == "uint8":
        out = data
    else:
        x = data.astype(np.float32)
        span = np.maximum(hi - lo, 1e-6).astype(np.float32)[:, None, None]
        out = np.clip((x - lo.astype(np.float32)[:, None, None]) / span * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if out.shape[0] == 1:
        out = np.repeat(out, 3, axis=0)
    return np.ascontiguousarray(np.moveaxis(out, 0, -1))


def _default_bands(count: int, path: Path) -> tuple[int, ...]:
    if count == 1:
        return (1,)
    if count in (3, 4):
        return (1, 2, 3)
    raise SceneError(
        f"{path}: {count} bands; say which are red, green and blue with --bands R,G,B (e.g. --bands 4,3,2)"
    )


def _stretch(ds: Any, bands: tuple[int, ...], path: Path) -> tuple[np.ndarray, np.ndarray]:
    from rasterio.enums import Resampling

    s = min(1.0, STATS_SIDE / max(ds.width, ds.height))
    shape = (len(bands), max(1, round(ds.height * s)), max(1, round(ds.width * s)))
    data = read_window(ds, path, list(bands), None, out_shape=shape, resampling=Resampling.nearest,
                       masked=True)
    lo, hi = np.zeros(len(bands)), np.ones(len(bands))
    for k in range(len(bands)):
        vals = data[k].compressed().astype(np.float64)
        vals = vals[np.isfinite(vals)]
        if vals.size:
            lo[k], hi[k] = np.percentile(vals, STRETCH_PERCENTILES)
    return lo, hi


def open_scene(path: str | Path, bands: str | Sequence[int] | None = None) -> Scene:
    """Open ``path`` for windowed reads; raise :class:`SceneError` naming the file (or ``--bands``)."""

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    path = Path(path)
    sel = parse_bands(bands)
    if not path.is_file():
        raise SceneError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = rasterio.open(path)
    except RasterioIOError as e:
        raise SceneError(f"{path}: not a readable raster ({str(e).splitlines()[0]})") from None
    try:
        dtypes = set(ds.dtypes)
        if len(dtypes) != 1 or ds.dtypes[0] not in DTYPES:
            raise SceneError(f"{path}: unsupported data type {', '.join(sorted(dtypes))}; supported: {', '.join(DTYPES)}")
        if sel is None:
            sel = _default_bands(ds.count, path)
        elif max(sel) > ds.count:
            raise SceneError(f"--bands {','.join(map(str, sel))}: {path} has only {ds.count} band(s)")
        if ds.dtypes[0] == "uint8":
            lo, hi = np.zeros(len(sel)), np.full(len(sel), 255.0)
        else:
            lo, hi = _stretch(ds, sel, path)
    except BaseException:
        ds.close()
        raise
    return Scene(path, ds, sel, lo, hi)
