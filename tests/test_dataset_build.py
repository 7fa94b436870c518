"""``think2seg dataset build``: the round trip from a SynthEarth mosaic and its vectorised masks, no leakage
between splits, resume, nodata and repaired geometries, and every bad input as one line with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

geopandas = pytest.importorskip("geopandas")
rasterio = pytest.importorskip("rasterio")

from think2seg.cli import main  # noqa: E402
from think2seg.data import load_dataset  # noqa: E402
from think2seg.data.earthreason import make_dirs, write_entry  # noqa: E402
from think2seg.data.formats import SPLITS  # noqa: E402
from think2seg.data.own import BuildConfig, build_dataset  # noqa: E402
from think2seg.data.own import build as build_mod  # noqa: E402
from think2seg.data.own.questions import load_questions  # noqa: E402
from think2seg.data.questions import name_words  # noqa: E402
from think2seg.data.scenes import CATEGORY_KEYS  # noqa: E402
from think2seg.predict.mosaic import build_mosaic  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = REPO / "configs" / "questions" / "synthearth.yaml"
CAT = "storage_tank"


def _vectorise(truth_path: Path, out: Path, crs_out: int | None = 4326, cls: str = CAT) -> Path:
    """The truth raster's target regions as polygons (rasterio.features.shapes), written as a GeoPackage."""
    from rasterio.features import shapes
    from shapely.geometry import shape

    with rasterio.open(truth_path) as f:
        truth, tf, crs = f.read(1), f.transform, f.crs
    geoms = [shape(g) for g, v in shapes(truth, mask=truth > 0, transform=tf) if v > 0]
    gdf = geopandas.GeoDataFrame({"cls": [cls] * len(geoms)}, geometry=geoms, crs=crs)
    if crs_out is not None:
        gdf = gdf.to_crs(crs_out)  # labels in another CRS than the images: reprojected by the builder
    gdf.to_file(out, engine="pyogrio")
    return out


@pytest.fixture(scope="module")
def mosaic(tmp_path_factory):
    d = tmp_path_factory.mktemp("own")
    m = build_mosaic(d / "mosaic", grid=6, size=128, n_target=16, category=CAT, seed=0)
    m["labels"] = _vectorise(Path(m["truth"]), d / "labels.gpkg")
    return m


def _cfg(m, out, **kw) -> BuildConfig:
    base = dict(images=[m["image"]], labels=str(m["labels"]), class_field="cls", questions=str(QUESTIONS),
                out=str(out), tile="128", block="256", ratios="0.5,0.25,0.25", empty_ratio=0.2, progress=False)
    return BuildConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def built(mosaic, tmp_path_factory):
    out = tmp_path_factory.mktemp("built") / "ds"
    return out, build_dataset(_cfg(mosaic, out))


def _entries(root: Path):
    for split in SPLITS:
        for qa_path in sorted((root / split / "QAs").glob("*.json")):
            yield split, qa_path.stem, json.loads(qa_path.read_text())


