"""Splits without spatial leakage for ``think2seg dataset build``: blocks (or whole images) to splits, and
the buffer that keeps tiles of different splits from touching.

>>> parse_ratios("0.8,0.1,0.1")
{'train': 0.8, 'val': 0.1, 'test': 0.1}
>>> assign_groups({"a": 5, "b": 5, "c": 5, "d": 5}, parse_ratios("0.5,0.25,0.25"), seed=0)
{'a': 'train', 'b': 'train', 'c': 'test', 'd': 'val'}

Groups are square blocks of a grid in the images' CRS (``--split-by blocks``: a tile belongs to the block
holding its centre) or whole images (``--split-by image``). Groups go to splits in a seeded order, the
first ones to the smallest splits (each split with a ratio > 0 gets one), then each to the split furthest
below its share of labelled tiles. Tiles of one group can still touch tiles of a neighbouring group in
another split (overlapping tiles, shared edges, overlapping images), so :func:`leaking` finds the tiles to
leave out: of two touching tiles in different splits the one of lower priority goes (callers keep test,
then val, and drop train). Boxes touch when they overlap or lie less than ``tolerance`` apart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from think2seg.core.errors import CLIError
from think2seg.data.formats import SPLITS

SPLIT_BY = ("blocks", "image")


def parse_ratios(text: str | tuple | list) -> dict[str, float]:
    """``"0.8,0.1,0.1"`` -> ratios of train/val/test (non-negative, summing to 1); CLIError naming --ratios."""
    try:
        vals = [float(v) for v in (text.split(",") if isinstance(text, str) else text)]
    except ValueError:
        raise CLIError(f"--ratios {text!r}: give three numbers train,val,test, e.g. 0.8,0.1,0.1") from None
    if len(vals) != 3 or min(vals) < 0 or abs(sum(vals) - 1) > 1e-6 or vals[0] <= 0:
        raise CLIError(f"--ratios {text!r}: three non-negative numbers train,val,test summing to 1, train > 0")
    return dict(zip(SPLITS, vals, strict=True))


def assign_groups(weights: dict[str, int], ratios: dict[str, float], seed: int) -> dict[str, str]:
    """Split per group from ``weights`` (labelled tiles per group); module doc for the rule. Groups of
    weight 0 are drawn at random with the ratios. CLIError when there are fewer labelled groups than splits
    with a ratio > 0."""
    rng = np.random.default_rng([seed, 0x5B117])
    names = sorted(weights)
    order = [names[int(i)] for i in rng.permutation(len(names))]
    labelled = [g for g in order if weights[g] > 0]
    wanted = [s for s in sorted(SPLITS, key=lambda s: ratios[s]) if ratios[s] > 0]
    if len(labelled) < len(wanted):
        raise CLIError(f"only {len(labelled)} block(s)/image(s) hold labels, fewer than the {len(wanted)} splits "
                       "with a ratio > 0; use a smaller --block, more images, or set a ratio to 0 (--ratios)")
    out: dict[str, str] = {}
    count = dict.fromkeys(SPLITS, 0.0)
    for g, s in zip(labelled, wanted, strict=False):
        out[g], count[s] = s, count[s] + weights[g]
    for g in labelled[len(wanted):]:
        total = sum(count.values()) + weights[g]
        s = max(SPLITS, key=lambda s: (ratios[s] * total - count[s], ratios[s]))
        out[g], count[s] = s, count[s] + weights[g]
    p = np.array([ratios[s] for s in SPLITS])
    for g in order:
        if g not in out:
            out[g] = SPLITS[int(rng.choice(len(SPLITS), p=p / p.sum()))]
    return dict(sorted(out.items()))


def block_of(bounds: tuple[float, float, float, float], origin: tuple[float, float], size: float) -> str:
    """Block key ``"<col>_<row>"`` of the block (``size`` CRS units, grid from ``origin`` = (minx, maxy),
    rows going south) holding the centre of ``bounds``."""
    cx, cy = (bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2
    return f"{int((cx - origin[0]) // size)}_{int((origin[1] - cy) // size)}"


def block_bounds(key: str, origin: tuple[float, float], size: float) -> tuple[float, float, float, float]:
    """``(minx, miny, maxx, maxy)`` of block ``key``."""
    c, r = map(int, key.split("_"))
    x0, y1 = origin[0] + c * size, origin[1] - r * size
    return (x0, y1 - size, x0 + size, y1)


def leaking(boxes: list[tuple[float, float, float, float]], splits: list[str], priority: list[tuple],
            tolerance: float) -> set[int]:
    """Indices to leave out so that no two remaining boxes of different splits touch (module doc); of a
    touching pair the one with the lower ``priority`` tuple goes. Uses shapely's STRtree."""
    import shapely

    if not boxes:
        return set()
    b = np.asarray(boxes, float)
    tree = shapely.STRtree(shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3]))
    grown = shapely.box(b[:, 0] - tolerance, b[:, 1] - tolerance, b[:, 2] + tolerance, b[:, 3] + tolerance)
    i, j = tree.query(grown, predicate="intersects")
    pairs = [(int(a), int(c)) for a, c in zip(i, j, strict=True) if a < c and splits[a] != splits[c]]
    out: set[int] = set()
    for a, c in sorted(pairs, key=lambda p: min(priority[p[0]], priority[p[1]])):
        if a in out or c in out:
            continue
        out.add(a if priority[a] < priority[c] else c)
    return out


def touching(boxes: list[tuple[float, float, float, float]], others: list[tuple[float, float, float, float]],
             tolerance: float) -> np.ndarray:
    """(len(boxes),) bool: whether each box touches (overlaps, or lies within ``tolerance`` of) any of ``others``."""
    import shapely

    if not boxes or not others:
        return np.zeros(len(boxes), bool)
    b, o = np.asarray(boxes, float), np.asarray(others, float)
    tree = shapely.STRtree(shapely.box(o[:, 0], o[:, 1], o[:, 2], o[:, 3]))
    grown = shapely.box(b[:, 0] - tolerance, b[:, 1] - tolerance, b[:, 2] + tolerance, b[:, 3] + tolerance)
    hit = np.zeros(len(boxes), bool)
    hit[np.unique(tree.query(grown, predicate="intersects")[0])] = True
    return hit


def write_split_map(path: str | Path, groups: dict[str, tuple[float, float, float, float]],
                    split_of: dict[str, str], tiles: list[dict[str, Any]], crs: Any) -> None:
    """GeoJSON (in the images' CRS, named in its ``crs`` member) of the groups (``kind: block`` or ``image``)
    with their split, and of every tile with its split and status (``written``, or why it was left out)."""
    feats = []
    for key, (x0, y0, x1, y1) in sorted(groups.items()):
        feats.append({"type": "Feature", "properties": {"kind": "group", "id": key, "split": split_of.get(key)},
                      "geometry": _polygon(x0, y0, x1, y1)})
    for t in tiles:
        x0, y0, x1, y1 = t["bounds"]
        props = {k: v for k, v in t.items() if k != "bounds"}
        feats.append({"type": "Feature", "properties": {"kind": "tile", **props}, "geometry": _polygon(x0, y0, x1, y1)})
    doc = {"type": "FeatureCollection", "name": "split_map",
           "crs": {"type": "name", "properties": {"name": crs.to_string()}}, "features": feats}
    Path(path).write_text(json.dumps(doc), encoding="utf-8")


def _polygon(x0: float, y0: float, x1: float, y1: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}
