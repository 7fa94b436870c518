"""Referring-segmentation benchmarks (zero-shot transfer): RRSIS-D, RefSegRS, RISBench.

>>> ds = load_rrsisd("data/RRSIS-D", "test", questions="first")     # (benchmark protocol)  # doctest: +SKIP
>>> ds = load_refsegrs("data/RefSegRS", "test")                     # doctest: +SKIP
>>> ds = load_risbench("data/RISBench", "test")                     # doctest: +SKIP

Layouts:

- RRSIS-D: ``rrsisd/refs(unc).p`` (refer-style pickle: ref_id, ann_id, image_id, category_id, split,
  sentences[{sent, ...}]), ``rrsisd/instances.json`` (COCO; polygon or RLE segmentations, decoded with
  pycocotools), images in ``images/rrsisd/JPEGImages/``. One entry per ref; its sentences are the
  questions; sample id ``f"{ref_id}:{sentence_index}"``. The pickle is read by a restricted unpickler
  (:func:`read_plain_pickle`) that builds only plain containers and scalars: a crafted file is refused
  with a :class:`DataError` naming it, and none of its code runs.
- RefSegRS: ``images/<id>.tif``, ``masks/<id>.tif`` (channel 0 > 0), ``output_phrase_<split>.txt``
  with lines ``<id> <phrase>``.
- RISBench: ``img_rgb/<file>``, ``mask/<file>`` (same name), ``output_phrase_<split>.txt`` with lines
  ``<file> <phrase>``.

For the phrase formats the lines of one image are its questions and the sample id is
``f"{image_id}:{line_number}"`` (1-based line in the phrase file). None of these formats has empty
targets; an all-zero mask is still reported as ``gt_empty``.
"""

from __future__ import annotations

import functools
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from think2seg.core.io import DataError, data_error, find_image, image_size, read_json, read_mask
from think2seg.data.dataset import Dataset, Entry, Issues, build, collect
from think2seg.data.synth import read_meta


