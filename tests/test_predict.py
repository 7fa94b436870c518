"""think2seg predict: GeoTIFFs built here with rasterio; georeference, vectors, seams, bad input, strategies."""

from __future__ import annotations

import json

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
from affine import Affine  # noqa: E402
from geo_helpers import read_vectors, scene_with_targets  # noqa: E402

from think2seg.cli import main  # noqa: E402
from think2seg.predict import PredictConfig, SceneError, open_scene, predict  # noqa: E402
from think2seg.predict.tiling import merge_tile_mask, tile_grid  # noqa: E402

CRS = "EPSG:32633"
TRANSFORM = Affine(2.0, 0.0, 350000.0, 0.0, -3.0, 5600000.0)  # non-square pixels: 6 m² each


def write_tif(path, bands, crs=CRS, transform=TRANSFORM):
    """(C, H, W) array -> GeoTIFF (no georeference when crs is None)."""
    bands = np.asarray(bands)
    import warnings

    kw = {"crs": crs, "transform": transform} if crs else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        f = rasterio.open(path, "w", driver="GTiff", width=bands.shape[2], height=bands.shape[1],
                          count=bands.shape[0], dtype=bands.dtype, **kw)
    with f:
        f.write(bands)
    return str(path)


@pytest.fixture
def geoscene(tmp_path):
    img, truth = scene_with_targets()
    return write_tif(tmp_path / "scene.tif", img), write_tif(tmp_path / "truth.tif", truth[None]), truth


def test_georeference_kept_and_polygon_areas_match_mask_pixels(geoscene, tmp_path):
    image, truth_path, truth = geoscene
    out = tmp_path / "out"
    s = predict(PredictConfig(image=image, questions=["the red roofs", "the same again"], out=str(out),
                              prompter="oracle", truth=truth_path, vector="map"), progress=False)
    with rasterio.open(s["questions"][0]["mask"]) as f:
        assert f.crs.to_string() == CRS and f.transform == TRANSFORM
        mask = f.read(1) > 0
    inter, union = (mask & (truth > 0)).sum(), (mask | (truth > 0)).sum()
    assert inter / union > 0.85  # oracle prompts + GrabCut on a clean scene
    fc = json.loads((out / "q1.geojson").read_text())  # RFC 7946: WGS 84 lon/lat, no crs member
    assert "crs" not in fc
    lons = [x for f in fc["features"] for poly in f["geometry"]["coordinates"] for ring in poly for x, _ in ring]
    lats = [y for f in fc["features"] for poly in f["geometry"]["coordinates"] for ring in poly for _, y in ring]
    assert 12.8 < min(lons) < max(lons) < 12.9 and 50.5 < min(lats) < max(lats) < 50.6  # UTM 33N, 350 km E
    gp = read_vectors(out / "q1.gpkg")  # the raster's CRS, exact areas
    assert gp["crs"] == CRS and gp["valid"]
    assert sum(gp["area"]) == pytest.approx(mask.sum() * 6.0) and sum(gp["pixels"]) == mask.sum()
    assert any(len(p.interiors) == 1 for g in gp["geometry"] for p in g.geoms)  # the ring keeps its hole
    x0, y0, x1, y1 = gp["bounds"]
    assert x0 >= 350000 and x1 <= 350000 + 320 * 2.0
    assert s["questions"][0]["vectors"] == {"gpkg": str(out / "q1.gpkg"), "geojson": str(out / "q1.geojson"),
                                            "note": None, "space": CRS}
    rec = json.loads((out / "predictions.json").read_text())
    assert rec["crs"] == CRS and rec["questions"][1]["mask_pixels"] == int(mask.sum())
    ans = rec["questions"][0]["answers"][0]
    assert ans["think"] and ans["format_ok"]
    px, mp = ans["instances_px"][0], ans["instances_map"][0]
    x, y = px["positive_points"][0]
    assert mp["positive_points"][0] == pytest.approx([350000 + 2 * (x + 0.5), 5600000 - 3 * (y + 0.5)])
    assert (out / "q1.overlay.png").is_file() and (out / "q2.mask.tif").is_file()


