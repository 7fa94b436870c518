"""Mask -> valid polygons (rasterio.features.shapes + shapely.make_valid) -> GeoPackage and RFC 7946 GeoJSON.

>>> feats = mask_features(mask, transform=scene.transform)            # doctest: +SKIP
>>> feats[0].pixels, feats[0].geometry.is_valid                       # doctest: +SKIP
(1234, True)
>>> written = write_vectors(feats, "out/q1", crs=scene.crs, properties={"question": "..."})  # doctest: +SKIP
>>> written["gpkg"], written["geojson"]                               # out/q1.gpkg, out/q1.geojson  # doctest: +SKIP

One feature per 8-connected region of the mask. Its geometry follows the pixel edges exactly, in the
coordinates of ``transform`` (the full affine, rotation included; pixel coordinates, x = column, y = row,
origin at the image's top-left corner, when ``transform`` is None), holes kept as interior rings, so its
area is the region's pixel count times the pixel area ``|det(transform)|``.

GDAL's polygoniser traces a region whose pixels touch only at a corner as one ring that touches itself,
which OGC (``shapely.is_valid``: "Ring Self-intersection") and most GIS tools reject. Every geometry is
passed through ``shapely.make_valid(method="structure")``: the pinched ring becomes a MultiPolygon of its
parts (or a polygon with two holes), the area is unchanged, and :func:`mask_features` checks both.

Files (:func:`write_vectors`, through pyogrio, written under temporary names and renamed when complete):

- ``STEM.gpkg``: GeoPackage in the raster's own CRS and coordinates (no CRS when the raster has none);
  exact pixel-edge geometry and areas. This is the file for measuring.
- ``STEM.geojson``: RFC 7946 GeoJSON, WGS 84 longitude/latitude, no ``crs`` member, reprojected by GDAL
  (``RFC7946=YES``: 7 decimals, counter-clockwise outer rings). Only when the raster has a CRS; without
  one there is no way to WGS 84, and the reason is returned instead of a file.

Properties on both: ``id``, ``pixels``, ``area`` (in the raster CRS's units², from the exact geometry)
and the caller's ``properties``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

NO_CRS_GEOJSON = "no GeoJSON: the raster has no CRS, and RFC 7946 GeoJSON must be WGS 84 longitude/latitude"


@dataclass
class Feature:
    """One 8-connected mask region: a valid shapely (Multi)Polygon and its pixel count."""

    geometry: Any
    pixels: int


def _polygonal(geom: Any) -> Any:
    """The polygonal part of ``geom`` (make_valid may return a collection holding lines of zero area)."""
    import shapely
    from shapely.geometry import MultiPolygon, Polygon

    if isinstance(geom, (Polygon, MultiPolygon)):
        return geom
    parts = [g for g in shapely.get_parts(geom) if isinstance(g, (Polygon, MultiPolygon))]
    return shapely.union_all(parts)


def mask_features(mask: np.ndarray, transform: Any = None) -> list[Feature]:
    """Valid polygons of the (H, W) bool ``mask`` (module doc for the coordinate spaces).

    Raises ``RuntimeError`` if a geometry stays invalid or its area differs from its pixel count times
    the pixel area (relative 1e-9): neither happens by construction; the check keeps it that way."""
    import shapely
    from rasterio.features import shapes
    from shapely.geometry import shape

    m = np.ascontiguousarray(mask, dtype=np.uint8)
    tf = transform if transform is not None else Affine.identity()
    pixel_area = abs(tf.a * tf.e - tf.b * tf.d)
    out = []
    for k, (geom, _value) in enumerate(shapes(m, mask=m > 0, connectivity=8, transform=tf)):
        raw = shape(geom)
        poly = raw if raw.is_valid else _polygonal(shapely.make_valid(raw, method="structure", keep_collapsed=False))
        pixels = round(raw.area / pixel_area)
        if not poly.is_valid or abs(poly.area - raw.area) > 1e-9 * max(raw.area, pixel_area):
            raise RuntimeError(f"region {k}: could not make a valid polygon of area {raw.area}")
        out.append(Feature(poly, pixels))
    return out


def _write(path: Path, feats: list[Feature], properties: dict[str, Any], crs: Any, driver: str,
           options: dict[str, str] | None = None) -> Path:
    import shapely
    from pyogrio.raw import write

    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    tmp.unlink(missing_ok=True)
    wkb = np.array([shapely.to_wkb(f.geometry) for f in feats], dtype=object)
    names = ["id", "pixels", "area", *properties]
    data = [np.arange(len(feats), dtype=np.int64), np.array([f.pixels for f in feats], dtype=np.int64),
            np.array([float(f.geometry.area) for f in feats], dtype=np.float64)]
    data += [np.array([v] * len(feats), dtype=object) for v in properties.values()]
    write(str(tmp), wkb, data, names, driver=driver, geometry_type="MultiPolygon", promote_to_multi=True,
          crs=crs.to_wkt() if crs is not None else None, layer=path.stem, layer_options=options or None)
    os.replace(tmp, path)
    return path


def write_vectors(feats: list[Feature], stem: str | Path, crs: Any = None,
                  properties: dict[str, Any] | None = None) -> dict[str, str | None]:
    """Write ``STEM.gpkg`` (raster CRS) and, when ``crs`` is set, ``STEM.geojson`` (RFC 7946, WGS 84).

    Returns ``{"gpkg": path, "geojson": path or None, "note": why there is no GeoJSON, or None}``."""
    import warnings

    stem = Path(stem)
    props = dict(properties or {})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="'crs' was not provided")  # said in the note instead
        gpkg = _write(stem.with_suffix(".gpkg"), feats, props, crs, "GPKG")
    if crs is None:
        return {"gpkg": str(gpkg), "geojson": None, "note": NO_CRS_GEOJSON}
    gj = _write(stem.with_suffix(".geojson"), feats, props, crs, "GeoJSON", {"RFC7946": "YES"})
    return {"gpkg": str(gpkg), "geojson": str(gj), "note": None}