# ------------------------------------------------------------------------------------------- RRSIS-D
def coco_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    """(H, W) bool from a COCO segmentation: polygon list, uncompressed RLE or compressed RLE."""
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):
        if not segmentation:
            return np.zeros((height, width), bool)
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    elif isinstance(segmentation, dict) and "counts" in segmentation:
        counts = segmentation["counts"]
        rle = {"size": segmentation["size"], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    else:
        raise ValueError(f"not a COCO segmentation: {type(segmentation).__name__}")
    m = mask_utils.decode(rle)
    if m.ndim == 3:
        m = m.any(axis=2)
    return m.astype(bool)


def _first_existing(*paths: Path) -> Path | None:
    return next((p for p in paths if p.exists()), None)


def _rrsisd_files(root: Path, issues: Issues) -> tuple[Path, Path, Path] | None:
    ann_dir = _first_existing(root / "rrsisd", root / "rrssid", root)
    refs = None
    if ann_dir is not None:
        refs = _first_existing(ann_dir / "refs(unc).p", *sorted(ann_dir.glob("refs*.p")))
    if refs is None:
        issues.fail(root / "rrsisd" / "refs(unc).p", "file not found", "missing")
        return None
    inst = refs.parent / "instances.json"
    img_dir = _first_existing(root / "images" / "rrsisd" / "JPEGImages", root / "JPEGImages", root / "images")
    if img_dir is None:
        issues.fail(root / "images" / "rrsisd" / "JPEGImages", "folder not found", "missing")
        return None
    return refs, inst, img_dir


# What a refer-style annotation pickle may name besides the opcode-built types (list, dict, tuple, str,
# bytes, int, float, bool, None): the containers that protocols 0-2 rebuild by calling their class.
PLAIN_PICKLE_GLOBALS = frozenset({
    ("builtins", "set"), ("builtins", "frozenset"), ("__builtin__", "set"), ("__builtin__", "frozenset"),
    ("collections", "OrderedDict"),
})


class _PlainUnpickler(pickle.Unpickler):
    """Refuses every global outside :data:`PLAIN_PICKLE_GLOBALS`, so no callable of the file's choosing runs."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in PLAIN_PICKLE_GLOBALS:
            return {"set": set, "frozenset": frozenset, "OrderedDict": OrderedDict}[name]
        raise pickle.UnpicklingError(f"refused global {module}.{name}: only plain containers and scalars are read")


def read_plain_pickle(path: str | Path) -> Any:
    """The object in a pickle made only of plain containers and scalars, or a :class:`DataError` naming
    ``path`` (missing, torn, or naming any class or function: such a file is refused before it can run)."""
    try:
        with open(path, "rb") as f:
            return _PlainUnpickler(f, encoding="latin1").load()
    except FileNotFoundError as e:
        raise data_error(path, "file not found", "missing") from e
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, ImportError, IndexError, TypeError,
            KeyError, OverflowError, MemoryError) as e:
        raise data_error(path, f"unreadable annotations ({type(e).__name__}: {e})", "bad_annotation") from e


def _read_refs(refs_path: Path) -> list:
    refs = read_plain_pickle(refs_path)
    if not isinstance(refs, list):
        raise data_error(refs_path, f"unreadable annotations (expected a list of refs, got {type(refs).__name__})",
                         "bad_annotation")
    return refs


def rrsisd_splits(root: str | Path) -> list[str]:
    """The ``split`` values of an RRSIS-D refs pickle, in order of first appearance."""
    files = _rrsisd_files(Path(root), Issues("raise"))
    assert files is not None  # Issues("raise") raised otherwise
    return list(dict.fromkeys(str(r["split"]) for r in _read_refs(files[0]) if isinstance(r, dict) and "split" in r))


def load_rrsisd(
    root: str | Path, split: str, *, questions: str = "all", seed: int = 0, on_error: str = "raise",
    question_kind: str | None = None, limit: int | None = None, verify: bool = True, progress: bool = False,
) -> Dataset:
    """RRSIS-D refs of ``split`` (the benchmark protocol is ``questions="first"``)."""

    root, issues, entries = Path(root), Issues(on_error), []
    files = _rrsisd_files(root, issues)
    if files is not None:
        refs_path, inst_path, img_dir = files
        refs, anns, images, cats = [], {}, {}, {}
        try:
            refs = _read_refs(refs_path)
            coco = read_json(inst_path)
            images = {im["id"]: im for im in coco["images"]}
            anns = {a["id"]: a for a in coco["annotations"]}
            cats = {c["id"]: c["name"] for c in coco.get("categories", [])}
        except DataError as err:
            issues.add(err)
            refs = []
        except (KeyError, TypeError) as e:
            issues.fail(inst_path, f"not a COCO instances file ({type(e).__name__}: {e})", "bad_annotation")
            refs = []
        sizes: dict = {}
        mine = [r for r in refs if isinstance(r, dict) and r.get("split") == split]

        def make_entry(ref: dict) -> Entry:
            return _rrsisd_entry(ref, anns, images, cats, img_dir, inst_path, sizes, verify)

        entries = collect(mine, make_entry, issues, desc=f"rrsisd {split}", progress=progress,
                          questions=questions, seed=seed, question_kind=question_kind, limit=limit)
    return build(entries, dataset="rrsisd", split=split, root=root, issues=issues, questions=questions,
                 seed=seed, question_kind=question_kind, limit=limit)


def _rrsisd_entry(ref, anns, images, cats, img_dir, inst_path, sizes, verify) -> Entry:
    ref_id = ref.get("ref_id")
    ann = anns.get(ref.get("ann_id"))
    if ann is None:
        raise data_error(inst_path, f"annotation {ref.get('ann_id')} of ref {ref_id} not found", "bad_annotation")
    info = images.get(ann.get("image_id", ref.get("image_id")))
    if info is None:
        raise data_error(inst_path, f"image {ann.get('image_id')} of ref {ref_id} not found", "bad_annotation")
    sents = [s.get("sent") or s.get("raw") for s in ref.get("sentences", []) if isinstance(s, dict)]
    sents = [s for s in sents if isinstance(s, str) and s.strip()]
    if not sents:
        raise data_error(inst_path.parent / "refs(unc).p", f"ref {ref_id} has no sentences", "bad_qa")
    image_path = img_dir / info["file_name"]
    if image_path not in sizes:
        sizes[image_path] = image_size(image_path, verify=verify)
    w, h = sizes[image_path]
    if (w, h) != (info["width"], info["height"]):
        raise data_error(image_path, f"image is {w}x{h} but {inst_path.name} says "
                         f"{info['width']}x{info['height']}", "size_mismatch")
    try:
        mask = coco_mask(ann["segmentation"], h, w)
    except Exception as e:  # pycocotools raises plain Exceptions on malformed input
        raise data_error(inst_path, f"annotation {ann['id']}: bad segmentation ({e})", "bad_annotation") from e
    return Entry(
        key=str(ref_id), image_id=Path(info["file_name"]).stem, image_path=image_path, questions=sents,
        question_ids=[str(i) for i in range(len(sents))],
        mask_loader=functools.partial(coco_mask, ann["segmentation"], h, w),
        empty=not bool(mask.any()), area=float(mask.mean()), size=(w, h),
        category=cats.get(ann.get("category_id", ref.get("category_id"))),
        extra={"ref_id": ref_id, "ann_id": ann["id"]},
    )


# ------------------------------------------------------------------------------------- phrase formats
def _load_phrases(
    fmt: str, root: Path, split: str, image_sub: str, mask_sub: str, *, questions, seed, on_error,
    question_kind, limit, verify, progress,
) -> Dataset:


    root, issues = Path(root), Issues(on_error)
    phrase_file, img_dir, mask_dir = root / f"output_phrase_{split}.txt", root / image_sub, root / mask_sub
    groups: OrderedDict[str, list[tuple[int, str]]] = OrderedDict()
    missing = [p for p in (img_dir, mask_dir) if not p.is_dir()]
    for p in missing:
        issues.fail(p, "folder not found", "missing")
    if not phrase_file.is_file():
        issues.fail(phrase_file, "file not found", "missing")
    elif not missing:
        with open(phrase_file, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                name, _, phrase = line.partition(" ")
                if not phrase.strip():
                    issues.fail(f"{phrase_file}:{n}", "expected '<image> <phrase>'", "bad_qa")
                    continue
                groups.setdefault(name, []).append((n, phrase.strip()))
    meta = read_meta(root) or {}
    cats = (meta.get("image_categories") or {}).get(split, {})

    def make_entry(item: tuple[str, list[tuple[int, str]]]) -> Entry:
        name, lines = item
        stem = Path(name).stem if Path(name).suffix else name
        image_path = img_dir / name if (img_dir / name).is_file() else find_image(img_dir, stem)
        mask_path = mask_dir / name if (mask_dir / name).is_file() else find_image(mask_dir, stem)
        if image_path is None:
            raise data_error(img_dir / name, f"file not found (named in {phrase_file.name})", "missing")
        if mask_path is None:
            raise data_error(mask_dir / name, f"file not found (named in {phrase_file.name})", "missing")
        w, h = image_size(image_path, verify=verify)
        mask = read_mask(mask_path)
        if mask.shape != (h, w):
            raise data_error(mask_path, f"mask size {mask.shape[1]}x{mask.shape[0]} does not match image "
                             f"{image_path} {w}x{h}", "size_mismatch")
        cat = cats.get(name)
        return Entry(
            key=stem, image_id=stem, image_path=image_path, mask_path=mask_path,
            questions=[p for _, p in lines], question_ids=[str(n) for n, _ in lines],
            empty=not bool(mask.any()), area=float(mask.mean()), size=(w, h), category=cat,
            kinds=["explicit"] * len(lines) if cat else None,
        )

    entries = collect(list(groups.items()), make_entry, issues, desc=f"{fmt} {split}", progress=progress,
                      questions=questions, seed=seed, question_kind=question_kind, limit=limit)
    return build(entries, dataset=fmt, split=split, root=root, issues=issues, questions=questions, seed=seed,
                 question_kind=question_kind, limit=limit)


def load_refsegrs(root: str | Path, split: str, **kw) -> Dataset:
    """RefSegRS: ``images/<id>.tif``, ``masks/<id>.tif``, ``output_phrase_<split>.txt``."""
    return _load_phrases("refsegrs", Path(root), split, "images", "masks", **_defaults(kw))


def load_risbench(root: str | Path, split: str, **kw) -> Dataset:
    """RISBench: ``img_rgb/<file>``, ``mask/<file>``, ``output_phrase_<split>.txt``."""
    return _load_phrases("risbench", Path(root), split, "img_rgb", "mask", **_defaults(kw))


def _defaults(kw: dict) -> dict:
    out = {"questions": "all", "seed": 0, "on_error": "raise", "question_kind": None, "limit": None,
           "verify": True, "progress": False}
    unknown = set(kw) - set(out)
    if unknown:
        raise TypeError(f"unexpected keyword arguments: {', '.join(sorted(unknown))}")
    out.update(kw)
    return out
