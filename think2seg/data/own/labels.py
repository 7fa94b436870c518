"""Vector labels for ``think2seg dataset build``: read in any CRS, repair, reproject, rasterize per tile.

>>> labels = read_labels("labels.gpkg", "class")                      # doctest: +SKIP
>>> labels.categories, labels.report["repaired"]                      # doctest: +SKIP
(['lake', 'runway'], 2)
>>> index = labels.index_for(image_crs)                               # reprojected once, spatial index  # doctest: +SKIP
>>> index.categories_in((minx, miny, maxx, maxy))                     # doctest: +SKIP
('lake',)
>>> out = index.rasterize(bounds, transform, (h, w), ["lake"])        # {"lake": ((h, w) bool, boxes)}  # doctest: +SKIP

Reading uses geopandas with the pyogrio engine (GeoPackage, GeoJSON, Shapefile, anything OGR reads).
Polygons and multipolygons are labels; invalid ones are repaired with ``make_valid`` (and counted), their
non-polygon parts dropped; features that are empty, not polygonal, or lack a class value are dropped and
counted. Categories are the class field's values as text (``1`` -> ``"1"``).

Rasterizing: a category's mask is the union of its instances (pixel centres inside a polygon, rasterio's
default rule); each instance is burnt with its own value so its box survives:
``[x1, y1, x2, y2]``, inclusive tile pixels, one per instance still visible in the tile.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from think2seg.core.io import data_error

SIDECARS = (".shp", ".shx", ".dbf", ".prj", ".cpg")  # a shapefile is these files together


def slug(category: str) -> str:
    """A file-name-safe form of a category (``"Water body"`` -> ``"Water_body"``), used in entry ids."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", category).strip("_") or "category"


def label_files(path: Path) -> list[Path]:
    """The files that make up a label source (a shapefile's sidecars too), for hashing."""
    if path.suffix.lower() == ".shp":
        return [p for p in (path.with_suffix(s) for s in SIDECARS) if p.is_file()]
    return [path]


@dataclass
class Labels:
    """Polygon labels with their category, in the file's CRS; ``report`` counts what reading changed."""

    path: Path
    class_field: str
    frame: Any  # geopandas.GeoDataFrame with columns "category" (str) and geometry
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def crs(self):
        return self.frame.crs

    @property
    def categories(self) -> list[str]:
        return sorted(self.frame["category"].unique())

    def index_for(self, crs: Any) -> LabelIndex:
        """The labels reprojected to ``crs`` (a rasterio CRS or anything pyproj reads), spatially indexed."""
        frame = self.frame.to_crs(crs.to_wkt() if hasattr(crs, "to_wkt") else crs)
        return LabelIndex(frame.reset_index(drop=True))


def _polygonal(geom: Any) -> Any:
    """The polygon parts of a geometry (a repaired geometry can be a collection), or None."""
    from shapely.geometry import MultiPolygon, Polygon

    if geom is None or geom.is_empty:
        return None
    if isinstance(geom, (Polygon, MultiPolygon)):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if isinstance(g, (Polygon, MultiPolygon))]
    polys = [p for g in parts for p in (g.geoms if isinstance(g, MultiPolygon) else [g])]
    return MultiPolygon(polys) if polys else None


