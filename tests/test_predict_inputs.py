"""think2seg predict on inputs as real scenes come: ragged masks (valid polygons), a corrupt GeoTIFF, a geotransform
without a CRS, a rotated geotransform. Every raster here is written by the test with rasterio."""

from __future__ import annotations

import json
import warnings

import cv2
import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("pyogrio")
import shapely  # noqa: E402
from affine import Affine  # noqa: E402
from geo_helpers import read_vectors, scene_with_targets  # noqa: E402
from rasterio.features import shapes  # noqa: E402
from shapely.geometry import shape  # noqa: E402

from think2seg.cli import main  # noqa: E402
from think2seg.predict import PredictConfig, predict  # noqa: E402
from think2seg.predict.vector import NO_CRS_GEOJSON, mask_features, write_vectors  # noqa: E402

UTM = Affine(300.0, 0.0, 500000.0, 0.0, -300.0, 4500000.0)  # 300 m pixels, as a coarse Landsat product


def ragged_mask(h=718, w=791, seed=0):
    """A thresholded smooth-noise mask with a nodata border: many regions touching only at corners."""
    rng = np.random.default_rng(seed)
    m = (cv2.GaussianBlur(rng.normal(size=(h, w)), (0, 0), 1.5) > 0.05).astype(np.uint8)
    m[:25], m[-30:], m[:, :40], m[:, -35:] = 0, 0, 0, 0
    return m.astype(bool)


def masks():
    diag = np.zeros((6, 6), bool)
    diag[1, 1] = diag[2, 2] = diag[3, 3] = diag[1, 3] = True  # a diagonal chain and a corner-touching pixel
    checker = np.zeros((6, 6), bool)
    checker[0:2, 0:2] = checker[2:4, 2:4] = True  # two blocks sharing one corner
    hole = np.zeros((8, 8), bool)
    hole[1:7, 1:7] = True
    hole[1, 1] = hole[2, 2] = hole[4, 4] = hole[5, 5] = False  # holes touching the outer ring and each other
    specks = np.zeros((9, 9), bool)
    specks[0, 0] = specks[4, 4] = specks[8, 8] = specks[8, 0] = specks[0, 8] = True  # one-pixel specks, corners
    return {"diagonal": diag, "corner": checker, "holes_touching": hole, "specks": specks, "ragged": ragged_mask()}


def raw_invalid(mask, transform):
    """What GDAL's polygoniser alone gives: the count of invalid polygons (the state before the fix)."""
    geoms = [shape(g) for g, _ in shapes(mask.astype(np.uint8), mask=mask, connectivity=8, transform=transform)]
    return sum(not g.is_valid for g in geoms)


@pytest.mark.parametrize("name", ["diagonal", "corner", "holes_touching", "specks", "ragged"])
def test_every_polygon_is_valid_and_its_area_is_its_pixels(name, tmp_path):
    mask = masks()[name]
    before = raw_invalid(mask, UTM)
    if name in ("diagonal", "corner", "ragged"):
        assert before > 0  # the failure this test guards against is really there in the raw polygons
    feats = mask_features(mask, UTM)
    n, _ = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    assert len(feats) == n - 1  # one feature per 8-connected region
    assert all(f.geometry.is_valid for f in feats)
    assert all(f.geometry.area == f.pixels * 90000.0 for f in feats)
    assert sum(f.pixels for f in feats) == mask.sum()
    written = write_vectors(feats, tmp_path / "q1", rasterio.crs.CRS.from_epsg(32618), {"question": "q"})
    gp, gj = read_vectors(written["gpkg"]), read_vectors(written["geojson"])
    assert gp["valid"] and gj["valid"] and len(gp["geometry"]) == len(gj["geometry"]) == len(feats)
    assert sum(g.area for g in gp["geometry"]) == mask.sum() * 90000.0
    assert gj["crs"] == "EPSG:4326" and -75.01 < gj["bounds"][0] < gj["bounds"][2] < -72  # UTM 18N from its central meridian


def write_tiled(path, bands, crs="EPSG:32633", transform=Affine(2.0, 0.0, 350000.0, 0.0, -3.0, 5600000.0)):
    kw = {"crs": crs} if crs else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="GTiff", width=bands.shape[2], height=bands.shape[1], count=bands.shape[0],
                           dtype=bands.dtype, transform=transform, tiled=True, blockxsize=256, blockysize=256,
                           compress="deflate", **kw) as f:
            f.write(bands)
    return str(path)