def test_round_trip_masks_and_oracle_match_the_original_tiles(mosaic, built, tmp_path):
    from think2seg.core.io import read_image, read_mask
    from think2seg.evaluation.engine import EvalConfig, evaluate

    root, summary = built
    with rasterio.open(mosaic["truth"]) as f:
        truth = f.read(1) > 0
    with rasterio.open(mosaic["image"]) as f:
        image = np.moveaxis(f.read(), 0, -1)
    orig = tmp_path / "orig"
    make_dirs(orig)
    n, ious = 0, []
    for split, eid, qa in _entries(root):
        t = qa["source"]["tile"]
        win = np.s_[t["row"]:t["row"] + t["height"], t["col"]:t["col"] + t["width"]]
        want = truth[win] if not qa["source"]["empty"] else np.zeros((t["height"], t["width"]), bool)
        got = read_mask(root / split / "labels" / f"{eid}.png")
        inter, union = (got & want).sum(), (got | want).sum()
        ious.append(1.0 if union == 0 else inter / union)
        assert np.array_equal(read_image(root / split / "images" / f"{eid}.jpg").shape[:2], want.shape)
        assert (qa["answer"] == []) == qa["source"]["empty"] == (not want.any())
        write_entry(orig, split, eid, image[win], want, {"questions": qa["questions"], "answer": qa["answer"]})
        n += 1
    assert n == sum(c["images"] for c in summary["counts"].values()) >= 8
    assert min(ious) > 0.97, ious  # vectorise (in EPSG:4326) -> reproject -> rasterize keeps the pixels
    scores = {}
    for name, data in (("built", root), ("orig", orig)):
        g = []
        for split in SPLITS:
            if summary["counts"][split]["images"]:
                r = evaluate(EvalConfig(data=f"earthreason:{data}", out=str(tmp_path / f"{name}-{split}"),
                                        split=split, prompter="oracle?image_size=128", questions="first"),
                             progress=False)
                g.append((r["gIoU"], r["n"]))
        scores[name] = sum(a * k for a, k in g) / sum(k for _, k in g)
    assert scores["built"] > 0.5 and abs(scores["built"] - scores["orig"]) < 0.02, scores  # gIoU in [0, 1]


def test_data_stats_and_loader_read_the_result(built, capsys):
    root, summary = built
    assert main(["data-stats", f"earthreason:{root}"]) == 0
    assert "train" in capsys.readouterr().out
    for split in SPLITS:
        ds = load_dataset(f"earthreason:{root}", split)
        c = summary["counts"][split]
        assert ds.summary()["images"] == c["images"] and ds.summary()["empty"] == c["empty"]
        assert all(s.extra["category"] == CAT and s.extra["kind"] in ("explicit", "implicit") for s in ds)
    assert sum(c["empty"] for c in summary["counts"].values()) >= 1
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["crs"] == "EPSG:32631" and meta["labels"]["crs"] == "EPSG:4326" and meta["seed"] == 0
    assert len(meta["sources"][0]["sha256"]) == 64 and meta["questions"]["sha256"]
    assert not list(root.parent.glob(".*partial*"))


def _touch(a, b, tol):
    return a[0] - tol <= b[2] and b[0] - tol <= a[2] and a[1] - tol <= b[3] and b[1] - tol <= a[3]


@pytest.mark.parametrize("split_by", ["blocks", "image"])
def test_no_train_tile_overlaps_or_touches_a_val_or_test_tile(mosaic, tmp_path, split_by):
    """Three images cut from the mosaic, overlapping by 40 px, overlapping tiles: written tiles of different splits
    never overlap nor share an edge (read back from the QA files, not from the planner)."""
    from rasterio.windows import Window

    paths = []
    with rasterio.open(mosaic["image"]) as src:
        for k, (c, r, w, h) in enumerate([(0, 0, 400, 400), (360, 0, 408, 400), (0, 360, 768, 408)]):
            w = Window(c, r, w, h)
            prof = src.profile | {"width": w.width, "height": w.height, "transform": src.window_transform(w)}
            p = tmp_path / f"part{k}.tif"
            with rasterio.open(p, "w", **prof) as dst:
                dst.write(src.read(window=w))
            paths.append(str(p))
    out = tmp_path / "ds"
    s = build_dataset(_cfg(mosaic, out, images=paths, tile="96", overlap="24", block="192", split_by=split_by,
                           ratios="0.6,0.2,0.2"))
    boxes = {sp: {tuple(qa["source"]["tile"]["bounds"]) for sp2, _, qa in _entries(out) if sp2 == sp}
             for sp in SPLITS}
    assert all(boxes[sp] for sp in SPLITS), {k: len(v) for k, v in boxes.items()}
    for a_split, b_split in (("train", "val"), ("train", "test"), ("val", "test")):
        for a in boxes[a_split]:
            assert not any(_touch(a, b, 0.25) for b in boxes[b_split]), (a_split, a, b_split)
    split_map = json.loads((out / "split_map.geojson").read_text())
    groups = [f for f in split_map["features"] if f["properties"]["kind"] == "group"]
    assert groups and {f["properties"]["split"] for f in groups} >= {"train", "val", "test"}
    if split_by == "blocks":
        assert s["skipped"]["counts"].get("split_buffer", 0) > 0  # the buffer did something here


