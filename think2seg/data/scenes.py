"""Procedural top-down aerial scenes for SynthEarth (no files, no I/O: arrays in, arrays out).

>>> import numpy as np
>>> scene = render_scene(np.random.default_rng(0), 128, target="storage_tank")
>>> scene.image.shape, scene.image.dtype
((128, 128, 3), dtype('uint8'))
>>> m = scene.mask("storage_tank")            # (H, W) bool, every tank of the image
>>> len(scene.boxes("storage_tank")) >= 1     # one (x1, y1, x2, y2) box per tank, inclusive corners
True

A scene is textured terrain plus instances of several categories (:data:`CATEGORIES`), each drawn from a
patch generator with a colour/texture/shape signature of its own, a per-image scale factor, a shared
sun direction for shadows of raised objects, and a little sensor noise. Placement keeps every instance
at least ``gap`` pixels from every other one (the one exception: bridge decks lie on their river), so
the connected components of a category's mask are its instances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from think2seg.data.shapes import F32, MAKERS, bridge_deck, jitter_color, noise, river_band, road_band


@dataclass(frozen=True)
class Category:
    key: str
    singular: str
    plural: str
    raised: bool  # casts a shadow
    target_count: tuple[int, int]  # inclusive range of instances when it is the target
    distractor_count: tuple[int, int]


CATEGORIES: dict[str, Category] = {
    c.key: c
    for c in [
        Category("water_body", "water body", "water bodies", False, (1, 2), (1, 1)),
        Category("runway", "runway", "runways", False, (1, 2), (1, 1)),
        Category("storage_tank", "storage tank", "storage tanks", True, (2, 6), (1, 4)),
        Category("greenhouse", "greenhouse", "greenhouses", True, (2, 4), (1, 3)),
        Category("solar_farm", "solar farm", "solar farms", False, (1, 2), (1, 1)),
        Category("building", "building", "buildings", True, (2, 4), (1, 4)),
        Category("road", "road", "roads", False, (1, 2), (1, 1)),
        Category("bridge", "bridge", "bridges", True, (1, 2), (1, 1)),
        Category("sports_track", "sports track", "sports tracks", False, (1, 1), (1, 1)),
        Category("parking_lot", "parking lot", "parking lots", False, (1, 2), (1, 2)),
        Category("farmland", "farmland field", "farmland fields", False, (1, 3), (1, 2)),
        Category("forest", "forest", "forests", True, (1, 2), (1, 1)),
        Category("tennis_court", "tennis court", "tennis courts", False, (1, 4), (1, 3)),
        Category("swimming_pool", "swimming pool", "swimming pools", False, (2, 5), (1, 3)),
        Category("airplane", "airplane", "airplanes", True, (2, 4), (1, 3)),
    ]
}
CATEGORY_KEYS = list(CATEGORIES)

TERRAINS = [  # (colour A, colour B) mixed by low-frequency noise
    ((92, 118, 68), (128, 136, 86)),  # grassland
    ((168, 150, 116), (196, 178, 138)),  # arid
    ((138, 134, 124), (164, 158, 146)),  # urban ground
    ((108, 94, 74), (136, 122, 96)),  # bare soil
]


@dataclass
class InstanceInfo:
    category: str
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 inclusive
    area: int


@dataclass
class Scene:
    image: np.ndarray  # (S, S, 3) uint8 RGB
    labels: np.ndarray  # (S, S) int16: 0 background, k = instances[k - 1]
    instances: list[InstanceInfo] = field(default_factory=list)

    @property
    def categories(self) -> list[str]:
        return sorted({i.category for i in self.instances})

    def ids(self, category: str) -> list[int]:
        return [k + 1 for k, inst in enumerate(self.instances) if inst.category == category]

    def mask(self, category: str) -> np.ndarray:
        """(S, S) bool: every instance of ``category`` (semantic-level mask)."""
        ids = self.ids(category)
        return np.isin(self.labels, ids) if ids else np.zeros(self.labels.shape, bool)

    def instance_mask(self, index: int) -> np.ndarray:
        """(S, S) bool mask of ``instances[index]``."""
        return self.labels == index + 1

    def boxes(self, category: str) -> list[tuple[int, int, int, int]]:
        return [i.box for i in self.instances if i.category == category]


CLUSTERED = {"storage_tank", "greenhouse", "building", "tennis_court", "swimming_pool", "farmland", "airplane"}
ORDER = ["road", "runway", "water_body", "forest", "farmland", "sports_track", "solar_farm", "parking_lot",
         "building", "greenhouse", "storage_tank", "airplane", "tennis_court", "swimming_pool"]  # big first


# ------------------------------------------------------------------------------------------- placement
@dataclass
class _Placed:
    category: str
    y: int
    x: int
    rgb: np.ndarray
    mask: np.ndarray
    height: float


class _Canvas:
    def __init__(self, size: int, gap: int):
        self.s, self.gap = size, gap
        self.occ = np.zeros((size, size), bool)
        self.placed: list[_Placed] = []
        self._k = np.ones((2 * gap + 1, 2 * gap + 1), np.uint8)

    def fits(self, mask: np.ndarray, y: int, x: int, ignore: np.ndarray | None = None) -> bool:
        h, w = mask.shape
        if y < 0 or x < 0 or y + h > self.s or x + w > self.s:
            return False
        g = self.gap
        dil = cv2.dilate(np.pad(mask, g).astype(np.uint8), self._k) > 0
        y0, x0 = y - g, x - g
        ys, xs = max(0, y0), max(0, x0)
        ye, xe = min(self.s, y0 + h + 2 * g), min(self.s, x0 + w + 2 * g)
        occ = self.occ[ys:ye, xs:xe]
        if ignore is not None:
            occ = occ & ~ignore[ys:ye, xs:xe]
        return not (occ & dil[ys - y0 : ye - y0, xs - x0 : xe - x0]).any()

    def add(self, p: _Placed) -> None:
        h, w = p.mask.shape
        self.occ[p.y : p.y + h, p.x : p.x + w] |= p.mask
        self.placed.append(p)


def _place_objects(rng, cv: _Canvas, cat: str, count: int, u: float, ang: float) -> int:
    s, made, anchor = cv.s, 0, None
    for _ in range(count):
        rgb, m, height = MAKERS[cat](rng, u, ang)
        for attempt in range(40):
            h, w = m.shape
            if h >= s or w >= s:
                break
            if anchor is not None and cat in CLUSTERED and attempt < 25:
                cy, cx = anchor
                y = int(cy + rng.normal(0, 0.12 * s) - h / 2)
                x = int(cx + rng.normal(0, 0.12 * s) - w / 2)
            else:
                y, x = int(rng.integers(0, s - h + 1)), int(rng.integers(0, s - w + 1))
            if cv.fits(m, y, x):
                cv.add(_Placed(cat, y, x, rgb, m, height))
                anchor = anchor or (y + h / 2, x + w / 2)
                made += 1
                break
    return made


def _place_roads(rng, cv: _Canvas, count: int, u: float) -> int:
    made = 0
    for _ in range(count):
        for _attempt in range(12):
            rgb, m, _ = road_band(rng, u, 0.0, cv.s)
            if cv.fits(m, 0, 0):
                cv.add(_Placed("road", 0, 0, rgb, m, 0.0))
                made += 1
                break
    return made


def _place_bridges(rng, cv: _Canvas, count: int, u: float) -> int:
    """A river (a water body) first, then ``count`` decks across it; returns the decks placed."""
    s = cv.s
    for _attempt in range(10):
        rgb, river, width, (theta, px, py) = river_band(rng, u, s)
        if cv.fits(river, 0, 0):
            break
    else:
        return 0
    cv.add(_Placed("water_body", 0, 0, rgb, river, 0.0))
    made = 0
    deck_deg = -math.degrees(theta) + 90  # perpendicular to the river (cv2 angles are counter-clockwise)
    for _ in range(count):
        drgb, dm, height = bridge_deck(rng, u, width, deck_deg)
        h, w = dm.shape
        for _attempt in range(30):
            t = rng.uniform(-0.45, 0.45) * s
            cx, cy = px + t * math.cos(theta), py + t * math.sin(theta)
            y, x = int(round(cy - h / 2)), int(round(cx - w / 2))
            if cv.fits(dm, y, x, ignore=river):
                cv.add(_Placed("bridge", y, x, drgb, dm, height))
                made += 1
                break
    return made


def _place(rng, cv: _Canvas, cat: str, count: int, u: float, ang: float) -> int:
    if cat == "road":
        return _place_roads(rng, cv, count, u)
    if cat == "bridge":
        return _place_bridges(rng, cv, count, u)
    return _place_objects(rng, cv, cat, count, u, ang)


# --------------------------------------------------------------------------------------------- scenes
def _terrain(rng, s: int) -> np.ndarray:
    a, b = TERRAINS[rng.integers(len(TERRAINS))]
    t = 0.65 * noise(rng, s, s, 4) + 0.35 * noise(rng, s, s, 16)
    t = np.clip(t, 0, 1)[..., None]
    img = jitter_color(rng, a, 10) * (1 - t) + jitter_color(rng, b, 10) * t
    img = img + 4 * rng.standard_normal((s, s, 1), dtype=F32)
    k = int(s * s * 0.004)  # shrubs / rocks
    ys, xs = rng.integers(0, s, (2, k))
    img[ys, xs] *= 0.72
    return img


def _compose(rng, s: int, cv: _Canvas) -> Scene:
    img = _terrain(rng, s)
    labels = np.zeros((s, s), np.int16)
    flat = [p for p in cv.placed if not CATEGORIES[p.category].raised]
    raised = [p for p in cv.placed if CATEGORIES[p.category].raised]
    index = {id(p): k + 1 for k, p in enumerate(cv.placed)}
    for p in flat:
        h, w = p.mask.shape
        img[p.y : p.y + h, p.x : p.x + w][p.mask] = p.rgb[p.mask]
        labels[p.y : p.y + h, p.x : p.x + w][p.mask] = index[id(p)]
    sun = rng.uniform(0, 2 * np.pi)
    for p in raised:  # shadows first, so no object is darkened by its own shadow
        h, w = p.mask.shape
        dy, dx = int(round(p.height * math.sin(sun))), int(round(p.height * math.cos(sun)))
        y0, x0 = p.y + dy, p.x + dx
        ys, xs, ye, xe = max(0, y0), max(0, x0), min(s, y0 + h), min(s, x0 + w)
        if ye > ys and xe > xs:
            sm = p.mask[ys - y0 : ye - y0, xs - x0 : xe - x0]
            img[ys:ye, xs:xe][sm] *= 0.58
    for p in raised:
        h, w = p.mask.shape
        img[p.y : p.y + h, p.x : p.x + w][p.mask] = p.rgb[p.mask]
        labels[p.y : p.y + h, p.x : p.x + w][p.mask] = index[id(p)]
    img = img * F32(rng.uniform(0.92, 1.08)) + 2 * rng.standard_normal(img.shape, dtype=F32)
    img = cv2.GaussianBlur(np.clip(img, 0, 255), (3, 3), 0.45)
    instances = []
    for p in cv.placed:  # boxes and areas of what is visible at the end (decks cover part of the river)
        h, w = p.mask.shape
        win = labels[p.y : p.y + h, p.x : p.x + w] == index[id(p)]
        ys, xs = np.nonzero(win)
        box = (p.x + int(xs.min()), p.y + int(ys.min()), p.x + int(xs.max()), p.y + int(ys.max()))
        instances.append(InstanceInfo(p.category, box, int(len(ys))))
    return Scene(np.round(img).astype(np.uint8), labels, instances)


def _components(mask: np.ndarray) -> int:
    return int(cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0]) - 1


def render_scene(
    rng: np.random.Generator,
    size: int,
    target: str | None = None,
    absent: str | None = None,
    n_distractors: tuple[int, int] = (2, 4),
) -> Scene:
    """A scene of ``size`` x ``size`` px with instances of ``target`` (the number drawn from the
    category's ``target_count``) and 2-4 other categories; ``absent`` never appears (empty-target
    questions). The target's 8-connected components are exactly its instances."""
    if target is not None and target not in CATEGORIES:
        raise KeyError(f"unknown SynthEarth category {target!r}; known: {', '.join(CATEGORIES)}")
    gap = max(3, round(size / 85))
    for _attempt in range(8):
        cv = _Canvas(size, gap)
        u = size * rng.uniform(0.8, 1.2)  # ground sampling distance varies per image
        banned = {target, absent}
        if target == "water_body" or absent == "water_body":
            banned.add("bridge")  # a bridge brings a river, which would merge with / reveal water
        pool = [c for c in CATEGORY_KEYS if c not in banned]
        k = int(rng.integers(n_distractors[0], n_distractors[1] + 1))
        distractors = list(rng.choice(pool, size=min(k, len(pool)), replace=False))
        angles = {c: float(rng.uniform(0, 180)) for c in CATEGORY_KEYS}
        n_target = 0
        if target == "bridge" or "bridge" in distractors:  # the river goes in first
            cat = "bridge"
            lo, hi = CATEGORIES[cat].target_count if target == cat else CATEGORIES[cat].distractor_count
            n = _place(rng, cv, cat, int(rng.integers(lo, hi + 1)), u, angles[cat])
            if target == cat:
                n_target = n
            elif cat in distractors:
                distractors.remove(cat)
        if target is not None and target != "bridge":
            lo, hi = CATEGORIES[target].target_count
            n_target = _place(rng, cv, target, int(rng.integers(lo, hi + 1)), u, angles[target])
        if target is not None and n_target == 0:
            continue
        for cat in sorted(distractors, key=ORDER.index):
            lo, hi = CATEGORIES[cat].distractor_count
            _place(rng, cv, cat, int(rng.integers(lo, hi + 1)), u, angles[cat])
        scene = _compose(rng, size, cv)
        if target is None or _components(scene.mask(target)) == len(scene.ids(target)):
            return scene
    raise RuntimeError(f"could not render a valid scene for target {target!r} at {size}px")
