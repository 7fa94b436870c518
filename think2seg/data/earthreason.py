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
"""

from __future__ import annotations

from pathlib import Path

from think2seg.core.io import IMAGE_EXTS, find_image, image_size, read_json, read_mask
from think2seg.data.dataset import Dataset, Entry, Issues, build, collect


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
    synth = qa.get("synth") if isinstance(qa.get("synth"), dict) else None
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
    folders = [d / "images", d / "labels", d / "QAs"]
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