def test_questions_share_one_embedding_per_tile(geoscene, tmp_path):
    from think2seg.prompters import build_prompter
    from think2seg.segmenters.grabcut import GrabCutSegmenter

    image, truth_path, _ = geoscene
    seg = GrabCutSegmenter()
    s = predict(PredictConfig(image=image, questions=["a", "b", "c"], out=str(tmp_path / "o"), truth=truth_path,
                              tile=128, overlap=32), prompter=build_prompter("oracle", image_size=128),
                segmenter=seg, progress=False)
    with_target = sum(not all(r["empty"] for r in rs) for rs in zip(*[q["answers"] for q in s["questions"]], strict=True))
    assert s["n_tiles"] == s["tiles_asked"] == 9 and 0 < with_target < 9
    assert seg.stats["images"] == with_target  # one set_image per tile with an answer, not per question


def test_object_across_a_seam_is_found_whole(tmp_path):
    import cv2

    h, w = 256, 512
    truth = np.zeros((h, w), np.uint8)
    cv2.rectangle(truth, (226, 100), (285, 150), 1, -1)  # crosses tile 0's right edge (x = 255) and tile 2's left
    img = np.where(truth[None].astype(bool), 210, 60).astype(np.uint8).repeat(3, 0)
    tiles = tile_grid(w, h, 256, 64)
    assert [t.col for t in tiles] == [0, 192, 256]
    image, tp = write_tif(tmp_path / "s.tif", img), write_tif(tmp_path / "t.tif", truth[None])
    s = predict(PredictConfig(image=image, questions=["the bright block"], out=str(tmp_path / "o"),
                              prompter="oracle?image_size=256", truth=tp, tile=256, overlap=64), progress=False)
    with rasterio.open(s["questions"][0]["mask"]) as f:
        mask = f.read(1).astype(np.uint8)
    n, _ = cv2.connectedComponents(mask)
    assert n - 1 == 1
    assert (mask & truth).sum() / (mask | truth).sum() > 0.9
    # each side tile saw only a cut piece; keeping its pieces whole would have doubled the seam's edges
    cut = np.zeros((256, 256), bool)
    cut[100:151, 226:256] = True
    assert not merge_tile_mask(cut, tiles[0], 64).any()


def test_merge_rule_keeps_uncut_components_whole_and_cut_ones_in_the_core():
    t = tile_grid(512, 256, 256, 64)[1]  # interior left and right edges, scene borders above and below
    m = np.zeros((256, 256), bool)
    m[0:40, 100:140] = True  # touches the top scene border only: whole
    m[100:120, 0:50] = True  # cut by the left interior edge: core (x >= 32) only
    m[200:220, 10:30] = True  # inside the overlap band, not cut: whole
    keep = merge_tile_mask(m, t, 64)
    assert keep[0:40, 100:140].all() and keep[200:220, 10:30].all()
    assert not keep[100:120, 0:32].any() and keep[100:120, 32:50].all()


