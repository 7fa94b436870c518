"""The plan of ``think2seg dataset build``, decided before any pixel is read: tiles, the label categories
each one intersects, splits, the leakage buffer and the empty-target questions.

>>> plan = make_plan(BuildConfig(images=["A.tif"], labels="l.gpkg", class_field="class",
...                              questions="q.yaml", out="data/mine"))                      # doctest: +SKIP
>>> [(t.key, t.split, t.cats, t.empties) for t in plan.active()][:1]                         # doctest: +SKIP
[('A_0_0', 'train', ('lake',), [])]

Steps: read and check every input (images share one CRS, labels have a CRS and the class field, every
label category has questions, at least one label intersects an image); tile each image; find the
categories whose geometries intersect each tile (spatial index, no rasterizing); assign groups (blocks
or images) to splits, balanced on labelled tiles (:mod:`.splits`); leave out labelled tiles that touch a
tile of another split (``split_buffer``); draw the empty targets per split, ``empty_ratio`` of the
split's entries, from (tile, category absent from the tile) pairs, including unlabelled tiles that touch
no tile of another split; last, drop any unlabelled tile that would touch one of another split.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from think2seg.core.errors import CLIError
from think2seg.core.io import data_error
from think2seg.data.formats import SPLITS
from think2seg.data.own.labels import LabelIndex, Labels, read_labels
from think2seg.data.own.questions import CategoryQuestions, check_categories, load_questions
from think2seg.data.own.splits import (
    SPLIT_BY,
    assign_groups,
    block_bounds,
    block_of,
    leaking,
    parse_ratios,
    touching,
)
from think2seg.data.own.tiles import ImageInfo, TilePlan, image_tiles, parse_length, read_image_infos

SPLIT_RANK = {"train": 0, "val": 1, "test": 2}  # who keeps a tile when two splits touch: test, then val


@dataclass
class BuildConfig:
    """Every option of ``think2seg dataset build`` (lengths as given: ``"512"`` px or ``"300m"``)."""

    images: list[str]
    labels: str
    class_field: str
    questions: str
    out: str
    tile: str = "512"
    overlap: str = "0"
    bands: str | None = None
    split_by: str = "blocks"
    block: str | None = None  # default: 4 tiles
    ratios: str = "0.8,0.1,0.1"
    empty_ratio: float = 0.025
    explicit: int = 1
    implicit: int = 2
    max_nodata: float = 0.5
    min_area: int = 16
    seed: int = 0
    progress: bool = field(default=True, compare=False)

    def check(self) -> None:
        """CLIError naming the option for a value out of range (inputs are checked by :func:`make_plan`)."""
        if not self.images:
            raise CLIError("--images: give at least one GeoTIFF")
        if self.split_by not in SPLIT_BY:
            raise CLIError(f"--split-by {self.split_by!r}: one of {', '.join(SPLIT_BY)}")
        if not 0 <= self.empty_ratio < 1:
            raise CLIError(f"--empty-ratio {self.empty_ratio}: must be in [0, 1)")
        if not 0 <= self.max_nodata <= 1:
            raise CLIError(f"--max-nodata {self.max_nodata}: must be in [0, 1]")
        if self.explicit < 0 or self.implicit < 0 or self.explicit + self.implicit < 1:
            raise CLIError("--explicit/--implicit: non-negative, at least one question in all")
        if self.min_area < 1:
            raise CLIError(f"--min-area {self.min_area}: at least 1 pixel")
        parse_ratios(self.ratios)
        for opt, v in (("--tile", self.tile), ("--overlap", self.overlap), ("--block", self.block)):
            if v is not None:
                parse_length(v, opt)

    def options(self) -> dict[str, Any]:
        """The options that define the dataset (not where it goes, nor the progress bar)."""
        d = asdict(self)
        for k in ("out", "progress"):
            d.pop(k)
        return d


@dataclass
class Plan:
    """Everything decided before reading pixels (module doc)."""

    config: BuildConfig
    infos: list[ImageInfo]
    labels: Labels
    index: LabelIndex
    questions: dict[str, CategoryQuestions]
    tiles: list[TilePlan]
    tile_px: list[int]
    overlap_px: list[int]
    groups: dict[str, tuple[float, float, float, float]]
    split_of: dict[str, str]
    block_size: float | None  # CRS units, None for --split-by image
    outside: int  # labels intersecting no image
    empty_targets: dict[str, dict[str, int]]  # per split: empty targets wanted, (tile, category) candidates

    def active(self) -> list[TilePlan]:
        """Tiles to read: in a split, not dropped, with a labelled category or an empty target."""
        return [t for t in self.tiles if t.dropped is None and (t.cats or t.empties)]

    def unused(self) -> int:
        """Tiles neither labelled nor asked an empty-target question (not written, not dropped)."""
        return sum(1 for t in self.tiles if t.dropped is None and not t.cats and not t.empties)


def _groups(cfg: BuildConfig, infos: list[ImageInfo], tiles: list[TilePlan], tile_px: int
            ) -> tuple[dict[str, tuple[float, float, float, float]], float | None]:
    footprints = [_footprint(i) for i in infos]
    if cfg.split_by == "image":
        for t in tiles:
            t.block = infos[t.image].name
        return {i.name: f for i, f in zip(infos, footprints, strict=True)}, None
    value, unit = parse_length(cfg.block, "--block") if cfg.block else (4.0 * tile_px, "px")
    first = infos[0]
    size = value * first.res if unit == "px" else first.to_pixels((value, unit), "--block") * first.res
    origin = (min(f[0] for f in footprints), max(f[3] for f in footprints))
    keys = set()
    for t in tiles:
        t.block = block_of(t.bounds, origin, size)
        keys.add(t.block)
    return {k: block_bounds(k, origin, size) for k in keys}, size


def _footprint(info: ImageInfo) -> tuple[float, float, float, float]:
    x0, y0 = info.transform @ (0, 0)
    x1, y1 = info.transform @ (info.width, info.height)
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def _draw_empties(cfg: BuildConfig, plan_tiles: list[TilePlan], categories: list[str],
                  ratios: dict[str, float], tolerance: float) -> dict[str, dict[str, int]]:
    """Draw the empty targets (module doc); ``{split: {"wanted": n, "candidates": n}}``."""
    rng = np.random.default_rng([cfg.seed, 0xE3B7])
    kept = [t for t in plan_tiles if t.cats and t.dropped is None]
    report = {}
    for split in SPLITS:
        if ratios[split] == 0:
            continue
        positives = sum(len(t.cats) for t in kept if t.split == split)
        n_empty = int(round(cfg.empty_ratio / (1 - cfg.empty_ratio) * positives))
        report[split] = {"wanted": n_empty, "candidates": 0}
        if n_empty == 0:
            continue
        other = [t.bounds for t in kept if t.split != split]
        bare = [t for t in plan_tiles if t.split == split and not t.cats]
        near = touching([t.bounds for t in bare], other, tolerance)
        hosts = [t for t in kept if t.split == split] + [t for t, n in zip(bare, near, strict=True) if not n]
        pairs = [(k, c) for k, t in enumerate(hosts) for c in categories if c not in t.cats]
        report[split]["candidates"] = len(pairs)
        for i in sorted(rng.choice(len(pairs), size=min(n_empty, len(pairs)), replace=False).tolist()):
            k, c = pairs[i]
            hosts[k].empties.append(c)
    return report


def make_plan(cfg: BuildConfig) -> Plan:
    """Read and check the inputs and plan the dataset (module doc); UserError naming the file or option."""
    cfg.check()
    ratios = parse_ratios(cfg.ratios)
    labels = read_labels(cfg.labels, cfg.class_field)
    questions = load_questions(cfg.questions)
    check_categories(questions, labels.categories, cfg.questions)
    infos = read_image_infos(cfg.images, cfg.bands)
    index = labels.index_for(infos[0].crs)
    footprints = [_footprint(i) for i in infos]
    outside = index.outside(footprints)
    if outside == len(index.frame):
        lb = labels.frame.total_bounds
        raise data_error(labels.path, f"none of its {outside} labels intersects any image (labels span "
                         f"{', '.join(f'{v:.6g}' for v in lb)} in {labels.crs.to_string()}; the images are in "
                         f"{infos[0].crs.to_string()}); check the labels' CRS and the images", "no_overlap")
    tile_px = [i.to_pixels(parse_length(cfg.tile, "--tile"), "--tile") for i in infos]
    overlap = parse_length(cfg.overlap, "--overlap")
    overlap_px = [i.to_pixels(overlap, "--overlap") if overlap[0] > 0 else 0 for i in infos]
    tiles = [t for k, i in enumerate(infos) for t in image_tiles(i, k, tile_px[k], overlap_px[k])]
    for t in tiles:
        t.cats = index.categories_in(t.bounds)
    groups, block_size = _groups(cfg, infos, tiles, tile_px[0])
    weights = Counter({g: 0 for g in groups})
    weights.update(t.block for t in tiles if t.cats)
    split_of = assign_groups(dict(weights), ratios, cfg.seed)
    for t in tiles:
        t.split = split_of[t.block]
    tolerance = 0.5 * min(i.res for i in infos)
    labelled = [t for t in tiles if t.cats]
    for k in leaking([t.bounds for t in labelled], [t.split for t in labelled],
                     [SPLIT_RANK[t.split] for t in labelled], tolerance):
        labelled[k].dropped = "split_buffer"
    empty_report = _draw_empties(cfg, tiles, labels.categories, ratios, tolerance)
    active = [t for t in tiles if t.dropped is None and (t.cats or t.empties)]
    prio = [(bool(t.cats), SPLIT_RANK[t.split]) for t in active]
    for k in leaking([t.bounds for t in active], [t.split for t in active], prio, tolerance):
        active[k].dropped, active[k].empties = "split_buffer", []
    return Plan(cfg, infos, labels, index, questions, tiles, tile_px, overlap_px, groups, split_of, block_size,
                outside, empty_report)
