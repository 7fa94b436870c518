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

F32 = np.float32


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


# ---------------------------------------------------------------------------------------------- helpers
def _noise(rng: np.random.Generator, h: int, w: int, cells: float) -> np.ndarray:
    """(h, w) float32 smooth value noise in ~[0, 1]; ``cells`` grid cells along the longer side."""
    gh = max(2, round(cells * h / max(h, w))) + 1
    gw = max(2, round(cells * w / max(h, w))) + 1
    g = rng.random((gh, gw), dtype=F32)
    return cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)


def _col(rng: np.random.Generator, rgb: tuple[int, int, int], amount: float = 10.0) -> np.ndarray:
    return np.clip(np.asarray(rgb, F32) + rng.uniform(-amount, amount, 3).astype(F32), 0, 255)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w]
    return yy.astype(F32), xx.astype(F32)


def _fill(h: int, w: int, color: np.ndarray) -> np.ndarray:
    return np.broadcast_to(color, (h, w, 3)).astype(F32)


def _shade(rgb: np.ndarray, t: np.ndarray, amount: float) -> np.ndarray:
    """Multiply brightness by ``1 + amount * (t - 0.5)``."""
    return rgb * (1.0 + amount * (t[..., None] - 0.5))


def _rotate(rgb: np.ndarray, mask: np.ndarray, deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate a patch (expanding the canvas) and crop to the rotated mask."""
    if abs(deg) < 1e-3:
        return rgb, mask
    h, w = mask.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * s + w * c) + 3, int(h * c + w * s) + 3
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    r = cv2.warpAffine(rgb, m, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    k = cv2.warpAffine(mask.astype(np.uint8), m, (nw, nh), flags=cv2.INTER_NEAREST) > 0
    ys, xs = np.nonzero(k)
    if len(ys) == 0:
        return rgb, mask
    sl = np.s_[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return r[sl], k[sl]


def _blob(rng: np.random.Generator, r: float, squash: float) -> np.ndarray:
    """Star-shaped irregular blob of mean radius ``r`` (always one connected component)."""
    n = 28
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    wob = np.cumsum(rng.normal(0, 0.08, n))
    wob = wob - np.linspace(0, wob[-1], n)  # close the loop smoothly
    rad = r * np.clip(1 + wob + 0.12 * np.sin(ang * rng.integers(2, 4) + rng.uniform(0, 6)), 0.55, 1.45)
    xs, ys = rad * np.cos(ang), rad * np.sin(ang) * squash
    size = int(2 * r * 1.5) + 4
    pts = np.stack([xs + size / 2, ys + size / 2], 1).round().astype(np.int32)
    m = np.zeros((size, size), np.uint8)
    cv2.fillPoly(m, [pts], 1)
    ys_, xs_ = np.nonzero(m)
    return m[ys_.min() : ys_.max() + 1, xs_.min() : xs_.max() + 1] > 0


# ------------------------------------------------------------------------------------ patch generators
# Each returns (rgb float32 (h, w, 3), mask bool (h, w), height px for the shadow). ``u`` = S * scale.


def _water(rng, u, ang):
    m = _blob(rng, rng.uniform(0.12, 0.2) * u, rng.uniform(0.55, 1.0))
    h, w = m.shape
    rgb = _shade(_fill(h, w, _col(rng, (28, 62, 98), 8)), _noise(rng, h, w, 3), 0.35)
    edge = m & ~cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=2).astype(bool)
    rgb[edge] = rgb[edge] * 0.5 + np.asarray((70, 110, 112), F32) * 0.5
    rgb, m = _rotate(rgb, m, rng.uniform(0, 180))
    return rgb, m, 0.0


def _runway(rng, u, ang):
    length = rng.uniform(0.5, 0.72) * u
    wd = max(7.0, rng.uniform(0.05, 0.07) * u)
    h, w = int(wd), int(length)
    yy, xx = _grid(h, w)
    rgb = _shade(_fill(h, w, _col(rng, (152, 152, 150), 6)), _noise(rng, h, w, 8), 0.15)
    white = np.asarray((238, 238, 235), F32)
    period = max(6.0, w / 14)
    centre = (np.abs(yy - (h - 1) / 2) < 0.75) & ((xx % period) < period / 2) & (xx > 0.12 * w) & (xx < 0.88 * w)
    keys = ((xx < 0.08 * w) | (xx > 0.92 * w)) & ((xx > 0.02 * w) & (xx < 0.98 * w))
    keys &= ((yy % 3) < 1.5) & (yy > 0.15 * h) & (yy < 0.85 * h)
    rgb[centre | keys] = white
    m = np.ones((h, w), bool)
    rgb, m = _rotate(rgb, m, ang + rng.uniform(-3, 3))
    return rgb, m, 0.0


def _tank(rng, u, ang):
    r = max(4.5, rng.uniform(0.035, 0.065) * u)
    n = int(2 * r) + 2
    yy, xx = _grid(n, n)
    d = np.hypot(yy - (n - 1) / 2, xx - (n - 1) / 2)
    m = d <= r
    rgb = _fill(n, n, _col(rng, (222, 222, 216), 6))
    rgb = _shade(rgb, (xx + yy) / (2 * n), -0.25)
    ring = (d > 0.72 * r) & (d < 0.72 * r + 1.2)
    rgb[ring] = _col(rng, (150, 150, 146), 6)
    rgb[d < max(1.0, 0.12 * r)] = (120, 120, 118)
    return rgb, m, 0.6 * r


def _greenhouse(rng, u, ang):
    length, wd = rng.uniform(0.13, 0.22) * u, rng.uniform(0.05, 0.075) * u
    h, w = max(5, int(wd)), max(10, int(length))
    yy, xx = _grid(h, w)
    rgb = _fill(h, w, _col(rng, (208, 218, 224), 6))
    rgb = rgb * (0.9 + 0.16 * np.sin(np.pi * yy / max(h - 1, 1)))[..., None]  # curved roof highlight
    rgb[(xx % 3) < 1] *= 0.85
    rgb[[0, -1], :] *= 0.8
    rgb[:, [0, -1]] *= 0.8
    rgb, m = _rotate(rgb, np.ones((h, w), bool), ang + rng.uniform(-2, 2))
    return rgb, m, 1.5


def _solar(rng, u, ang):
    h, w = int(rng.uniform(0.12, 0.22) * u), int(rng.uniform(0.16, 0.3) * u)
    yy, xx = _grid(h, w)
    rgb = _fill(h, w, _col(rng, (30, 42, 84), 6))
    rgb[(xx % 6) < 1] += 18
    rgb[(yy % 4) >= 3] = _col(rng, (176, 164, 132), 6)  # ground between panel rows
    rgb, m = _rotate(rgb, np.ones((h, w), bool), ang)
    return rgb, m, 0.0


def _building(rng, u, ang):
    h, w = int(rng.uniform(0.06, 0.12) * u), int(rng.uniform(0.07, 0.14) * u)
    h, w = max(h, 5), max(w, 5)
    roofs = [(172, 82, 62), (118, 118, 124), (192, 182, 162), (88, 98, 122), (152, 140, 128)]
    rgb = _fill(h, w, _col(rng, roofs[rng.integers(len(roofs))], 8))
    m = np.ones((h, w), bool)
    if rng.random() < 0.5:  # gable roof: one half darker
        rgb[: h // 2] *= 1.1
        rgb[h // 2 :] *= 0.82
    else:  # flat roof with units on top
        for _ in range(rng.integers(1, 4)):
            y0, x0 = rng.integers(1, max(2, h - 3)), rng.integers(1, max(2, w - 3))
            rgb[y0 : y0 + 2, x0 : x0 + 2] = 225
    rgb[[0, -1], :] *= 0.85
    rgb[:, [0, -1]] *= 0.85
    if rng.random() < 0.35 and h > 8 and w > 8:  # L-shape
        m[: h // 2, : w // 2] = False
    rgb, m = _rotate(rgb, m, ang + rng.uniform(-4, 4))
    return rgb, m, rng.uniform(0.25, 0.45) * min(h, w)


def _court(rng, u, ang):
    wd = max(6, int(rng.uniform(0.055, 0.075) * u))
    h, w = wd, int(wd * 1.9)
    surfaces = [(62, 130, 92), (52, 96, 152), (178, 96, 62)]
    rgb = _fill(h, w, _col(rng, surfaces[rng.integers(3)], 6))
    white = (236, 236, 236)
    rgb[[0, -1], :] = white
    rgb[:, [0, -1]] = white
    rgb[:, w // 2] = white
    rgb[h // 2, w // 4 : 3 * w // 4] = white
    rgb, m = _rotate(rgb, np.ones((h, w), bool), ang)
    return rgb, m, 0.0


def _pool(rng, u, ang):
    h, w = max(5, int(rng.uniform(0.05, 0.08) * u)), max(7, int(rng.uniform(0.07, 0.12) * u))
    yy, xx = _grid(h, w)
    m = np.ones((h, w), bool)
    if rng.random() < 0.4:  # rounded pool
        m = ((yy - (h - 1) / 2) / (h / 2)) ** 2 + ((xx - (w - 1) / 2) / (w / 2)) ** 2 <= 1.0
    rgb = _fill(h, w, _col(rng, (68, 186, 218), 8))
    rgb = _shade(rgb, xx / w, -0.3)
    edge = m & ~cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    rgb[edge] = (236, 236, 230)
    rgb, m = _rotate(rgb, m, ang + rng.uniform(-10, 10))
    return rgb, m, 0.0


def _airplane(rng, u, ang):
    length = max(14.0, rng.uniform(0.12, 0.18) * u)
    w, h = int(length) + 2, int(length * 0.95) + 2
    c = h / 2
    L = length
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, (int(w / 2), int(c)), (int(L / 2), max(2, int(0.065 * L))), 0, 0, 360, 1, -1)
    wing = [(0.60, 0), (0.40, -0.46), (0.31, -0.46), (0.43, 0), (0.31, 0.46), (0.40, 0.46)]
    tail = [(0.15, 0), (0.06, -0.18), (0.01, -0.18), (0.05, 0), (0.01, 0.18), (0.06, 0.18)]
    for poly in (wing, tail):
        pts = np.array([(1 + x * L, c + y * L) for x, y in poly]).round().astype(np.int32)
        cv2.fillPoly(m, [pts], 1)
    m = m > 0
    rgb = _fill(h, w, _col(rng, (234, 234, 236), 5))
    rgb[:, int(0.85 * w) :] *= 0.85  # nose
    rgb, m = _rotate(rgb, m, rng.uniform(0, 360))
    return rgb, m, 0.18 * L


def _track(rng, u, ang):
    length = rng.uniform(0.28, 0.4) * u
    r = 0.27 * length
    h, w = int(2 * r) + 2, int(length) + 2
    yy, xx = _grid(h, w)
    cx = np.clip(xx, r, w - 1 - r)
    d = np.hypot(yy - (h - 1) / 2, xx - cx)
    m = d <= r
    rgb = _fill(h, w, _col(rng, (168, 78, 58), 8))
    lanes = (d > 0.66 * r) & ((np.round(d) % 3) == 0)
    rgb[lanes] = rgb[lanes] * 0.6 + 230 * 0.4
    field_ = d <= 0.64 * r
    rgb[field_] = _col(rng, (72, 142, 72), 8)
    rgb[field_] = _shade(rgb, (xx // 4 % 2).astype(F32), 0.12)[field_]  # mowing stripes
    rgb, m = _rotate(rgb, m, rng.uniform(0, 180))
    return rgb, m, 0.0


def _parking(rng, u, ang):
    h, w = int(rng.uniform(0.1, 0.18) * u), int(rng.uniform(0.14, 0.26) * u)
    h, w = max(h, 12), max(w, 12)
    yy, xx = _grid(h, w)
    rgb = _shade(_fill(h, w, _col(rng, (112, 112, 114), 6)), _noise(rng, h, w, 4), 0.1)
    row_h = max(5, h // 3)
    in_row = ((yy % (2 * row_h)) < row_h) & (yy > 0) & (yy < h - 1)
    rgb[in_row & ((xx % 4) < 0.8)] = (226, 226, 222)
    cars = [(200, 40, 40), (230, 230, 230), (30, 30, 34), (40, 70, 160), (190, 190, 196), (160, 150, 60)]
    for y0 in range(1, h - row_h + 1, 2 * row_h):
        for x0 in range(1, w - 4, 4):
            if rng.random() < 0.55:
                rgb[y0 + 1 : y0 + row_h - 1, x0 + 1 : x0 + 3] = _col(rng, cars[rng.integers(len(cars))], 10)
    rgb, m = _rotate(rgb, np.ones((h, w), bool), ang)
    return rgb, m, 0.0


def _farmland(rng, u, ang):
    h, w = int(rng.uniform(0.16, 0.3) * u), int(rng.uniform(0.2, 0.34) * u)
    yy, xx = _grid(h, w)
    pal = [((86, 138, 58), (118, 154, 70)), ((182, 162, 92), (158, 140, 80)), ((122, 96, 64), (98, 120, 60))]
    a, b = pal[rng.integers(len(pal))]
    period = rng.integers(3, 6)
    t = ((xx % period) < period / 2).astype(F32)
    rgb = _col(rng, a, 8) * (1 - t[..., None]) + _col(rng, b, 8) * t[..., None]
    rgb = _shade(rgb, _noise(rng, h, w, 4), 0.15)
    rgb, m = _rotate(rgb, np.ones((h, w), bool), ang + rng.uniform(-5, 5))
    return rgb, m, 0.0


def _forest(rng, u, ang):
    m = _blob(rng, rng.uniform(0.11, 0.18) * u, rng.uniform(0.6, 1.0))
    h, w = m.shape
    t = _noise(rng, h, w, max(4, w / 3))  # crowns
    dark, light = _col(rng, (28, 62, 32), 5), _col(rng, (62, 104, 50), 6)
    rgb = dark * (1 - t[..., None]) + light * t[..., None]
    return rgb, m, 2.5


def _band(rng, s: int, width: float, wave: float):
    """Full-image band (road / river): perpendicular distance to a (wavy) line, and the along coordinate."""
    yy, xx = _grid(s, s)
    theta = rng.uniform(0, np.pi)
    py, px = rng.uniform(0.3, 0.7, 2) * s
    along = (xx - px) * math.cos(theta) + (yy - py) * math.sin(theta)
    perp = -(xx - px) * math.sin(theta) + (yy - py) * math.cos(theta)
    if wave:
        perp = perp - wave * s * np.sin(along / (0.35 * s) + rng.uniform(0, 6))
    return perp, along, np.abs(perp) <= width / 2, (theta, px, py)


def _road(rng, u, ang, s):
    width = max(5.0, rng.uniform(0.03, 0.045) * u)
    perp, along, m, _ = _band(rng, s, width, 0.0)
    rgb = _shade(_fill(s, s, _col(rng, (70, 70, 74), 5)), _noise(rng, s, s, 12), 0.12)
    dash = (np.abs(perp) < 0.6) & ((along % 8) < 4)
    rgb[dash] = (206, 184, 70)
    return rgb, m, 0.0


def _river(rng, u, s):
    width = rng.uniform(0.12, 0.18) * s
    perp, along, m, geo = _band(rng, s, width, 0.0)
    rgb = _shade(_fill(s, s, _col(rng, (34, 70, 100), 6)), _noise(rng, s, s, 4), 0.3)
    bank = m & (np.abs(perp) > width / 2 - 1.5)
    rgb[bank] = (84, 104, 90)
    return rgb, m, width, geo


def _deck(rng, u, river_width, theta_deg):
    length = river_width + 2 * rng.uniform(0.04, 0.07) * u
    wd = max(5.0, rng.uniform(0.035, 0.05) * u)
    h, w = int(wd), int(length)
    rgb = _fill(h, w, _col(rng, (178, 172, 162), 5))
    rgb[[0, -1], :] *= 0.7  # railings
    rgb[h // 2, 2:-2] = (220, 220, 214)
    rgb, m = _rotate(rgb, np.ones((h, w), bool), theta_deg)
    return rgb, m, 3.0


MAKERS = {
    "water_body": _water,
    "runway": _runway,
    "storage_tank": _tank,
    "greenhouse": _greenhouse,
    "solar_farm": _solar,
    "building": _building,
    "sports_track": _track,
    "parking_lot": _parking,
    "farmland": _farmland,
    "forest": _forest,
    "tennis_court": _court,
    "swimming_pool": _pool,
    "airplane": _airplane,
}
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
            rgb, m, _ = _road(rng, u, 0.0, cv.s)
            if cv.fits(m, 0, 0):
                cv.add(_Placed("road", 0, 0, rgb, m, 0.0))
                made += 1
                break
    return made


def _place_bridges(rng, cv: _Canvas, count: int, u: float) -> int:
    """A river (a water body) first, then ``count`` decks across it; returns the decks placed."""
    s = cv.s
    for _attempt in range(10):
        rgb, river, width, (theta, px, py) = _river(rng, u, s)
        if cv.fits(river, 0, 0):
            break
    else:
        return 0
    cv.add(_Placed("water_body", 0, 0, rgb, river, 0.0))
    made = 0
    deck_deg = -math.degrees(theta) + 90  # perpendicular to the river (cv2 angles are counter-clockwise)
    for _ in range(count):
        drgb, dm, height = _deck(rng, u, width, deck_deg)
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
    t = 0.65 * _noise(rng, s, s, 4) + 0.35 * _noise(rng, s, s, 16)
    t = np.clip(t, 0, 1)[..., None]
    img = _col(rng, a, 10) * (1 - t) + _col(rng, b, 10) * t
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
