"""EarthReason loader (also reads SynthEarth's ``earthreason`` format).

>>> ds = load_earthreason("data/EarthReason", "test", questions="all")    # doctest: +SKIP

Layout (one binary mask per image, value > 0 = target)::

    <root>/<split>/images/<id>.<jpg|png|...>
    <root>/<split>/labels/<id>.png
    <root>/<split>/QAs/<id>.json        # {"questions": [...], "answer": [...]}

QA files index the split. Every image is decoded (``verify=True``) so truncated files are caught here,
and every mask is read: an all-zero mask marks an empty target, cross-checked with ``answer == []``
(a disagreement is kept, the mask wins, and it is counted as ``answer_mismatch`` in the summary).
Sample ids are ``f"{image_id}:{q_index}"`` (q_index = position in ``questions``).

Writers (SynthEarth and ``think2seg dataset build`` write through them)::

    >>> write_entry("data/mine", "train", "tile_0_0-lake", image, mask, {"questions": [...], "answer": [...]})  # doctest: +SKIP

A QA file may carry one annotation block the format lacks, under ``"synth"`` (SynthEarth) or ``"source"``
(a dataset built from your own imagery): ``category``, ``kinds`` (implicit/explicit per question) and
``instances`` (category -> ``[[x1, y1, x2, y2], ...]`` instance boxes, inclusive image pixels). The loader
reads it into ``Entry.category``, ``Entry.kinds`` and ``extra["instances"]`` / ``extra["present"]``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from think2seg.core.io import IMAGE_EXTS, find_image, image_size, read_json, read_mask, write_mask, write_rgb
from think2seg.data.dataset import Dataset, Entry, Issues, build, collect
from think2seg.data.formats import SPLITS

ANNOTATION_KEYS = ("synth", "source")  # the QA file's optional annotation block (module doc)
FOLDERS = ("images", "labels", "QAs")


def make_dirs(root: str | Path, splits=SPLITS) -> None:
    """Create ``root/<split>/{images,labels,QAs}`` for every split."""
    for split in splits:
        for d in FOLDERS:
            (Path(root) / split / d).mkdir(parents=True, exist_ok=True)


def write_entry(root: str | Path, split: str, image_id: str, image: np.ndarray | Path, mask: np.ndarray,
                qa: dict, ext: str = ".jpg") -> Path:
    """Write one EarthReason entry: ``images/<id><ext>`` (an (H, W, 3) uint8 array, or the path of an
    image file already written, hard-linked when the file system allows, else copied),
    ``labels/<id>.png`` ((H, W) bool mask) and ``QAs/<id>.json``. Returns the image path."""
    d = Path(root) / split
    if isinstance(image, np.ndarray):
        dst = d / "images" / f"{image_id}{ext}"
        write_rgb(dst, image)
    else:
        dst = d / "images" / f"{image_id}{Path(image).suffix}"
        dst.unlink(missing_ok=True)
        try:
            os.link(image, dst)
        except OSError:
            shutil.copyfile(image, dst)
    write_mask(d / "labels" / f"{image_id}.png", mask)
    with open(d / "QAs" / f"{image_id}.json", "w", encoding="utf-8") as f:
        json.dump(qa, f)
    return dst


def _entry(qa_path: Path, images: Path, labels: Path, issues: Issues, verify: bool) -> Entry | None:
    image_id = qa_path.stem
    qa = read_json(qa_path)
    if not isinstance(qa, dict) or "questions" not in qa:
        issues.fail(qa_path, "QA file lacks a 'questions' list", "bad_qa")
        return None
    qs = qa["questions"]
    if not isinstance(qs, list) or not qs or not all(isinstance(q, str) and q.strip() for q in qs):
        issues.fail(qa_path, "'questions' must be a non-empty list of non-empty strings", "bad_qa")
        return None
    image_path = find_image(images, image_id)
    if image_path is None:
        issues.fail(images / f"{image_id}.*", f"no image for QA file {qa_path.name}", "missing")
        return None
    mask_path = find_image(labels, image_id)
    if mask_path is None:
        issues.fail(labels / f"{image_id}.png", "file not found", "missing")
        return None
    w, h = image_size(image_path, verify=verify)
    mask = read_mask(mask_path)
    if mask.shape != (h, w):
        issues.fail(mask_path, f"mask size {mask.shape[1]}x{mask.shape[0]} does not match image "
                    f"{image_path} {w}x{h}", "size_mismatch")
        return None
    empty = not bool(mask.any())
    answer = qa.get("answer")
    if answer is not None and (answer == []) != empty:
        issues.warn(qa_path, "mask is all zero but answer is not []" if empty
                    else "answer is [] but the mask is not empty")
    synth = next((qa[k] for k in ANNOTATION_KEYS if isinstance(qa.get(k), dict)), None)
    kinds = synth.get("kinds") if synth else None
    extra = {"answer": answer} if answer is not None else {}
    if synth:
        extra["instances"] = synth.get("instances", {}).get(synth.get("category"), [])
        extra["present"] = synth.get("instances", {})  # every category in the image -> its boxes
    return Entry(
        key=image_id, image_id=image_id, image_path=image_path, mask_path=mask_path, questions=list(qs),
        question_ids=[str(i) for i in range(len(qs))], empty=empty, area=float(mask.mean()), size=(w, h),
        category=synth.get("category") if synth else None,
        kinds=list(kinds) if isinstance(kinds, list) and len(kinds) == len(qs) else None, extra=extra,
    )


def load_earthreason(
    root: str | Path, split: str, *, questions: str = "all", seed: int = 0, on_error: str = "raise",
    question_kind: str | None = None, limit: int | None = None, verify: bool = True, progress: bool = False,
) -> Dataset:
    """Samples of ``root/split`` (see module docstring); ``limit`` stops reading once enough samples exist."""

    root = Path(root)
    issues = Issues(on_error)
    d = root / split
    entries: list[Entry] = []
    folders = [d / f for f in FOLDERS]
    missing = [f for f in folders if not f.is_dir()]
    for f in missing:
        issues.fail(f, "folder not found (expected <root>/<split>/{images,labels,QAs})", "missing")
    if not missing:
        images, labels, qa_dir = folders
        qa_files = sorted(qa_dir.glob("*.json"))
        have_qa = {p.stem for p in qa_files}
        for p in sorted(images.iterdir()):
            if p.suffix.lower() in IMAGE_EXTS and p.stem not in have_qa:
                issues.fail(p, f"image has no QA file {qa_dir / (p.stem + '.json')}", "no_qa")
        entries = collect(qa_files, lambda q: _entry(q, images, labels, issues, verify), issues,
                          desc=f"earthreason {split}", progress=progress, questions=questions, seed=seed,
                          question_kind=question_kind, limit=limit)
    return build(entries, dataset="earthreason", split=split, root=root, issues=issues, questions=questions,
                 seed=seed, question_kind=question_kind, limit=limit)