def test_a_corrupt_tile_stops_with_one_line_and_keeps_the_finished_tiles(tmp_path, capsys):
    rng = np.random.default_rng(0)
    img = rng.integers(40, 200, (3, 512, 768)).astype(np.uint8)
    path = write_tiled(tmp_path / "scene.tif", img)
    good = (tmp_path / "scene.tif").read_bytes()
    with rasterio.open(path) as f:  # the bytes of block (x 2, y 1): the last 256 px tile of the scene
        off, size = (int(f.get_tag_item(f"BLOCK_{k}_2_1", "TIFF", bidx=1)) for k in ("OFFSET", "SIZE"))
    data = bytearray(good)
    data[off:off + size] = rng.integers(0, 256, size).astype(np.uint8).tobytes()
    (tmp_path / "scene.tif").write_bytes(bytes(data))
    out = tmp_path / "out"
    argv = ["predict", path, "--question", "where?", "--prompter", "fixed", "--tile", "256", "--overlap", "0",
            "--batch-tiles", "1", "--vector", "--out", str(out)]
    rc = main(argv)
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]  # tqdm's bar aside
    assert rc == 2 and len(err) == 1 and err[0].startswith("think2seg predict: error:")
    assert "scene.tif" in err[0] and "window x 512-767, y 256-511" in err[0]
    log = [json.loads(ln) for ln in (out / ".progress.jsonl").read_text().splitlines()]
    assert [t for entry in log[1:] for t in entry["tiles"]] == [[0, 0], [256, 0], [512, 0], [0, 256], [256, 256]]
    finals = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert finals == set()  # no mask, overlay, vector or predictions.json that could pass for complete
    (tmp_path / "scene.tif").write_bytes(good)  # repaired: the rerun asks only the missing tile
    assert main(argv) == 0
    rec = json.loads((out / "predictions.json").read_text())
    assert rec["tiles_resumed"] == 5 and rec["n_tiles"] == 6
    assert {p.name for p in out.iterdir()} == {"q1.mask.tif", "q1.overlay.png", "q1.gpkg", "q1.geojson",
                                               "predictions.json"}


def _truth_scene(tmp_path, transform, crs):
    img, truth = scene_with_targets()
    return (write_tiled(tmp_path / "scene.tif", img, crs, transform),
            write_tiled(tmp_path / "truth.tif", truth[None], crs, transform), truth)


def test_a_transform_without_crs_is_kept(tmp_path, capsys):
    tf = Affine(0.5, 0.0, 1000.0, 0.0, -0.5, 2000.0)  # a local engineering grid: no CRS, half-unit pixels
    image, tp, _ = _truth_scene(tmp_path, tf, None)
    out = tmp_path / "out"
    assert main(["predict", image, "--question", "red roofs", "--prompter", "oracle", "--truth", tp, "--vector",
                 "--out", str(out)]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert "q1.mask.tif" in line and "q1.gpkg (no CRS" in line and NO_CRS_GEOJSON in line
    with rasterio.open(out / "q1.mask.tif") as f:
        assert f.crs is None and f.transform == tf
        mask = f.read(1) > 0
    gp = read_vectors(out / "q1.gpkg")
    assert gp["crs"] is None and gp["valid"] and sum(gp["area"]) == mask.sum() * 0.25
    x0, y0, x1, y1 = gp["bounds"]
    assert 1000 <= x0 < x1 <= 1000 + 320 * 0.5 and 2000 - 240 * 0.5 <= y0 < y1 <= 2000
    assert not (out / "q1.geojson").exists()
    rec = json.loads((out / "predictions.json").read_text())
    assert rec["georeferenced"] and rec["crs"] is None and rec["transform"] == list(tf)[:6]
    assert rec["questions"][0]["answers"][0]["instances_map"]


def test_a_rotated_transform_is_applied_as_an_affine(tmp_path):
    tf = Affine.translation(350000.0, 5600000.0) @ Affine.rotation(30.0) @ Affine.scale(2.0, -3.0)
    image, tp, truth = _truth_scene(tmp_path, tf, "EPSG:32633")
    out = tmp_path / "out"
    s = predict(PredictConfig(image=image, questions=["red roofs"], out=str(out), prompter="oracle", truth=tp,
                              vector="map"), progress=False)
    assert s["rotated"] and s["georeferenced"]
    with rasterio.open(out / "q1.mask.tif") as f:
        assert f.crs.to_string() == "EPSG:32633" and f.transform.almost_equals(tf)
        mask = f.read(1) > 0
    gp = read_vectors(out / "q1.gpkg")
    assert gp["valid"] and sum(g.area for g in gp["geometry"]) == pytest.approx(mask.sum() * 6.0)
    # every vertex is a pixel corner once the affine is undone: the rotation was applied, not dropped
    xy = shapely.get_coordinates(shapely.boundary(gp["geometry"]))
    cr = np.array([~tf @ (x, y) for x, y in xy])
    assert np.allclose(cr, np.round(cr), atol=1e-6)
    rows, cols = np.nonzero(mask)
    assert cr[:, 0].min() == pytest.approx(cols.min()) and cr[:, 0].max() == pytest.approx(cols.max() + 1)
    assert cr[:, 1].min() == pytest.approx(rows.min()) and cr[:, 1].max() == pytest.approx(rows.max() + 1)
    assert read_vectors(out / "q1.geojson")["valid"]
