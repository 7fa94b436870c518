"""``predict``: ask questions about your own image (any size, GeoTIFF or not) -> masks, overlays, JSON, vectors.

>>> from think2seg.predict import PredictConfig, predict
>>> summary = predict(PredictConfig(image="scene.tif", questions=["where could a plane take off?"],
...                                 out="out/scene", vector="map"))                # doctest: +SKIP

Data flow, per question, as in evaluation: the prompter answers on a model-space image, the answer is
parsed (:func:`think2seg.core.parsing.parse_completion`), its prompts are scaled to the image the segmenter
sees (:func:`think2seg.core.geometry.scale_prompts`) and the segmenter returns the union mask. Strategies:

- ``tiles``: every tile (:mod:`.tiling`) is asked every question; an empty answer ``[]`` is allowed and
  leaves the tile empty. Tile masks are merged by the rule of :mod:`.tiling`.
- ``overview``: the whole scene, resampled to the prompter's input size, is asked once; each answered
  instance is segmented on a crop around its box (native pixels when the crop fits in a tile, else
  resampled to the tile size) and pasted back.
- ``refine``: the overview answer picks the tiles to look at (those overlapping an answered box grown by
  the overlap); only they are asked, as in ``tiles``.

The tiles of a batch share one read; all questions of a tile share one ``segmenter.set_image`` (one SAM2
embedding), and a tile whose answers are all empty is never embedded. Outputs: see :mod:`.outputs` and
``docs/predict.md``; ``predictions.json`` holds the think text, answer and prompts (pixel and map
coordinates) of every prompter call.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from think2seg.core.geometry import as_size, resize_mask, scale_prompts
from think2seg.core.parsing import parse_completion
from think2seg.core.styles import DEFAULT_STYLE
from think2seg.core.types import Instance, Sample
from think2seg.data.raster import SceneError, open_scene, read_window
from think2seg.predict.outputs import MaskStore, instance_map, write_overlay
from think2seg.predict.tiling import Tile, merge_tile_mask, tile_grid, tiles_for_boxes
from think2seg.predict.vector import mask_features, write_vectors
from think2seg.prompters import OraclePrompter, build_prompter
from think2seg.segmenters import build_segmenter
from think2seg.segmenters.spec import DEFAULT_SEGMENTER

STRATEGIES = ("tiles", "overview", "refine")
DEFAULT_STRATEGY = "tiles"
MIN_TILE = 256
GDAL_CACHE_MB = 16


@dataclass
class PredictConfig:
    image: str
    questions: list[str]
    out: str
    prompter: str = "tiny"
    segmenter: str = DEFAULT_SEGMENTER
    strategy: str = DEFAULT_STRATEGY
    tile: int | None = None  # scene pixels; default: the prompter's input side, at least MIN_TILE
    overlap: int | None = None  # default: tile // 4
    bands: str | None = None  # "R,G,B" 1-based
    vector: str | None = None  # None | "map" | "pixel"
    truth: str | None = None  # a mask raster aligned with the image, for oracle prompters
    batch_tiles: int = 8
    overlay_side: int = 1024


def load_questions(questions: list[str] | None, path: str | None) -> list[str]:
    """Questions from ``--question`` values and a ``--questions`` file (one a line; blank lines and ``#``
    lines skipped). Raises ``ValueError`` naming the option for an empty one or none at all."""
    out = []
    for k, q in enumerate(questions or []):
        if not q.strip():
            raise ValueError(f"--question #{k + 1} is empty: ask something, e.g. --question 'where could a plane land?'")
        out.append(q.strip())
    if path:
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"--questions {path}: no such file")
        out += [ln.strip() for ln in p.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not out:
        raise ValueError("no question: give --question TEXT (repeatable) or --questions FILE")
    return out


class _Asker:
    """Prompter + parse for image crops of the scene: one :class:`Sample` per (image, question)."""

    def __init__(self, prompter: Any) -> None:
        self.prompter = prompter
        self.size = as_size(prompter.image_size)
        self.style = getattr(prompter, "style", None) or DEFAULT_STYLE

    def ask(self, items: list[tuple[str, np.ndarray, Any, str]]) -> list[dict[str, Any]]:
        """``items``: (id, (h, w, 3) image, truth reader or None, question). Returns per item the parsed
        answer with ``instances`` in the pixel space of that image."""
        samples = [
            Sample(id=i, image_id=i.rsplit(":", 1)[0], question=q, image_path=Path(i), dataset="predict",
                   split="predict", image_loader=(lambda im=im: im), mask_loader=t)
            for i, im, t, q in items
        ]
        texts = [c[0] for c in self.prompter.generate(samples, n=1)]
        out = []
        for (_, im, _, _), text in zip(items, texts, strict=True):
            parsed = parse_completion(text, self.style, self.size)
            h, w = im.shape[:2]
            out.append({
                "completion": text, "think": parsed.think, "answer": parsed.answer,
                "format_ok": parsed.format_ok, "empty": not parsed.instances,
                "instances": scale_prompts(parsed.instances, self.size, (w, h)),
            })
        return out


def _offset(instances: list[Instance], dx: int, dy: int) -> list[Instance]:
    return [Instance(box=(i.box[0] + dx, i.box[1] + dy, i.box[2] + dx, i.box[3] + dy) if i.box else None,
                     positive=tuple((x + dx, y + dy) for x, y in i.positive),
                     negative=tuple((x + dx, y + dy) for x, y in i.negative)) for i in instances]


def _truth_reader(truth: Any, window: Any, out_hw: tuple[int, int] | None = None):
    if truth is None:
        return None
    from rasterio.enums import Resampling

    kw = {"out_shape": out_hw, "resampling": Resampling.nearest} if out_hw else {}
    return lambda: read_window(truth, Path(truth.name), 1, window, **kw) > 0


def _record(ans: dict[str, Any], source: str, window: Any, scene: Any, scene_instances: list[Instance]) -> dict:
    rec = {k: ans[k] for k in ("think", "answer", "completion", "format_ok", "empty")}
    rec["source"], rec["window"] = source, [int(window.col_off), int(window.row_off), int(window.width), int(window.height)]
    rec["instances_px"] = [i.to_json() for i in scene_instances]
    if scene.georeferenced:
        rec["instances_map"] = [instance_map(i, scene.transform) for i in scene_instances]
    return rec


def _overview(scene: Any, asker: _Asker, questions: list[str], truth: Any) -> list[dict[str, Any]]:
    from rasterio.windows import Window

    w, h = asker.size
    whole = Window(0, 0, scene.width, scene.height)
    img = scene.read(None, out_hw=(h, w))
    answers = asker.ask([(f"overview:q{k}", img, _truth_reader(truth, whole, (h, w)), q) for k, q in enumerate(questions)])
    for a in answers:  # overview pixels -> scene pixels
        a["scene_instances"] = scale_prompts(a["instances"], (w, h), (scene.width, scene.height))
    return answers


def _segment_crops(scene: Any, seg: Any, store: MaskStore, q: int, instances: list[Instance], tile: int) -> None:
    """The overview strategy's segmentation: one crop per instance around its (scene-pixel) box."""
    from rasterio.windows import Window

    for inst in instances:
        if inst.box is None:
            continue
        x1, y1, x2, y2 = inst.box
        m = max(16, round(0.25 * max(x2 - x1, y2 - y1)))
        c0, r0 = max(0, x1 - m), max(0, y1 - m)
        c1, r1 = min(scene.width, x2 + m + 1), min(scene.height, y2 + m + 1)
        win = Window(c0, r0, c1 - c0, r1 - r0)
        s = min(1.0, tile / max(c1 - c0, r1 - r0))
        hw = (max(1, round((r1 - r0) * s)), max(1, round((c1 - c0) * s)))
        img = scene.read(win, out_hw=hw)
        local = scale_prompts(_offset([inst], -c0, -r0), (c1 - c0, r1 - r0), (hw[1], hw[0]))
        mask = seg.segment(img, [local])[0]
        store.add(q, win, resize_mask(mask, (c1 - c0, r1 - r0)))


