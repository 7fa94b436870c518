"""The images of ``think2seg dataset build``: their georeference, the tile grid, and nodata per tile.

>>> parse_length("512", "--tile"), parse_length("300m", "--tile")
((512.0, 'px'), (300.0, 'm'))
>>> grid_starts(1000, 256, 192)          # last tile shifted back to end on the image edge
[0, 192, 384, 576, 744]
>>> infos = read_image_infos(["A.tif", "B.tif"])                       # doctest: +SKIP
>>> tiles = image_tiles(infos[0], tile=512, overlap=64)                # doctest: +SKIP

Spaces: a tile's ``col``/``row``/``width``/``height`` are pixels of its image; ``bounds`` are
``(minx, miny, maxx, maxy)`` in the images' CRS (every image must share one). A length given in metres
(``"300m"``) is converted with the image's pixel size and the CRS's linear unit; a geographic CRS (degrees)
only takes pixels.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from think2seg.core.errors import CLIError
from think2seg.core.io import data_error
from think2seg.data.raster import open_scene

_LENGTH = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(px|m)?\s*$")


def parse_length(text: str | int | float, option: str) -> tuple[float, str]:
    """``"512"`` / ``512`` -> ``(512.0, "px")``; ``"300m"`` -> ``(300.0, "m")``; CLIError naming ``option``."""
    m = _LENGTH.match(str(text))
    if not m:
        raise CLIError(f"{option} {text!r}: give pixels (e.g. 512) or metres (e.g. 300m)")
    return float(m.group(1)), m.group(2) or "px"


@dataclass
class ImageInfo:
    """One source image: path, unique name (file stem), size, CRS (WKT), transform, pixel size (CRS units)."""

    path: Path
    name: str
    width: int
    height: int
    crs: Any  # rasterio CRS
    transform: Any  # affine.Affine: image pixel (col, row) -> CRS (x, y)
    res: float  # pixel size in CRS units (mean of x and y)
    count: int
    dtype: str
    nodata: float | None
    sha256: str = field(default="", repr=False)

    def to_pixels(self, length: tuple[float, str], option: str) -> int:
        """A ``parse_length`` value in this image's pixels (at least 1)."""
        value, unit = length
        if unit == "px":
            return max(1, int(round(value)))
        if self.crs.is_geographic:
            raise CLIError(f"{option} {value:g}m: {self.path} has a geographic CRS (degrees); give the length in pixels")
        metres_per_unit = self.crs.linear_units_factor[1]
        return max(1, int(round(value / (self.res * metres_per_unit))))

    def provenance(self) -> dict[str, Any]:
        return {"path": str(self.path), "sha256": self.sha256, "width": self.width, "height": self.height,
                "bands": self.count, "dtype": self.dtype, "nodata": self.nodata, "pixel_size": self.res,
                "transform": list(self.transform)[:6]}


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in 4 MiB chunks (memory does not grow with the file)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_image_infos(paths: list[str | Path], bands: str | None = None, hashes: bool = True) -> list[ImageInfo]:
    """Open every image (and check ``bands`` on it); DataError naming the file when one is missing, not a
    raster, not georeferenced, rotated, or in another CRS than the first image (reproject it first)."""
    infos: list[ImageInfo] = []
    names: set[str] = set()
    for p in map(Path, paths):
        with open_scene(p, bands) as scene:
            ds = scene.dataset
            if ds.crs is None or not scene.georeferenced:
                raise data_error(p, "has no CRS or geotransform (not georeferenced): the labels cannot be placed "
                                 "on it", "no_crs")
            t = ds.transform
            if t.b != 0 or t.d != 0:
                raise data_error(p, "has a rotated geotransform; warp it north-up first (gdalwarp)", "rotated")
            name, k = p.stem, 2
            while name in names:
                name, k = f"{p.stem}-{k}", k + 1
            names.add(name)
            infos.append(ImageInfo(p, name, ds.width, ds.height, ds.crs, t, (abs(t.a) + abs(t.e)) / 2,
                                   ds.count, ds.dtypes[0], ds.nodata))
    first = infos[0]
    for info in infos[1:]:
        if info.crs != first.crs:
            raise data_error(info.path, f"CRS {info.crs.to_string()} differs from {first.path}'s "
                             f"{first.crs.to_string()}; reproject the images to one CRS first "
                             f"(gdalwarp -t_srs {first.crs.to_string()})", "crs_mismatch")
    if hashes:
        for info in infos:
            info.sha256 = file_sha256(info.path)
    return infos


def grid_starts(size: int, tile: int, stride: int) -> list[int]:
    """Start offsets of tiles of ``tile`` px with ``stride`` along an image side of ``size`` px; the last
    start is shifted back so the last tile ends on the edge (an image smaller than a tile gives [0])."""
    if size <= tile:
        return [0]
    return sorted(set(range(0, size - tile, stride)) | {size - tile})


@dataclass
class TilePlan:
    """One tile: where it is, which label categories intersect it, and what the planner decided."""

    image: int  # index into the image list
    key: str  # "<image name>_<col>_<row>", unique in the dataset
    col: int
    row: int
    width: int
    height: int
    bounds: tuple[float, float, float, float]  # CRS (minx, miny, maxx, maxy)
    cats: tuple[str, ...] = ()  # label categories whose geometry intersects the tile
    block: str = ""
    split: str | None = None
    empties: list[str] = field(default_factory=list)  # absent categories asked about (empty targets)
    dropped: str | None = None  # why it is left out before reading pixels ("split_buffer")

    def window(self):
        from rasterio.windows import Window

        return Window(self.col, self.row, self.width, self.height)


def image_tiles(info: ImageInfo, index: int, tile: int, overlap: int) -> list[TilePlan]:
    """Row-major tiles of ``tile`` x ``tile`` px with ``overlap`` px between neighbours covering the image."""
    if tile < 16:
        raise CLIError(f"--tile {tile} px: tiles must be at least 16 px")
    if not 0 <= overlap < tile:
        raise CLIError(f"--overlap {overlap} px: must be at least 0 and smaller than the tile ({tile} px)")
    out = []
    w, h = min(tile, info.width), min(tile, info.height)
    for row in grid_starts(info.height, tile, tile - overlap):
        for col in grid_starts(info.width, tile, tile - overlap):
            x0, y0 = info.transform @ (col, row)
            x1, y1 = info.transform @ (col + w, row + h)
            out.append(TilePlan(index, f"{info.name}_{col}_{row}", col, row, w, h,
                                (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))))
    return out


def nodata_fraction(dataset: Any, window: Any, bands: tuple[int, ...]) -> float:
    """Share of the window's pixels that any of ``bands`` (1-based) marks invalid (nodata value, alpha band
    or internal mask); a band outside the selection (e.g. a NIR band under ``--bands 3,2,1``) does not count."""
    masks = dataset.read_masks(list(bands), window=window)
    return float((masks == 0).any(axis=0).mean()) if masks.size else 1.0
