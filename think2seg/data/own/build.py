"""``think2seg dataset build``: your GeoTIFFs + vector labels + a questions file -> an EarthReason dataset.

>>> summary = build_dataset(BuildConfig(images=["A.tif"], labels="labels.gpkg", class_field="class",
...                                     questions="configs/questions/synthearth.yaml", out="data/mine"))  # doctest: +SKIP
>>> load_dataset("earthreason:data/mine", "train")                                                    # doctest: +SKIP

What it writes (EarthReason's layout, :mod:`think2seg.data.earthreason`): one entry per (tile, category)
whose labels cover at least ``min_area`` pixels of the tile, ``<split>/images/<tile>-<category>.jpg`` (one
JPEG per tile, hard-linked between its entries), ``labels/<...>.png`` (the union of the category's
instances) and ``QAs/<...>.json`` (drawn questions, ``answer`` = ``[category]``, and a ``"source"`` block:
category, question kinds, instance boxes per category present, the tile's image, pixel window and CRS
bounds). Empty targets are entries asking about a category absent from the tile: all-zero mask,
``answer == []``. Beside the splits: ``dataset.json`` (provenance: sources with SHA-256, CRS, tile size,
questions file, seed, options, counts per split and category, skipped tiles with the reason) and
``split_map.geojson`` (the blocks or images with their split, and the tiles).

The plan (:mod:`.plan`) reads no pixel; then each tile is read through a rasterio window (memory grows
with the tile, not the scene; GDAL's cache is capped at 64 MiB), tiles mostly nodata are skipped, labels
are rasterized per tile. Work goes to ``.<out>.partial/`` beside ``out`` with a journal of finished tiles:
an interrupted build resumes where it stopped when rerun with the same inputs and options, and the folder
is renamed to ``out`` only when complete. An ``out`` holding a dataset built from other inputs or options
is an error, one built from the same is returned as is.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from think2seg.core.io import data_error
from think2seg.data.earthreason import make_dirs, write_entry
from think2seg.data.formats import SPLITS
from think2seg.data.own.labels import label_files, slug
from think2seg.data.own.plan import BuildConfig, Plan, make_plan
from think2seg.data.own.questions import draw_questions
from think2seg.data.own.splits import write_split_map
from think2seg.data.own.tiles import TilePlan, file_sha256, nodata_fraction
from think2seg.data.raster import open_scene

VERSION = 1
DATASET_FILE = "dataset.json"
SPLIT_MAP_FILE = "split_map.geojson"
_STATE, _JOURNAL = "build.json", "progress.jsonl"
GDAL_CACHE_BYTES = 64 * 1024 * 1024  # rasterio passes an integer GDAL_CACHEMAX as bytes (64 would be 64 bytes)


def _fingerprint(plan: Plan) -> tuple[str, dict[str, Any]]:
    cfg = plan.config
    sources = {
        "images": [i.sha256 for i in plan.infos],
        "labels": {p.name: file_sha256(p) for p in label_files(plan.labels.path)},
        "questions": file_sha256(cfg.questions),
    }
    doc = {"version": VERSION, "options": {k: v for k, v in cfg.options().items() if k not in ("images", "labels", "questions")},
           "sources": sources}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest(), sources


def _check_out(out: Path, fingerprint: str) -> dict | None:
    """The existing summary when ``out`` holds this very dataset; None when it is free; else DataError."""
    meta = out / DATASET_FILE
    if meta.is_file():
        try:
            have = json.loads(meta.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            have = {}
        if have.get("fingerprint") == fingerprint:
            return have
        srcs = ", ".join(Path(s.get("path", "?")).name for s in have.get("sources", [])) or "other inputs"
        raise data_error(out, f"already holds a different dataset (built from {srcs} with other inputs or options); "
                         "choose another --out or remove it", "mismatch")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise data_error(out, "exists and is not an empty folder nor a dataset built by think2seg; choose another --out",
                         "mismatch")
    return None


def _write_tile(plan: Plan, t: TilePlan, scene: Any, root: Path) -> dict[str, Any]:
    cfg = plan.config
    info = plan.infos[t.image]
    rec: dict[str, Any] = {"key": t.key, "split": t.split, "entries": [], "too_small": []}
    window = t.window()
    frac = nodata_fraction(scene.dataset, window, scene.bands)
    if frac > cfg.max_nodata:
        rec["skipped"], rec["nodata"] = "nodata", round(frac, 4)
        return rec
    rgb = scene.read(window)
    masks = plan.index.rasterize(t.bounds, scene.dataset.window_transform(window), (t.height, t.width), list(t.cats))
    instances = {c: boxes for c, (m, boxes) in masks.items() if boxes}
    present = [c for c in t.cats if int(masks[c][0].sum()) >= cfg.min_area]
    rec["too_small"] = [c for c in t.cats if c not in present]
    rng = np.random.default_rng([cfg.seed, t.image, t.col, t.row])
    tile_meta = {"image": info.name, "col": t.col, "row": t.row, "width": t.width, "height": t.height,
                 "bounds": list(t.bounds)}
    image: Any = rgb
    for cat in present + t.empties:
        empty = cat in t.empties
        mask = np.zeros((t.height, t.width), bool) if empty else masks[cat][0]
        qs = draw_questions(rng, plan.questions[cat], cfg.explicit, cfg.implicit)
        entry_id = f"{t.key}-{slug(cat)}"
        qa = {"questions": [q for q, _ in qs], "answer": [] if empty else [cat],
              "source": {"category": cat, "empty": empty, "kinds": [k for _, k in qs], "instances": instances,
                         "tile": tile_meta, "size": [t.width, t.height]}}
        image = write_entry(root, t.split, entry_id, image, mask, qa)
        rec["entries"].append({"id": entry_id, "category": cat, "empty": empty, "questions": len(qs),
                               "area": round(float(mask.mean()), 6)})
    if not rec["entries"]:
        rec["skipped"] = "targets_too_small"
    return rec


def _read_journal(path: Path) -> dict[str, dict]:
    done = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                break  # a line cut by an interruption: that tile is redone
            done[rec["key"]] = rec
    return done


def _summary(plan: Plan, records: dict[str, dict], fingerprint: str, sources: dict, seconds: float) -> dict:
    cfg = plan.config
    counts: dict[str, Any] = {}
    for split in SPLITS:
        recs = [r for r in records.values() if r["split"] == split]
        ents = [e for r in recs for e in r["entries"]]
        cats: dict[str, dict[str, int]] = {}
        for e in ents:
            c = cats.setdefault(e["category"], {"images": 0, "empty": 0})
            c["images"] += 1
            c["empty"] += int(e["empty"])
        counts[split] = {"tiles": sum(1 for r in recs if r["entries"]), "images": len(ents),
                         "questions": sum(e["questions"] for e in ents), "empty": sum(e["empty"] for e in ents),
                         "categories": dict(sorted(cats.items()))}
    skipped = [{"tile": t.key, "image": plan.infos[t.image].name, "col": t.col, "row": t.row, "split": t.split,
                "reason": t.dropped} for t in plan.tiles if t.dropped]
    by_key = {t.key: t for t in plan.tiles}
    for r in records.values():
        if r.get("skipped"):
            t = by_key[r["key"]]
            skipped.append({"tile": t.key, "image": plan.infos[t.image].name, "col": t.col, "row": t.row,
                            "split": t.split, "reason": r["skipped"], **({"nodata": r["nodata"]} if "nodata" in r else {})})
    too_small = Counter(c for r in records.values() for c in r["too_small"])
    reasons = Counter(s["reason"] for s in skipped)
    crs = plan.infos[0].crs
    return {
        "builder": "think2seg dataset build", "version": VERSION, "format": "earthreason", "fingerprint": fingerprint,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seconds": round(seconds, 2),
        "sources": [i.provenance() for i in plan.infos],
        "crs": crs.to_string(), "crs_wkt": crs.to_wkt(),
        "labels": {"path": str(plan.labels.path), "sha256": sources["labels"], "class_field": cfg.class_field,
                   "crs": plan.labels.crs.to_string(), **plan.labels.report, "outside_every_image": plan.outside},
        "questions": {"path": str(cfg.questions), "sha256": sources["questions"],
                      "categories": sorted(plan.questions)},
        "seed": cfg.seed,
        "tile": {"size": cfg.tile, "overlap": cfg.overlap, "size_px": plan.tile_px, "overlap_px": plan.overlap_px,
                 "bands": cfg.bands},
        "split": {"by": cfg.split_by, "ratios": cfg.ratios, "block_size": plan.block_size,
                  "groups": dict(sorted(plan.split_of.items()))},
        "options": cfg.options(),
        "counts": counts,
        "empty_targets": {s: {**plan.empty_targets.get(s, {}), "written": counts[s]["empty"]} for s in SPLITS},
        "skipped": {"counts": {**dict(sorted(reasons.items())), "unlabelled_unused": plan.unused()},
                    "categories_too_small": dict(sorted(too_small.items())), "tiles": skipped},
    }


def _split_map_tiles(plan: Plan, records: dict[str, dict]) -> list[dict]:
    out = []
    for t in plan.tiles:
        r = records.get(t.key)
        status = t.dropped or (r and (r.get("skipped") or "written"))
        if status:
            out.append({"id": t.key, "split": t.split, "status": status, "bounds": t.bounds})
    return out


def build_dataset(cfg: BuildConfig) -> dict[str, Any]:
    """Build (or resume, or find already built) the dataset of ``cfg`` (module doc); returns the
    ``dataset.json`` content. UserError naming the file or option for bad input, before anything is written."""
    from rasterio import Env

    plan = make_plan(cfg)
    fingerprint, sources = _fingerprint(plan)
    out = Path(cfg.out)
    existing = _check_out(out, fingerprint)
    if existing is not None:
        existing["already_built"] = True
        return existing
    partial = out.parent / f".{out.name}.partial"
    state = {"fingerprint": fingerprint}
    if partial.is_dir():
        try:
            same = json.loads((partial / _STATE).read_text(encoding="utf-8")) == state
        except (OSError, json.JSONDecodeError):
            same = False
        if not same:
            shutil.rmtree(partial)
    make_dirs(partial)
    (partial / _STATE).write_text(json.dumps(state), encoding="utf-8")
    records = _read_journal(partial / _JOURNAL)
    todo = [t for t in plan.active() if t.key not in records]
    t0 = time.perf_counter()
    scene, scene_index = None, -1
    try:
        with Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), open(partial / _JOURNAL, "a", encoding="utf-8") as journal:
            for t in tqdm(todo, desc="dataset build", unit="tile", disable=not cfg.progress,
                          initial=len(plan.active()) - len(todo), total=len(plan.active())):
                if t.image != scene_index:
                    if scene is not None:
                        scene.close()
                    scene, scene_index = open_scene(plan.infos[t.image].path, cfg.bands), t.image
                rec = _write_tile(plan, t, scene, partial)
                records[t.key] = rec
                journal.write(json.dumps(rec) + "\n")
                journal.flush()
    finally:
        if scene is not None:
            scene.close()
    summary = _summary(plan, records, fingerprint, sources, time.perf_counter() - t0)
    write_split_map(partial / SPLIT_MAP_FILE, plan.groups, plan.split_of, _split_map_tiles(plan, records),
                    plan.infos[0].crs)
    (partial / DATASET_FILE).write_text(json.dumps(summary, indent=1), encoding="utf-8")
    for f in (_STATE, _JOURNAL):
        (partial / f).unlink()
    if out.is_dir():
        out.rmdir()  # empty (checked above)
    os.replace(partial, out)
    return summary
