"""Mask -> polygons (rasterio.features.shapes + shapely), holes kept, as a GeoJSON FeatureCollection.

>>> fc = mask_polygons(mask, transform=scene.transform, crs=scene.crs)      # doctest: +SKIP
>>> fc["features"][0]["properties"]                                          # doctest: +SKIP
{'id': 0, 'pixels': 1234, 'area': 30850.0}
>>> write_geojson(fc, "out/q1.geojson")                                      # doctest: +SKIP

Polygons follow pixel edges exactly (8-connected regions, so a polygon's area is its pixel count times
the pixel area); interior holes become GeoJSON interior rings. Coordinates are map coordinates of
``transform`` (the image CRS, named in the legacy ``crs`` member that GDAL and QGIS read; RFC 7946's
WGS 84 rule is not applied because reprojecting would change areas), or pixel coordinates (x = column,
y = row, origin at the top-left corner of the image) when ``transform`` is None.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine


def mask_polygons(mask: np.ndarray, transform=None, crs=None, properties: dict[str, Any] | None = None) -> dict:
    """A GeoJSON FeatureCollection of the (H, W) bool ``mask``'s regions (module doc for the spaces)."""
    from rasterio.features import shapes
    from shapely.geometry import mapping, shape

    m = np.ascontiguousarray(mask, dtype=np.uint8)
    tf = transform if transform is not None else Affine.identity()
    pixel_area = abs(tf.a * tf.e - tf.b * tf.d)
    feats = []
    for k, (geom, _value) in enumerate(shapes(m, mask=m.astype(bool), connectivity=8, transform=tf)):
        poly = shape(geom)
        feats.append({
            "type": "Feature",
            "geometry": mapping(poly),
            "properties": {"id": k, "pixels": round(poly.area / pixel_area), "area": float(poly.area),
                           **(properties or {})},
        })
    fc: dict[str, Any] = {"type": "FeatureCollection", "features": feats}
    if crs is not None:
        fc["crs"] = {"type": "name", "properties": {"name": crs.to_string()}}
    return fc


def write_geojson(fc: dict, path: str | Path) -> Path:
    """Write ``fc`` as JSON; returns the path."""
    path = Path(path)
    path.write_text(json.dumps(fc))
    return path
