"""Tiling a large scene with overlap, and the rule that merges tile masks back across the seams.

>>> tiles = tile_grid(1000, 700, tile=256, overlap=64)      # Tile(col, row, width, height, interior edges)
>>> len(tiles), tiles[0]
(20, Tile(col=0, row=0, width=256, height=256, left=False, top=False, right=True, bottom=True))
>>> keep = merge_tile_mask(tile_mask, tiles[0], overlap=64)  # the part of one tile's mask the scene keeps  # doctest: +SKIP

Grid: tiles of ``tile`` x ``tile`` scene pixels with stride ``tile - overlap``; the last row/column is
shifted back so it ends on the scene edge (tiles never hang outside; a scene smaller than a tile is one
tile of the scene's size). Coordinates are scene pixels, ``col`` = x offset, ``row`` = y offset.

Merge rule (per tile, then OR-ed into the scene mask):

1. a connected component (8-connected) of the tile's mask that does NOT touch an *interior* edge of the
   tile (an edge shared with a neighbouring tile; scene borders do not count) is kept whole: the tile saw
   that object entirely;
2. a component that touches an interior edge was cut by the tile; only its pixels inside the tile's *core*
   are kept. The core is the tile minus ``overlap // 2`` pixels on each interior side, and the cores of the
   grid partition the scene, so each cut piece is decided by the tile that sees it most centrally.

Any object whose extent is less than ``overlap - 1`` pixels in x and in y lies strictly inside some tile
(the one whose stride cell holds its top-left corner), so rule 1 keeps it whole whatever the neighbours
answer; larger objects are assembled from core pieces (rule 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Tile:
    """One tile in scene pixels; ``left/top/right/bottom`` say which edges are interior (shared)."""

    col: int
    row: int
    width: int
    height: int
    left: bool = False
    top: bool = False
    right: bool = False
    bottom: bool = False

    def window(self):
        """The rasterio ``Window`` of this tile."""
        from rasterio.windows import Window

        return Window(self.col, self.row, self.width, self.height)

    def intersects(self, box: tuple[float, float, float, float]) -> bool:
        """Whether the scene-pixel box ``(x1, y1, x2, y2)`` (inclusive) overlaps this tile."""
        x1, y1, x2, y2 = box
        return x1 < self.col + self.width and x2 >= self.col and y1 < self.row + self.height and y2 >= self.row


def _starts(size: int, tile: int, stride: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, stride)) + [size - tile]
    return sorted(set(starts))


def tile_grid(width: int, height: int, tile: int, overlap: int) -> list[Tile]:
    """Row-major tiles covering a ``width`` x ``height`` scene (module doc)."""
    if tile < 16:
        raise ValueError(f"--tile {tile}: tiles must be at least 16 px")
    if not 0 <= overlap < tile // 2 + 1:
        raise ValueError(f"--overlap {overlap}: must be between 0 and half the tile size ({tile // 2})")
    stride = tile - overlap
    xs, ys = _starts(width, tile, stride), _starts(height, tile, stride)
    out = []
    for j, y in enumerate(ys):
        for i, x in enumerate(xs):
            out.append(
                Tile(x, y, min(tile, width), min(tile, height),
                     left=i > 0, top=j > 0, right=i < len(xs) - 1, bottom=j < len(ys) - 1)
            )
    return out


def core_bounds(t: Tile, overlap: int) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of the tile's core in tile pixels (half-open)."""
    h = overlap // 2
    return (h if t.left else 0, h if t.top else 0,
            t.width - (overlap - h) if t.right else t.width, t.height - (overlap - h) if t.bottom else t.height)


def merge_tile_mask(mask: np.ndarray, t: Tile, overlap: int) -> np.ndarray:
    """The (h, w) bool part of one tile's (h, w) mask that the scene mask keeps (module doc rules 1-2)."""
    mask = mask.astype(bool)
    if not mask.any():
        return mask
    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    cut = set()
    for side, edge in ((t.left, labels[:, 0]), (t.right, labels[:, -1]), (t.top, labels[0, :]), (t.bottom, labels[-1, :])):
        if side:
            cut.update(int(v) for v in np.unique(edge) if v)
    if not cut:
        return mask
    is_cut = np.isin(labels, sorted(cut))
    x0, y0, x1, y1 = core_bounds(t, overlap)
    core = np.zeros_like(mask)
    core[y0:y1, x0:x1] = True
    return mask & (~is_cut | core)


def tiles_for_boxes(tiles: list[Tile], boxes: list[tuple[float, float, float, float]], margin: int) -> list[Tile]:
    """Tiles overlapping any scene-pixel box grown by ``margin`` pixels (the refine pass's selection)."""
    grown = [(x1 - margin, y1 - margin, x2 + margin, y2 + margin) for x1, y1, x2, y2 in boxes]
    return [t for t in tiles if any(t.intersects(b) for b in grown)]