def test_interrupted_build_resumes_and_leaves_nothing_complete(mosaic, built, tmp_path, monkeypatch):
    out = tmp_path / "ds"
    real, calls = build_mod._write_tile, []

    def failing(plan, t, scene, root):
        calls.append(t.key)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(plan, t, scene, root)

    monkeypatch.setattr(build_mod, "_write_tile", failing)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(_cfg(mosaic, out))
    assert not out.exists() and (tmp_path / ".ds.partial").is_dir()
    monkeypatch.setattr(build_mod, "_write_tile", lambda *a: calls.append("resumed") or real(*a))
    s = build_dataset(_cfg(mosaic, out))
    n_active = sum(1 for r in s["skipped"]["tiles"] if r["reason"] != "split_buffer") + sum(
        c["tiles"] for c in s["counts"].values())
    assert calls.count("resumed") == n_active - 3  # the three finished tiles are not redone
    ref_root, ref = built
    assert s["counts"] == ref["counts"]
    for (sp, eid, qa), (sp2, eid2, qa2) in zip(_entries(out), _entries(ref_root), strict=True):
        assert (sp, eid, qa) == (sp2, eid2, qa2)
    again = build_dataset(_cfg(mosaic, out))  # same inputs and options: found, not rebuilt
    assert again["already_built"] and again["fingerprint"] == s["fingerprint"]


def test_nodata_tiles_are_skipped_and_invalid_polygons_repaired(mosaic, tmp_path):
    from shapely.geometry import Polygon

    with rasterio.open(mosaic["image"]) as src:
        data, prof = src.read(), src.profile
        x0, y0 = src.transform * (0, 0)
    data[:, :, :180] = 0  # the left 180 px are nodata: tiles at col 0 all (skipped), col 128 40 % (kept)
    img = tmp_path / "holes.tif"
    with rasterio.open(img, "w", **(prof | {"nodata": 0})) as dst:
        dst.write(data)
    lab = geopandas.read_file(mosaic["labels"]).to_crs(32631)
    bowtie = Polygon([(x0 + 300, y0 - 300), (x0 + 340, y0 - 340), (x0 + 340, y0 - 300), (x0 + 300, y0 - 340)])
    lab = geopandas.GeoDataFrame({"cls": list(lab["cls"]) + [CAT]}, geometry=list(lab.geometry) + [bowtie],
                                 crs=lab.crs)
    lab_path = tmp_path / "labels.geojson"
    lab.to_file(lab_path, engine="pyogrio")
    s = build_dataset(_cfg(mosaic, tmp_path / "ds", images=[str(img)], labels=str(lab_path)))
    assert s["labels"]["repaired"] == 1
    nodata = [t for t in s["skipped"]["tiles"] if t["reason"] == "nodata"]
    assert nodata and all(t["col"] == 0 for t in nodata)
    assert all(qa["source"]["tile"]["col"] > 0 for _, _, qa in _entries(tmp_path / "ds"))


def test_synthearth_questions_file_covers_every_category():
    qs = load_questions(QUESTIONS)
    assert sorted(qs) == sorted(CATEGORY_KEYS)
    for cat, q in qs.items():
        assert q.explicit and q.implicit
        for text in q.implicit:
            assert not set(text.lower().replace("?", "").split()) & name_words(cat), (cat, text)