def test_uint16_percentile_stretch_is_global_not_per_tile(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.integers(1000, 5000, (3, 200, 300)).astype(np.uint16)
    data[:, :, :150] //= 4  # a dark half: per-tile stretching would brighten it
    scene = open_scene(write_tif(tmp_path / "u16.tif", data))
    from rasterio.windows import Window

    whole, part = scene.read(), scene.read(Window(0, 0, 100, 100))
    assert whole.dtype == np.uint8 and whole.shape == (200, 300, 3)
    np.testing.assert_array_equal(whole[:100, :100], part)
    lo, hi = np.percentile(data[0].astype(float), [2, 98])
    assert scene.lo[0] == pytest.approx(lo, rel=0.02) and scene.hi[0] == pytest.approx(hi, rel=0.02)
    assert part.max() < 100  # the dark corner stays dark
    scene.close()


def test_bands_pick_rgb_from_multiband(tmp_path):
    data = np.stack([np.full((20, 30), v, np.uint8) for v in (10, 20, 30, 40, 50)])
    scene = open_scene(write_tif(tmp_path / "ms.tif", data), bands="5,3,1")
    assert scene.read()[0, 0].tolist() == [50, 30, 10]
    scene.close()


def test_not_georeferenced_gives_png_and_pixel_vectors(tmp_path):
    img, truth = scene_with_targets()
    image, tp = write_tif(tmp_path / "plain.tif", img, crs=None), write_tif(tmp_path / "t.tif", truth[None], crs=None)
    s = predict(PredictConfig(image=image, questions=["red"], out=str(tmp_path / "o"), prompter="oracle", truth=tp,
                              vector="pixel"), progress=False)
    q = s["questions"][0]
    assert q["mask"].endswith("q1.mask.png") and not s["georeferenced"]
    from PIL import Image

    mask = np.asarray(Image.open(q["mask"])) > 0
    gp = read_vectors(tmp_path / "o" / "q1.gpkg")
    assert gp["crs"] is None and sum(gp["area"]) == mask.sum() and gp["valid"]
    assert not (tmp_path / "o" / "q1.geojson").exists() and "RFC 7946" in q["vectors"]["note"]
    assert "instances_map" not in q["answers"][0]


def _cli(capsys, *argv):
    rc = main(["predict", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    return rc, err


@pytest.mark.parametrize("case", ["unreadable", "missing", "two_bands", "complex", "bands_range", "empty_q", "vector_map", "oracle"])
def test_bad_input_one_line_error_naming_the_culprit(case, tmp_path, capsys):
    good = write_tif(tmp_path / "ok.tif", np.zeros((3, 32, 32), np.uint8))
    args, expect = [good, "--question", "where?"], None
    if case == "unreadable":
        bad = tmp_path / "broken.tif"
        bad.write_bytes(b"II*\x00 not really a tiff")
        args[0], expect = str(bad), "broken.tif"
    elif case == "missing":
        args[0], expect = str(tmp_path / "nope.tif"), "nope.tif"
    elif case == "two_bands":
        args[0], expect = write_tif(tmp_path / "two.tif", np.zeros((2, 32, 32), np.uint8)), "--bands"
    elif case == "complex":
        args[0], expect = write_tif(tmp_path / "cplx.tif", np.zeros((3, 32, 32), np.complex64)), "cplx.tif"
    elif case == "bands_range":
        args += ["--bands", "4,3,2"]
        expect = "--bands"
    elif case == "empty_q":
        args[2], expect = "   ", "--question"
    elif case == "vector_map":
        args[0] = write_tif(tmp_path / "plain.tif", np.zeros((3, 32, 32), np.uint8), crs=None)
        args += ["--vector"]
        expect = "--vector"
    elif case == "oracle":
        expect = "--truth"
    prompter = "oracle" if case == "oracle" else "fixed"
    rc, err = _cli(capsys, *args, "--prompter", prompter, "--out", str(tmp_path / "o"))
    assert rc == 2 and len(err) == 1 and expect in err[0] and err[0].startswith("think2seg predict: error:")
    if case == "vector_map":
        assert "plain.tif" in err[0]


def test_scene_error_is_a_value_error(tmp_path):
    with pytest.raises(SceneError, match="no such file"):
        open_scene(tmp_path / "x.tif")


def test_default_prompter_with_a_questions_file(geoscene, tmp_path):
    """The embedded default (tiny + GrabCut) through the command, two questions from a file."""
    image, _, _ = geoscene
    qf = tmp_path / "q.txt"
    qf.write_text("# two questions\nwhere are the red roofs?\n\nwhat could store water?\n")
    assert main(["predict", image, "--questions", str(qf), "--out", str(tmp_path / "o")]) == 0
    rec = json.loads((tmp_path / "o" / "predictions.json").read_text())
    assert [q["question"] for q in rec["questions"]] == ["where are the red roofs?", "what could store water?"]
    assert rec["prompter"] == "tiny" and rec["strategy"] == "tiles"
    assert rec["tile"] == 256 and rec["n_tiles"] == rec["tiles_asked"] == 2  # 320 x 240: two columns, one row
    assert all(a["completion"].startswith("<think>") for q in rec["questions"] for a in q["answers"])


@pytest.mark.parametrize("strategy", ["overview", "refine"])
def test_overview_strategies_ask_the_scene_then_only_the_tiles_it_points_to(strategy, tmp_path):
    import cv2

    img = np.full((3, 600, 600), 60, np.uint8)
    truth = np.zeros((600, 600), np.uint8)
    cv2.circle(truth, (70, 70), 30, 1, -1)  # top-left tile only, even with its box grown by the overlap
    img[:, truth > 0] = 220
    image, tp = write_tif(tmp_path / "s.tif", img), write_tif(tmp_path / "t.tif", truth[None])
    s = predict(PredictConfig(image=image, questions=["the bright disc"], out=str(tmp_path / "o"),
                              prompter="oracle?image_size=256", truth=tp, strategy=strategy), progress=False)
    answers = s["questions"][0]["answers"]
    assert answers[0]["source"] == "overview" and s["n_tiles"] == 9
    assert s["tiles_asked"] == (0 if strategy == "overview" else 1)  # 600 px at 256 / 64: 3 x 3 tiles
    with rasterio.open(s["questions"][0]["mask"]) as f:
        mask = f.read(1)
    assert (mask & truth).sum() / (mask | truth).sum() > 0.8


@pytest.mark.slow
def test_sam2_embeds_each_tile_once_for_all_questions(geoscene, tmp_path):
    pytest.importorskip("sam2")
    import warnings

    from think2seg.prompters import build_prompter
    from think2seg.segmenters import build_segmenter
    from think2seg.segmenters.sam2 import RandomWeightsWarning

    image, truth_path, _ = geoscene
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        seg = build_segmenter("sam2:tiny:random", device="cpu")
    before = seg.stats.get("encoder_calls", 0)
    s = predict(PredictConfig(image=image, questions=["a", "b"], out=str(tmp_path / "o"), truth=truth_path,
                              tile=256, overlap=64), prompter=build_prompter("oracle", image_size=256),
                segmenter=seg, progress=False)
    assert s["n_tiles"] == 2 and all(not a["empty"] for q in s["questions"] for a in q["answers"])
    assert seg.stats["encoder_calls"] - before == 2  # two tiles, two questions each: one embedding per tile


def test_an_interrupted_run_resumes_to_the_same_result(geoscene, tmp_path):
    from think2seg.prompters import build_prompter

    image, truth_path, _ = geoscene
    oracle = build_prompter("oracle", image_size=128)

    class KilledAfterOneBatch:  # the real oracle, interrupted as a kill would between two batches
        name, image_size, style = oracle.name, oracle.image_size, oracle.style
        calls = 0

        def generate(self, samples, n=1, temperature=0.0, seed=0):
            self.calls += 1
            if self.calls > 1:
                raise KeyboardInterrupt
            return oracle.generate(samples, n)

    cfg = dict(image=image, questions=["a", "b"], truth=truth_path, tile=128, overlap=32, batch_tiles=2)
    full = predict(PredictConfig(out=str(tmp_path / "full"), **cfg), prompter=oracle, progress=False)
    with pytest.raises(KeyboardInterrupt):
        predict(PredictConfig(out=str(tmp_path / "cut"), **cfg), prompter=KilledAfterOneBatch(), progress=False)
    assert (tmp_path / "cut" / ".progress.jsonl").is_file()
    with pytest.raises(ValueError, match="strategy='tiles'"):
        predict(PredictConfig(out=str(tmp_path / "cut"), **{**cfg, "strategy": "refine"}), prompter=oracle, progress=False)
    again = predict(PredictConfig(out=str(tmp_path / "cut"), **cfg), prompter=oracle, progress=False)
    assert again["tiles_resumed"] == 2 and again["tiles_asked"] == full["tiles_asked"] == 9
    assert not (tmp_path / "cut" / ".progress.jsonl").exists()
    for qa, qb in zip(full["questions"], again["questions"], strict=True):
        assert qa["mask_pixels"] == qb["mask_pixels"] > 0
        assert [a["window"] for a in qa["answers"]] == [a["window"] for a in qb["answers"]]
        with rasterio.open(qa["mask"]) as fa, rasterio.open(qb["mask"]) as fb:
            np.testing.assert_array_equal(fa.read(1), fb.read(1))