def read_labels(path: str | Path, class_field: str) -> Labels:
    """Read and check ``path`` (DataError naming the file: missing, unreadable, no CRS, no such field,
    no polygon left)."""
    import geopandas as gpd
    import shapely
    from pyogrio.errors import DataSourceError

    path = Path(path)
    if not path.is_file():
        raise data_error(path, "no such file (--labels)", "missing")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = gpd.read_file(path, engine="pyogrio")
    except (DataSourceError, ValueError, OSError) as e:
        raise data_error(path, f"not a readable vector file ({str(e).splitlines()[0]})", "unreadable") from None
    if frame.crs is None:
        raise data_error(path, "has no CRS; set the labels' CRS first (e.g. ogr2ogr -a_srs EPSG:XXXX out.gpkg in.gpkg)",
                         "no_crs")
    fields = [c for c in frame.columns if c != frame.geometry.name]
    if class_field not in fields:
        raise data_error(path, f"has no field {class_field!r} (--class-field); its fields: {', '.join(fields) or 'none'}",
                         "no_field")
    n = len(frame)
    values = frame[class_field]
    no_class = values.isna() | (values.astype(str).str.strip() == "")
    geoms = frame.geometry.values
    missing = np.array([g is None or g.is_empty for g in geoms], bool)
    invalid = ~missing & ~np.asarray(shapely.is_valid(geoms), bool)
    repaired = np.array(geoms, dtype=object)
    if invalid.any():
        repaired[invalid] = shapely.make_valid(repaired[invalid])
    polys = np.array([None if m else _polygonal(g) for g, m in zip(repaired, missing, strict=True)], dtype=object)
    not_polygon = ~missing & np.array([p is None for p in polys], bool)
    keep = ~no_class.to_numpy() & ~missing & ~not_polygon
    out = gpd.GeoDataFrame({"category": values[keep].map(_category_name).to_numpy()},
                           geometry=list(polys[keep]), crs=frame.crs)
    report = {"features": n, "kept": int(keep.sum()), "repaired": int((invalid & keep).sum()),
              "dropped_no_class": int(no_class.sum()), "dropped_empty": int(missing.sum()),
              "dropped_not_polygon": int(not_polygon.sum()),
              "per_category": dict(sorted(Counter(out["category"]).items()))}
    if not len(out):
        raise data_error(path, f"no polygon label with a {class_field!r} value among its {n} features", "no_labels")
    slugs: dict[str, str] = {}
    for cat in sorted(out["category"].unique()):
        other = slugs.setdefault(slug(cat), cat)
        if other != cat:
            raise data_error(path, f"categories {other!r} and {cat!r} give the same file name {slug(cat)!r}; "
                             f"rename one in the {class_field!r} field", "bad_category")
    return Labels(path, class_field, out, report)


def _category_name(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


@dataclass
class LabelIndex:
    """Labels in one image CRS with a spatial index (``frame.sindex``)."""

    frame: Any

    def hits(self, bounds: tuple[float, float, float, float]) -> np.ndarray:
        """Row indices of the labels whose geometry intersects the box ``bounds`` (CRS units)."""
        from shapely.geometry import box

        return np.sort(self.frame.sindex.query(box(*bounds), predicate="intersects"))

    def categories_in(self, bounds: tuple[float, float, float, float]) -> tuple[str, ...]:
        """Sorted categories with a geometry intersecting ``bounds``."""
        return tuple(sorted(set(self.frame["category"].to_numpy()[self.hits(bounds)])))

    def outside(self, footprints: list[tuple[float, float, float, float]]) -> int:
        """How many labels intersect none of the ``footprints`` (image bounds in this CRS)."""
        inside = np.zeros(len(self.frame), bool)
        for b in footprints:
            inside[self.hits(b)] = True
        return int((~inside).sum())

    def rasterize(self, bounds: tuple[float, float, float, float], transform: Any, shape: tuple[int, int],
                  categories: list[str]) -> dict[str, tuple[np.ndarray, list[list[int]]]]:
        """``{category: ((h, w) bool union mask, instance boxes)}`` for a tile with ``bounds`` (CRS),
        ``transform`` (tile pixel -> CRS) and ``shape`` (h, w). Geometries are clipped to the tile (grown
        by one pixel) first, so a huge polygon costs what its part in the tile costs."""
        import shapely
        from rasterio.features import rasterize
        from scipy.ndimage import find_objects

        rows = self.hits(bounds)
        px = max(abs(transform.a), abs(transform.e))
        minx, miny, maxx, maxy = bounds
        sub = self.frame.iloc[rows]
        out = {}
        for cat in categories:
            geoms = sub.geometry.to_numpy()[sub["category"].to_numpy() == cat]
            clipped = shapely.clip_by_rect(geoms, minx - px, miny - px, maxx + px, maxy + px)
            shapes = [(g, k + 1) for k, g in enumerate(clipped) if g is not None and not g.is_empty]
            if not shapes:
                out[cat] = (np.zeros(shape, bool), [])
                continue
            burnt = rasterize(shapes, out_shape=shape, transform=transform, fill=0, dtype="int32")
            boxes = [[s[1].start, s[0].start, s[1].stop - 1, s[0].stop - 1] for s in find_objects(burnt) if s]
            out[cat] = (burnt > 0, boxes)
        return out