# ----------------------------------------------------------------------------------------------- bad input
def _run_bad(capsys, argv, out):
    rc = main(["dataset", "build", *argv, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert not out.exists() and not list(out.parent.glob(f".{out.name}.partial"))  # nothing written
    return err


def _args(m, **over):
    a = {"--images": [m["image"]], "--labels": [str(m["labels"])], "--class-field": ["cls"],
         "--questions": [str(QUESTIONS)], "--tile": ["128"], "--block": ["256"], "--ratios": ["0.5,0.25,0.25"]}
    a.update({k: v if isinstance(v, list) else [v] for k, v in over.items()})
    return [x for k, v in a.items() for x in (k, *v)]


def test_bad_inputs_are_one_line_with_exit_2(mosaic, built, tmp_path, capsys):
    m = mosaic
    # labels without a CRS
    nocrs = tmp_path / "nocrs.shp"  # a shapefile without its .prj (GeoJSON always means EPSG:4326)
    geopandas.read_file(m["labels"]).to_crs(32631).to_file(nocrs, engine="pyogrio")
    nocrs.with_suffix(".prj").unlink()
    assert "has no CRS" in _run_bad(capsys, _args(m, **{"--labels": str(nocrs)}), tmp_path / "a")
    # a class field that does not exist
    assert "no field 'kind'" in _run_bad(capsys, _args(m, **{"--class-field": "kind"}), tmp_path / "b")
    # images in different CRSs
    other = tmp_path / "other.tif"
    with rasterio.open(m["image"]) as src:
        data, prof = src.read(), src.profile
    with rasterio.open(other, "w", **(prof | {"crs": "EPSG:32632"})) as dst:
        dst.write(data)
    err = _run_bad(capsys, _args(m, **{"--images": [m["image"], str(other)]}), tmp_path / "c")
    assert "differs from" in err and "EPSG:32632" in err
    # no label intersecting any image
    far = tmp_path / "far.gpkg"
    g = geopandas.read_file(m["labels"])
    g.set_geometry(g.geometry.translate(xoff=20.0), inplace=True)
    g.to_file(far, engine="pyogrio")
    assert "none of its" in _run_bad(capsys, _args(m, **{"--labels": str(far)}), tmp_path / "d")
    # a questions file missing a category of the labels / a category with no questions
    q1 = tmp_path / "q1.yaml"
    q1.write_text("lake:\n  explicit: [the lake]\n")
    assert "no questions for label category 'storage_tank'" in _run_bad(
        capsys, _args(m, **{"--questions": str(q1)}), tmp_path / "e")
    q2 = tmp_path / "q2.yaml"
    q2.write_text("storage_tank:\n  explicit: []\n  implicit: []\n")
    assert "has no questions" in _run_bad(capsys, _args(m, **{"--questions": str(q2)}), tmp_path / "f")
    # an output folder holding a different dataset: refused, left as it was
    held, _ = built
    before = (held / "dataset.json").read_text()
    rc = main(["dataset", "build", *_args(m, **{"--seed": "1"}), "--out", str(held)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "already holds a different dataset" in err and len(err.splitlines()) == 1
    assert (held / "dataset.json").read_text() == before
    # a bad option
    assert "--tile" in _run_bad(capsys, _args(m, **{"--tile": "big"}), tmp_path / "g")


@pytest.mark.slow
def test_smoke_train_runs_on_the_built_dataset(built, tiny_policy, tmp_path):
    """One GRPO step of the tiny random-init Qwen2.5-VL (tests/conftest.py) on the built train split, with
    the in-training eval on its val split."""
    from think2seg.training.grpo import main as train_main

    root, summary = built
    assert summary["counts"]["train"]["images"] and summary["counts"]["val"]["images"]
    out = tmp_path / "run"
    args = ["--model", f"tiny:{tiny_policy}", "--data", f"earthreason:{root}", "--max_steps", "1",
            "--num_generations", "2", "--per_device_train_batch_size", "2", "--max_completion_length", "8",
            "--use_cpu", "true", "--bf16", "false", "--output_dir", str(out), "--report_to", "none",
            "--save_steps", "1", "--logging_steps", "1", "--seed", "0", "--gradient_checkpointing", "false",
            "--eval_split", "val", "--eval_limit", "2"]
    assert train_main(args) == 0
    assert (out / "model.safetensors").is_file()
    curve = [json.loads(line) for line in (out / "eval_curve.jsonl").read_text().splitlines()]
    assert [r["step"] for r in curve] == [0, 1] and all(r["n"] == 2 for r in curve)
