"""Helpers of the predict tests: a scene with known targets, and vector files read back through pyogrio."""

from __future__ import annotations

import numpy as np


def read_vectors(path):
    """A GeoPackage / GeoJSON written by predict, read back through pyogrio: geometries, fields, CRS, bounds,
    and whether every geometry is valid (shapely)."""
    import shapely
    from pyogrio.raw import read

    meta, _, wkb, fields = read(path)
    out = {name: list(col) for name, col in zip(meta["fields"], fields, strict=True)}
    geoms = shapely.from_wkb(wkb)
    out.update(geometry=list(geoms), crs=meta["crs"], bounds=tuple(shapely.total_bounds(geoms)),
               valid=bool(shapely.is_valid(geoms).all()))
    return out


def scene_with_targets(h=240, w=320):
    """A grey field with a ring (square with a hole) and a disc; returns (C, H, W) uint8 and the truth."""
    import cv2

    truth = np.zeros((h, w), np.uint8)
    truth[40:120, 40:120] = 1
    truth[65:95, 65:95] = 0  # the hole
    cv2.circle(truth, (230, 160), 30, 1, -1)
    rng = np.random.default_rng(0)
    img = np.where(truth[None].astype(bool), np.array([200, 60, 50])[:, None, None],
                   np.array([70, 110, 70])[:, None, None]) + rng.integers(-6, 7, (3, h, w))
    return img.clip(0, 255).astype(np.uint8), truth