def _tile_pass(scene, asker, seg, store, todo: list[tuple[Tile, list[int]]], questions, truth, overlap, batch,
               progress, records, log: Path) -> None:

    with tqdm(total=len(todo), desc="predict tiles", unit="tile", disable=not progress) as bar:  # closed on errors too
        for b in range(0, len(todo), batch):
            chunk = todo[b : b + batch]
            images = [scene.read(t.window()) for t, _ in chunk]
            items = [(f"tile{t.col}_{t.row}:q{q}", img, _truth_reader(truth, t.window()), questions[q])
                     for (t, qs), img in zip(chunk, images, strict=True) for q in qs]
            answers = iter(asker.ask(items))
            done = []
            with store.writing():
                for (t, qs), img in zip(chunk, images, strict=True):
                    got = [next(answers) for _ in qs]
                    for q, a in zip(qs, got, strict=True):
                        done.append([q, _record(a, "tile", t.window(), scene, _offset(a["instances"], t.col, t.row))])
                    if all(a["empty"] for a in got):
                        continue
                    masks = seg.segment(img, [a["instances"] for a in got])  # one embedding, every question
                    for q, m in zip(qs, masks, strict=True):
                        store.add(q, t.window(), merge_tile_mask(m, t, overlap))
            for q, rec in done:
                records[q].append(rec)
            _log(log, {"tiles": [[t.col, t.row] for t, _ in chunk], "records": done})
            bar.update(len(chunk))


