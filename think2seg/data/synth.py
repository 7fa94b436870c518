"""SynthEarth: a procedural remote-sensing reasoning-segmentation dataset, written in the real formats.

>>> summary = generate("/tmp/se", n_train=12, n_val=6, n_test=6, seed=0, size=128)   # doctest: +SKIP
>>> load_dataset("earthreason:/tmp/se", "test")                                      # doctest: +SKIP
>>> root = ensure_default()        # the embedded default (data/synthearth/...), generated once, reused

``think2seg synth --format earthreason --out DIR --train N --val N --test N --seed S [--size PX]`` is the
command-line form. Formats:

- ``earthreason``: ``<split>/{images/<id>.jpg, labels/<id>.png, QAs/<id>.json}``; one target category
  per image (semantic mask = all its instances), 3-5 implicit/explicit questions, ``answer == []`` and
  an all-zero mask for about 2.5 % of images (the question asks for an absent category). The QA json
  also has a ``"synth"`` key (category, kinds, instance boxes per category) that loaders never need.
- ``rrsisd``: ``rrsisd/refs(unc).p`` + ``rrsisd/instances.json`` (COCO, polygon and RLE masks) +
  ``images/rrsisd/JPEGImages/``; instance-level referring expressions.
- ``refsegrs``: ``images/<id>.tif``, ``masks/<id>.tif``, ``output_phrase_<split>.txt``; category-level phrases.
- ``risbench``: ``img_rgb/<file>``, ``mask/<file>``, ``output_phrase_<split>.txt``; instance-level phrases.

Every image is drawn from ``np.random.default_rng([seed, split, index])``, so the output does not depend
on the number of worker processes. ``synth_meta.json`` at the root records the parameters.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm.auto import tqdm

from think2seg.core.io import DataError, data_error, write_mask, write_rgb
from think2seg.data.earthreason import FOLDERS, write_entry
from think2seg.data.formats import FORMATS, SPLITS
from think2seg.data.questions import make_questions, referring_expression, semantic_phrase
from think2seg.data.scenes import CATEGORIES, CATEGORY_KEYS, render_scene

SPLIT_CODE = {"train": 1, "val": 2, "test": 3}
META_FILE = "synth_meta.json"
VERSION = 1
DEFAULT = {"format": "earthreason", "n_train": 1000, "n_val": 200, "n_test": 200, "seed": 0, "size": 256}
"""The embedded default dataset (:func:`ensure_default`)."""


# ------------------------------------------------------------------------------------------ per image
def _earthreason(out: Path, split: str, i: int, seed: int, size: int, cat: str, empty: bool) -> dict:
    rng = np.random.default_rng([seed, SPLIT_CODE[split], i])
    scene = render_scene(rng, size, target=None if empty else cat, absent=cat if empty else None)
    mask = np.zeros((size, size), bool) if empty else scene.mask(cat)
    qs = make_questions(rng, cat, int(rng.integers(2, 4)), int(rng.integers(1, 3)))
    image_id = f"{split}_{i:05d}"
    qa = {
        "questions": [q for q, _ in qs],
        "answer": [] if empty else [CATEGORIES[cat].plural],
        "synth": {
            "category": cat,
            "empty": empty,
            "kinds": [k for _, k in qs],
            "instances": {c: [list(b) for b in scene.boxes(c)] for c in scene.categories},
            "size": size,
        },
    }
    write_entry(out, split, image_id, scene.image, mask, qa)
    return {"id": image_id, "category": cat, "empty": empty, "questions": len(qs), "area": float(mask.mean())}


def _pick_referents(rng, scene, cat: str, size: int, max_refs: int) -> list[tuple[int, str]]:
    """``[(instance index, expression)]`` for up to ``max_refs`` instances, preferring ``cat``."""
    cats = [cat] + [c for c in scene.categories if c != cat]
    for c in cats:
        idx = [k for k, inst in enumerate(scene.instances) if inst.category == c]
        same = [scene.instances[k] for k in idx]
        out = []
        for j in rng.permutation(len(idx)):
            expr = referring_expression(rng, int(j), same, size)
            if expr is not None:
                out.append((idx[int(j)], expr))
            if len(out) == max_refs:
                break
        if out:
            return out
    return []


def _rrsisd(out: Path, split: str, i: int, seed: int, size: int, cat: str, num: int) -> dict:
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng([seed, SPLIT_CODE[split], i])
    scene = render_scene(rng, size, target=cat)
    file_name = f"{num:05d}.jpg"
    write_rgb(out / "images" / "rrsisd" / "JPEGImages" / file_name, scene.image)
    anns, refs = [], []
    for k, (inst_index, expr) in enumerate(_pick_referents(rng, scene, cat, size, 2)):
        m = scene.instance_mask(inst_index)
        ann_id = num * 10 + k
        if ann_id % 2 == 0:  # polygon
            contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            seg: Any = [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]
        else:  # compressed RLE
            rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            seg = {"size": [size, size], "counts": rle["counts"].decode("ascii")}
        x1, y1, x2, y2 = scene.instances[inst_index].box
        category = scene.instances[inst_index].category
        anns.append({
            "id": ann_id, "image_id": num, "category_id": CATEGORY_KEYS.index(category) + 1,
            "segmentation": seg, "area": int(m.sum()), "bbox": [x1, y1, x2 - x1 + 1, y2 - y1 + 1], "iscrowd": 0,
        })
        sents = [expr]
        alt = referring_expression(rng, [j for j, s in enumerate(scene.instances) if s.category == category]
                                   .index(inst_index), [s for s in scene.instances if s.category == category],
                                   size)
        if alt and alt != expr:
            sents.append(alt)
        refs.append({
            "ref_id": ann_id, "ann_id": ann_id, "image_id": num, "split": split, "file_name": file_name,
            "category_id": CATEGORY_KEYS.index(category) + 1,
            "sentences": [{"sent": s, "raw": s, "tokens": s.split(), "sent_id": ann_id * 10 + j}
                          for j, s in enumerate(sents)],
            "sent_ids": [ann_id * 10 + j for j in range(len(sents))],
        })
    image = {"id": num, "file_name": file_name, "height": size, "width": size}
    return {"id": file_name, "image": image, "annotations": anns, "refs": refs,
            "questions": sum(len(r["sentences"]) for r in refs), "empty": False,
            "area": float(np.mean([a["area"] for a in anns]) / size**2) if anns else 0.0}


def _refsegrs(out: Path, split: str, i: int, seed: int, size: int, cat: str, num: int) -> dict:
    rng = np.random.default_rng([seed, SPLIT_CODE[split], i])
    scene = render_scene(rng, size, target=cat)
    mask = scene.mask(cat)
    image_id = str(num)
    write_rgb(out / "images" / f"{image_id}.tif", scene.image)
    write_mask(out / "masks" / f"{image_id}.tif", mask)
    return {"id": image_id, "lines": [f"{image_id} {semantic_phrase(rng, cat)}"], "category": cat,
            "questions": 1, "empty": False, "area": float(mask.mean())}


def _risbench(out: Path, split: str, i: int, seed: int, size: int, cat: str, num: int) -> dict:
    rng = np.random.default_rng([seed, SPLIT_CODE[split], i])
    scene = render_scene(rng, size, target=cat)
    (inst_index, expr), = _pick_referents(rng, scene, cat, size, 1) or [(None, None)]
    file_name = f"{num:05d}.png"
    if inst_index is None:  # nothing unambiguous to refer to: fall back to the whole category
        mask, expr, category = scene.mask(cat), semantic_phrase(rng, cat), cat
    else:
        mask, category = scene.instance_mask(inst_index), scene.instances[inst_index].category
    write_rgb(out / "img_rgb" / file_name, scene.image)
    write_mask(out / "mask" / file_name, mask)
    lines = [f"{file_name} {expr}"]
    if inst_index is not None:
        same = [s for s in scene.instances if s.category == category]
        j = [k for k, s in enumerate(scene.instances) if s.category == category].index(inst_index)
        alt = referring_expression(rng, j, same, size)
        if alt and alt != expr:
            lines.append(f"{file_name} {alt}")
    return {"id": file_name, "lines": lines, "category": category, "questions": len(lines), "empty": False,
            "area": float(mask.mean())}


def _job(args: tuple) -> dict:
    fmt, out, split, i, seed, size, cat, empty, num = args
    if fmt == "earthreason":
        return _earthreason(out, split, i, seed, size, cat, empty)
    return {"rrsisd": _rrsisd, "refsegrs": _refsegrs, "risbench": _risbench}[fmt](
        out, split, i, seed, size, cat, num
    )


def _init_worker() -> None:
    cv2.setNumThreads(1)


# --------------------------------------------------------------------------------------------- driver
def _plan(seed: int, split: str, n: int, empty_rate: float) -> tuple[list[str], set[int]]:
    """Target category per image (balanced over categories) and the indices of empty-target images."""
    rng = np.random.default_rng([seed, SPLIT_CODE[split], 0xC0FFEE])
    order = [CATEGORY_KEYS[k] for k in rng.permutation(len(CATEGORY_KEYS))]
    cats = [order[i % len(order)] for i in range(n)]
    cats = [cats[k] for k in rng.permutation(n)]
    n_empty = max(1 if n >= 4 and empty_rate > 0 else 0, round(empty_rate * n))
    return cats, {int(k) for k in rng.choice(n, size=min(n_empty, n), replace=False)}


def _dirs(out: Path, fmt: str) -> list[Path]:
    if fmt == "earthreason":
        return [out / s / d for s in SPLITS for d in FOLDERS]
    return {
        "rrsisd": [out / "rrsisd", out / "images" / "rrsisd" / "JPEGImages"],
        "refsegrs": [out / "images", out / "masks"],
        "risbench": [out / "img_rgb", out / "mask"],
    }[fmt]


def generate(
    out_dir: str | Path,
    *,
    format: str = "earthreason",
    n_train: int = 800,
    n_val: int = 100,
    n_test: int = 100,
    seed: int = 0,
    size: int = 256,
    empty_rate: float = 0.025,
    workers: int | None = None,
    progress: bool = True,
) -> dict:
    """Write a SynthEarth dataset in ``format`` under ``out_dir``; returns a summary dict with per-split
    ``images``, ``questions`` (samples for the referring formats), ``empty`` and the time taken.
    ``workers=None`` uses up to ``os.cpu_count()`` processes for more than 64 images, else none."""

    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; one of {', '.join(FORMATS)}")
    if size < 64:
        raise ValueError(f"size={size}: SynthEarth needs at least 64 px")
    out = Path(out_dir)
    counts = {"train": n_train, "val": n_val, "test": n_test}
    for d in _dirs(out, format):
        d.mkdir(parents=True, exist_ok=True)
    jobs, num = [], 0
    for split in SPLITS:
        cats, empties = _plan(seed, split, counts[split], empty_rate if format == "earthreason" else 0.0)
        for i in range(counts[split]):
            jobs.append((format, out, split, i, seed, size, cats[i], i in empties, num))
            num += 1
    total = len(jobs)
    n_workers = (os.cpu_count() or 1) if workers is None else workers
    if workers is None and total <= 64:
        n_workers = 0
    t0 = time.perf_counter()
    bar = dict(total=total, desc=f"SynthEarth {format}", unit="img", disable=not progress)
    if n_workers > 1:
        # not "fork": OpenCV's thread pool in a parent that already used cv2 deadlocks forked children
        ctx = multiprocessing.get_context("forkserver" if sys.platform != "win32" else "spawn")
        if ctx.get_start_method() == "forkserver":
            ctx.set_forkserver_preload(["think2seg.data.synth"])
        with ctx.Pool(n_workers, initializer=_init_worker) as pool:
            results = list(tqdm(pool.imap(_job, jobs, chunksize=8), **bar))
    else:
        results = [_job(j) for j in tqdm(jobs, **bar)]
    seconds = time.perf_counter() - t0
    by_split: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for job, r in zip(jobs, results, strict=True):
        by_split[job[2]].append(r)
    _write_index(out, format, by_split)
    splits = {
        s: {
            "images": sum(1 for r in rs if r["questions"] > 0),
            "questions": sum(r["questions"] for r in rs),
            "empty": sum(bool(r["empty"]) for r in rs),
        }
        for s, rs in by_split.items()
    }
    meta = {
        "generator": "SynthEarth", "version": VERSION, "format": format, "seed": seed, "size": size,
        "empty_rate": empty_rate, "n": counts, "splits": splits, "categories": CATEGORY_KEYS,
    }
    if format in ("refsegrs", "risbench"):  # what the real format lacks: category per image file
        meta["image_categories"] = {s: {r["id"]: r["category"] for r in rs} for s, rs in by_split.items()}
    with open(out / META_FILE, "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
    return {"format": format, "out": str(out), "seed": seed, "size": size, "splits": splits,
            "images": total, "seconds": round(seconds, 2), "images_per_second": round(total / max(seconds, 1e-9), 1)}


def _write_index(out: Path, fmt: str, by_split: dict[str, list[dict]]) -> None:
    """The files that list a whole split (refer pickle + COCO json, phrase files)."""
    if fmt == "rrsisd":
        images, anns, refs = [], [], []
        for s in SPLITS:
            for r in by_split[s]:
                images.append(r["image"])
                anns += r["annotations"]
                refs += r["refs"]
        cats = [{"id": k + 1, "name": c, "supercategory": "synth"} for k, c in enumerate(CATEGORY_KEYS)]
        with open(out / "rrsisd" / "instances.json", "w", encoding="utf-8") as f:
            json.dump({"images": images, "annotations": anns, "categories": cats}, f)
        with open(out / "rrsisd" / "refs(unc).p", "wb") as f:
            pickle.dump(refs, f, protocol=2)
    elif fmt in ("refsegrs", "risbench"):
        for s in SPLITS:
            lines = [line for r in by_split[s] for line in r["lines"]]
            with open(out / f"output_phrase_{s}.txt", "w", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in lines))


def read_meta(root: str | Path) -> dict | None:
    """The ``synth_meta.json`` of a SynthEarth root, or None for other data."""
    p = Path(root) / META_FILE
    if not p.is_file():
        return None
    try:
        with open(p, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise data_error(p, f"not valid JSON ({e})", "bad_json") from e


def default_root() -> Path:
    """``$THINK2SEG_SYNTH_DIR``, else ``data/synthearth`` in the repository (git-ignored)."""
    env = os.environ.get("THINK2SEG_SYNTH_DIR")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    base = repo if (repo / "pyproject.toml").is_file() else Path.cwd()
    return base / "data" / "synthearth"


def ensure_default(
    root: str | Path | None = None,
    *,
    format: str = DEFAULT["format"],
    n_train: int = DEFAULT["n_train"],
    n_val: int = DEFAULT["n_val"],
    n_test: int = DEFAULT["n_test"],
    seed: int = DEFAULT["seed"],
    size: int = DEFAULT["size"],
    progress: bool = True,
) -> Path:
    """Path of a SynthEarth dataset with these parameters, generated on first use and reused after.

    Without ``root`` it lives in ``default_root()/<format>-<size>px-seed<seed>-<train>-<val>-<test>``.
    An explicit ``root`` holding a dataset with other parameters is an error (nothing is deleted).
    Generation goes to a temporary sibling folder renamed at the end, so an interrupted run or two
    processes at once never leave a half-written dataset behind.
    """
    want = {"format": format, "seed": seed, "size": size, "n": {"train": n_train, "val": n_val, "test": n_test}}
    if root is None:
        root = default_root() / f"{format}-{size}px-seed{seed}-{n_train}-{n_val}-{n_test}"
    root = Path(root)
    meta = read_meta(root)
    if meta is not None:
        have = {k: meta.get(k) for k in want}
        if have == want and meta.get("version") == VERSION:
            return root
        raise data_error(root / META_FILE, f"holds a SynthEarth dataset with other parameters ({have}, "
                         f"wanted {want}); remove it or choose another folder", "mismatch")
    if root.exists() and any(root.iterdir()):
        raise data_error(root, "exists, is not empty and is not a SynthEarth dataset", "mismatch")
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    generate(tmp, format=format, n_train=n_train, n_val=n_val, n_test=n_test, seed=seed, size=size,
             progress=progress)
    try:
        if root.exists():
            root.rmdir()  # empty (checked above)
        os.replace(tmp, root)
    except OSError:
        if read_meta(root) is None:  # not another process finishing first: a real failure
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return root


__all__ = ["DEFAULT", "FORMATS", "DataError", "default_root", "ensure_default", "generate", "read_meta"]
