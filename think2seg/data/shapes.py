"""Patch generators of SynthEarth: one textured, shaded shape per category (arrays in, arrays out).

>>> import numpy as np
>>> from think2seg.data.shapes import MAKERS
>>> rgb, mask, height = MAKERS["storage_tank"](np.random.default_rng(0), 8.0, 30.0)
>>> bool(rgb.shape[:2] == mask.shape and mask.any() and height > 0)
True

:data:`MAKERS` maps a category key to ``maker(rng, u, angle_deg) -> (rgb (h, w, 3), mask (h, w) bool,
height)``: the patch, its footprint and the height that casts its shadow (0 for flat objects), ``u`` being
the image's scale unit in pixels. Roads, rivers and bridge decks depend on
the scene size and are drawn by :func:`road_band`, :func:`river_band` and :func:`bridge_deck`;
:func:`noise` and :func:`jitter_color` are the texture primitives the scene composer
(:mod:`think2seg.data.scenes`) shares with them.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

F32 = np.float32

__all__ = ["F32", "MAKERS", "bridge_deck", "jitter_color", "noise", "river_band", "road_band"]


def noise(rng: np.random.Generator, h: int, w: int, cells: float) -> np.ndarray:
    """(h, w) float32 smooth value noise in ~[0, 1]; ``cells`` grid cells along the longer side."""
    gh = max(2, round(cells * h / max(h, w))) + 1
    gw = max(2, round(cells * w / max(h, w))) + 1
    g = rng.random((gh, gw), dtype=F32)
    return cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)


def jitter_color(rng: np.random.Generator, rgb: tuple[int, int, int], amount: float = 10.0) -> np.ndarray:
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
    rgb = _shade(_fill(h, w, jitter_color(rng, (28, 62, 98), 8)), noise(rng, h, w, 3), 0.35)
    edge = m & ~cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=2).astype(bool)
    rgb[edge] = rgb[edge] * 0.5 + np.asarray((70, 110, 112), F32) * 0.5
    rgb, m = _rotate(rgb, m, rng.uniform(0, 180))
    return rgb, m, 0.0


def _runway(rng, u, ang):
    length = rng.uniform(0.5, 0.72) * u
    wd = max(7.0, rng.uniform(0.05, 0.07) * u)
    h, w = int(wd), int(length)
    yy, xx = _grid(h, w)
    rgb = _shade(_fill(h, w, jitter_color(rng, (152, 152, 150), 6)), noise(rng, h, w, 8), 0.15)
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
    rgb = _fill(n, n, jitter_color(rng, (222, 222, 216), 6))
    rgb = _shade(rgb, (xx + yy) / (2 * n), -0.25)
    ring = (d > 0.72 * r) & (d < 0.72 * r + 1.2)
    rgb[ring] = jitter_color(rng, (150, 150, 146), 6)
    rgb[d < max(1.0, 0.12 * r)] = (120, 120, 118)
    return rgb, m, 0.6 * r


def _greenhouse(rng, u, ang):
    length, wd = rng.uniform(0.13, 0.22) * u, rng.uniform(0.05, 0.075) * u
    h, w = max(5, int(wd)), max(10, int(length))
    yy, xx = _grid(h, w)
    rgb = _fill(h, w, jitter_color(rng, (208, 218, 224), 6))
    rgb = rgb * (0.9 + 0.16 * np.sin(np.pi * yy / max(h - 1, 1)))[..., None]  # curved roof highlight
    rgb[(xx % 3) < 1] *= 0.85
    rgb[[0, -1], :] *= 0.8
    rgb[:, [0, -1]] *= 0.8
    rgb, m = _rotate(rgb, np.ones((h, w), bool), ang + rng.uniform(-2, 2))
    return rgb, m, 1.5


def _solar(rng, u, ang):
    h, w = int(rng.uniform(0.12, 0.22) * u), int(rng.uniform(0.16, 0.3) * u)
    yy, xx = _grid(h, w)
    rgb = _fill(h, w, jitter_color(rng, (30, 42, 84), 6))
    rgb[(xx % 6) < 1] += 18
    rgb[(yy % 4) >= 3] = jitter_color(rng, (176, 164, 132), 6)  # ground between panel rows
    rgb, m = _rotate(rgb, np.ones((h, w), bool), ang)
    return rgb, m, 0.0


def _building(rng, u, ang):
    h, w = int(rng.uniform(0.06, 0.12) * u), int(rng.uniform(0.07, 0.14) * u)
    h, w = max(h, 5), max(w, 5)
    roofs = [(172, 82, 62), (118, 118, 124), (192, 182, 162), (88, 98, 122), (152, 140, 128)]
    rgb = _fill(h, w, jitter_color(rng, roofs[rng.integers(len(roofs))], 8))
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
    rgb = _fill(h, w, jitter_color(rng, surfaces[rng.integers(3)], 6))
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
    rgb = _fill(h, w, jitter_color(rng, (68, 186, 218), 8))
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
    rgb = _fill(h, w, jitter_color(rng, (234, 234, 236), 5))
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
    rgb = _fill(h, w, jitter_color(rng, (168, 78, 58), 8))
    lanes = (d > 0.66 * r) & ((np.round(d) % 3) == 0)
    rgb[lanes] = rgb[lanes] * 0.6 + 230 * 0.4
    field_ = d <= 0.64 * r
    rgb[field_] = jitter_color(rng, (72, 142, 72), 8)
    rgb[field_] = _shade(rgb, (xx // 4 % 2).astype(F32), 0.12)[field_]  # mowing stripes
    rgb, m = _rotate(rgb, m, rng.uniform(0, 180))
    return rgb, m, 0.0


def _parking(rng, u, ang):
    h, w = int(rng.uniform(0.1, 0.18) * u), int(rng.uniform(0.14, 0.26) * u)
    h, w = max(h, 12), max(w, 12)
    yy, xx = _grid(h, w)
    rgb = _shade(_fill(h, w, jitter_color(rng, (112, 112, 114), 6)), noise(rng, h, w, 4), 0.1)
    row_h = max(5, h // 3)
    in_row = ((yy % (2 * row_h)) < row_h) & (yy > 0) & (yy < h - 1)
    rgb[in_row & ((xx % 4) < 0.8)] = (226, 226, 222)
    cars = [(200, 40, 40), (230, 230, 230), (30, 30, 34), (40, 70, 160), (190, 190, 196), (160, 150, 60)]
    for y0 in range(1, h - row_h + 1, 2 * row_h):
        for x0 in range(1, w - 4, 4):
            if rng.random() < 0.55:
                rgb[y0 + 1 : y0 + row_h - 1, x0 + 1 : x0 + 3] = jitter_color(rng, cars[rng.integers(len(cars))], 10)
    rgb, m = _rotate(rgb, np.ones((h, w), bool), ang)
    return rgb, m, 0.0


def _farmland(rng, u, ang):
    h, w = int(rng.uniform(0.16, 0.3) * u), int(rng.uniform(0.2, 0.34) * u)
    yy, xx = _grid(h, w)
    pal = [((86, 138, 58), (118, 154, 70)), ((182, 162, 92), (158, 140, 80)), ((122, 96, 64), (98, 120, 60))]
    a, b = pal[rng.integers(len(pal))]
    period = rng.integers(3, 6)
    t = ((xx % period) < period / 2).astype(F32)
    rgb = jitter_color(rng, a, 8) * (1 - t[..., None]) + jitter_color(rng, b, 8) * t[..., None]
    rgb = _shade(rgb, noise(rng, h, w, 4), 0.15)
    rgb, m = _rotate(rgb, np.ones((h, w), bool), ang + rng.uniform(-5, 5))
    return rgb, m, 0.0


def _forest(rng, u, ang):
    m = _blob(rng, rng.uniform(0.11, 0.18) * u, rng.uniform(0.6, 1.0))
    h, w = m.shape
    t = noise(rng, h, w, max(4, w / 3))  # crowns
    dark, light = jitter_color(rng, (28, 62, 32), 5), jitter_color(rng, (62, 104, 50), 6)
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


def road_band(rng, u, ang, s):
    width = max(5.0, rng.uniform(0.03, 0.045) * u)
    perp, along, m, _ = _band(rng, s, width, 0.0)
    rgb = _shade(_fill(s, s, jitter_color(rng, (70, 70, 74), 5)), noise(rng, s, s, 12), 0.12)
    dash = (np.abs(perp) < 0.6) & ((along % 8) < 4)
    rgb[dash] = (206, 184, 70)
    return rgb, m, 0.0


def river_band(rng, u, s):
    width = rng.uniform(0.12, 0.18) * s
    perp, along, m, geo = _band(rng, s, width, 0.0)
    rgb = _shade(_fill(s, s, jitter_color(rng, (34, 70, 100), 6)), noise(rng, s, s, 4), 0.3)
    bank = m & (np.abs(perp) > width / 2 - 1.5)
    rgb[bank] = (84, 104, 90)
    return rgb, m, width, geo


def bridge_deck(rng, u, river_width, theta_deg):
    length = river_width + 2 * rng.uniform(0.04, 0.07) * u
    wd = max(5.0, rng.uniform(0.035, 0.05) * u)
    h, w = int(wd), int(length)
    rgb = _fill(h, w, jitter_color(rng, (178, 172, 162), 5))
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