RESUME_KEYS = ("image", "questions", "prompter", "segmenter", "strategy", "tile", "overlap", "bands", "truth")


def _log(path: Path, obj: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(obj) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _resume(path: Path, options: dict[str, Any]) -> tuple[set[tuple[int, int]], list[list[Any]]]:
    """Tiles done and their records from an interrupted run's log (a torn last line is ignored); refuses
    a log written with other options, naming them."""
    if not path.is_file():
        return set(), []
    lines = path.read_text().splitlines()
    old = json.loads(lines[0])["options"] if lines else {}
    diff = [k for k in RESUME_KEYS if old.get(k) != options[k]]
    if diff:
        raise ValueError(f"{path.parent}: an interrupted run with other {', '.join(f'{k}={old.get(k)!r}' for k in diff)} "
                         "is there; use another --out or delete it")
    done, recs = set(), []
    for ln in lines[1:]:
        try:
            obj = json.loads(ln)
        except json.JSONDecodeError:
            break  # torn final write; its tiles are done again
        done.update((c, r) for c, r in obj["tiles"])
        recs += obj["records"]
    return done, recs


def _finish(cfg: PredictConfig, scene: Any, store: MaskStore, questions: list[str], records: list[list[dict]],
            drawn: list[list[Instance]]) -> list[dict[str, Any]]:
    """Overlays, vectors and the final mask files; the per-question part of ``predictions.json``."""
    t = scene.transform
    pixel_area = abs(t.a * t.e - t.b * t.d) if scene.georeferenced else 1.0
    out = Path(cfg.out)
    pixels = [store.pixels(q) for q in range(len(questions))]
    overlays = [write_overlay(scene, store, q, drawn[q], out / f"q{q + 1}.overlay.png", cfg.overlay_side)
                for q in range(len(questions))]
    vectors: list[dict[str, Any] | None] = [None] * len(questions)
    if cfg.vector:
        georef = cfg.vector == "map"
        for q in range(len(questions)):
            feats = mask_features(store.read(q), t if georef else None)
            vectors[q] = write_vectors(feats, out / f"q{q + 1}", scene.crs if georef else None,
                                       {"question": questions[q]})
            vectors[q]["space"] = ("pixel coordinates" if not georef else scene.crs.to_string() if scene.crs
                                   else "no CRS: the geotransform's coordinates")
            if not georef:
                vectors[q]["note"] = "no GeoJSON: --vector pixel writes pixel coordinates, RFC 7946 GeoJSON is WGS 84"
    masks = store.finish()
    return [{"question": question, "mask": str(masks[q]), "overlay": str(overlays[q]), "vectors": vectors[q],
             "mask_pixels": pixels[q], "mask_area": pixels[q] * pixel_area, "answers": records[q]}
            for q, question in enumerate(questions)]


def _clear_outputs(out: Path, n_questions: int) -> None:
    """Remove the complete-looking files a previous run left in ``out`` (this run writes them anew)."""
    names = ["predictions.json"] + [f"q{k + 1}.{ext}" for k in range(n_questions)
                                    for ext in ("mask.tif", "mask.png", "overlay.png", "gpkg", "geojson")]
    for name in names:
        (out / name).unlink(missing_ok=True)


def predict(cfg: PredictConfig, *, prompter: Any = None, segmenter: Any = None, progress: bool = True) -> dict[str, Any]:
    """Run one prediction (module doc); writes into ``cfg.out`` and returns the ``predictions.json`` dict.

    Raises ``ValueError`` (:class:`~think2seg.data.raster.SceneError` for the image) naming the file or
    option at fault. GDAL's block cache is capped at ``GDAL_CACHE_MB`` so memory does not grow with the scene."""
    import rasterio

    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        return _predict(cfg, prompter, segmenter, progress)


def _predict(cfg: PredictConfig, prompter: Any, segmenter: Any, progress: bool) -> dict[str, Any]:
    if cfg.strategy not in STRATEGIES:
        raise ValueError(f"--strategy {cfg.strategy!r}: choose one of {', '.join(STRATEGIES)}")
    if cfg.vector not in (None, "map", "pixel"):
        raise ValueError(f"--vector {cfg.vector!r}: choose map or pixel")
    questions = load_questions(cfg.questions, None)
    t_start = time.perf_counter()
    scene = open_scene(cfg.image, cfg.bands)
    truth = None
    try:
        if cfg.vector == "map" and not scene.georeferenced:
            raise SceneError(f"{cfg.image} has no geotransform, so --vector map has no map units; "
                             "use --vector pixel for polygons in pixel coordinates")
        if cfg.truth:
            truth = open_scene(cfg.truth, bands=(1,)).dataset
            if (truth.width, truth.height) != (scene.width, scene.height):
                raise SceneError(f"--truth {cfg.truth}: {truth.width}x{truth.height}, the image is {scene.width}x{scene.height}")
        if prompter is None:
            prompter = build_prompter(cfg.prompter)
        if segmenter is None:
            segmenter = build_segmenter(cfg.segmenter)
        if isinstance(prompter, OraclePrompter) and truth is None:
            raise ValueError(f"--prompter {cfg.prompter}: the oracle answers from a ground-truth mask; give --truth MASK")
        asker = _Asker(prompter)
        tile = cfg.tile or max(MIN_TILE, asker.size[0])
        overlap = tile // 4 if cfg.overlap is None else cfg.overlap
        tiles = tile_grid(scene.width, scene.height, tile, overlap)
        log = Path(cfg.out) / ".progress.jsonl"
        options = {**asdict(cfg), "questions": questions, "tile": tile, "overlap": overlap}
        done, old = _resume(log, options)
        _clear_outputs(Path(cfg.out), len(questions))
        store = MaskStore(scene, cfg.out, len(questions), resume=bool(done))
        if not store.resumed:
            done, old = set(), []
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text("")
            _log(log, {"options": {k: options[k] for k in RESUME_KEYS}})
        records: list[list[dict]] = [[] for _ in questions]
        drawn: list[list[Instance]] = [[] for _ in questions]
        todo: list[tuple[Tile, list[int]]] = []
        from rasterio.windows import Window

        if cfg.strategy in ("overview", "refine"):
            for q, a in enumerate(_overview(scene, asker, questions, truth)):
                records[q].append(_record(a, "overview", Window(0, 0, scene.width, scene.height), scene, a["scene_instances"]))
                drawn[q] += a["scene_instances"]
                if cfg.strategy == "overview":
                    with store.writing():
                        _segment_crops(scene, segmenter, store, q, a["scene_instances"], tile)
            if cfg.strategy == "refine":
                by_tile: dict[Tile, list[int]] = {}
                for q in range(len(questions)):
                    bx = [tuple(j["bbox_2d"]) for r in records[q] for j in r["instances_px"] if "bbox_2d" in j]
                    for t in tiles_for_boxes(tiles, bx, overlap):
                        by_tile.setdefault(t, []).append(q)
                todo = [(t, by_tile[t]) for t in tiles if t in by_tile]
        else:
            todo = [(t, list(range(len(questions)))) for t in tiles]
        for q, rec in old:
            records[q].append(rec)
        n_asked = len(todo)
        todo = [(t, qs) for t, qs in todo if (t.col, t.row) not in done]
        if todo:
            _tile_pass(scene, asker, segmenter, store, todo, questions, truth, overlap, max(1, cfg.batch_tiles),
                       progress, records, log)
        for q in range(len(questions)):
            drawn[q] += [Instance.from_json(j) for r in records[q] if r["source"] == "tile" for j in r["instances_px"]]
        per_q = _finish(cfg, scene, store, questions, records, drawn)
        summary = {
            "image": str(cfg.image), "width": scene.width, "height": scene.height,
            "georeferenced": scene.georeferenced, "rotated": scene.rotated,
            "crs": scene.crs.to_string() if scene.crs else None,
            "transform": list(scene.transform)[:6] if scene.georeferenced else None,
            "bands": list(scene.bands), "stretch": {"lo": scene.lo.tolist(), "hi": scene.hi.tolist()},
            "prompter": getattr(prompter, "name", cfg.prompter), "segmenter": getattr(segmenter, "name", cfg.segmenter),
            "strategy": cfg.strategy, "tile": tile, "overlap": overlap, "n_tiles": len(tiles),
            "tiles_asked": n_asked, "tiles_resumed": n_asked - len(todo), "seconds": round(time.perf_counter() - t_start, 3),
            "options": asdict(cfg), "questions": per_q,
        }
        tmp = Path(cfg.out) / ".predictions.partial.json"
        tmp.write_text(json.dumps(summary, indent=1))
        os.replace(tmp, Path(cfg.out) / "predictions.json")  # last: its presence means the run is complete
        log.unlink()  # complete: a later run on this --out starts afresh
        return summary
    finally:
        scene.close()
        if truth is not None:
            truth.close()
