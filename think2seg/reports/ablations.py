"""The paper's ablations as DataFrames: Table 4 (LVLM prompter), Table 5 (SAM2 size), Table 6 (prompt
combination), and Fig. 4 (one image segmented by each segmenter size).

>>> t4 = table4({"Qwen2.5-VL-3B": "hf:/models/Qwen2.5-VL-3B-Instruct", "tiny": "tiny"}, "runs/05")  # doctest: +SKIP
>>> t5, masks = table5(["tiny", "small"], "runs/05", prompter="oracle?image_size=256")                # doctest: +SKIP
>>> t6 = table6({"oracle": "oracle?image_size=256", "tiny": "tiny"}, "runs/05", limit=24)             # doctest: +SKIP
>>> fig = figure4(masks, out="reports/figures/05_fig4_sam2_sizes.png")                               # doctest: +SKIP

What runs depends on what exists. A prompter whose weights are not on this machine (an ``hf:`` path that is
not a folder) gets a row saying so. Table 5 times every official SAM2 size's image encoder with random
weights (``sam2:<size>:random``: parameters, encoder ms and peak memory are properties of the architecture,
the masks are not), and measures quality only for sizes whose checkpoint is found; the shipped mini sizes
(``sam2:mini-t``, ``sam2:mini-s``: trained on SynthEarth) are timed and measured with their shipped
weights; GrabCut's quality goes beside them. Each size is probed in a fresh subprocess (``python -m think2seg.reports.ablations probe``) so its peak
resident memory is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from think2seg.core.drawing import draw_prompts
from think2seg.core.geometry import resize_mask, scale_prompts
from think2seg.core.io import read_image
from think2seg.core.model_dirs import hf_weights_missing
from think2seg.core.parsing import parse_completion
from think2seg.core.records import read_metrics
from think2seg.core.styles import DEFAULT_STYLE
from think2seg.core.styles import STYLES as PROMPT_STYLES
from think2seg.core.types import Instance
from think2seg.data import load_dataset
from think2seg.evaluation.engine import evaluate_many
from think2seg.evaluation.spread import spread_columns
from think2seg.evaluation.stability import perturb_run, tolerance
from think2seg.prompters import build_prompter
from think2seg.prompters.catalog import checkpoint_for, count_parameters
from think2seg.reports.benchmarks import resolve_data, sampled_metrics, slug
from think2seg.reports.published import TABLE4, TABLE5, TABLE5_PARAMS_M, TABLE6
from think2seg.reports.table_spec import TableSpec
from think2seg.segmenters import build_segmenter
from think2seg.segmenters.checkpoints import REBUILD, find_sam2_checkpoints, shipped_sam2_checkpoints
from think2seg.segmenters.spec import SHIPPED_SAM2, parse_segmenter_spec

STYLES = tuple(PROMPT_STYLES)  # Table 6's rows, in the paper's order
STABLE_TOL = 1.0  # gIoU points a row may move under the stability perturbations and still be called stable


def missing_weights(spec: str) -> str | None:
    """Why ``spec`` cannot run here (a local ``hf:`` path that does not exist), or None."""
    if spec.startswith("hf:"):
        path = spec[3:].split("?", 1)[0]
        if path.startswith(("/", ".", "~")) and not Path(path).expanduser().is_dir():
            return f"needs weights: {path} not found"
    return None


def _split_metrics(runs: Mapping[str, Path], split: str, rows: dict[str, dict[str, Any]]) -> None:
    for label, d in runs.items():
        m = read_metrics(d)
        rows.setdefault(label, {"status": "measured"}).update(
            {f"{split} gIoU": 100 * m["gIoU"], f"{split} cIoU": 100 * m["cIoU"], f"{split} n": m["n"]})


def encoder_probe(checkpoint: str, runs_dir: str | Path, dtype: str = "bfloat16") -> dict[str, Any]:
    """``think2seg bench encoder`` on the catalogued ``checkpoint`` (full-size vision tower, random weights,
    the family's image size, ``dtype`` as the paper's runs use it) in a fresh process, so its peak RSS is
    its own; the JSON row is kept as ``runs_dir/table4/encoders/<checkpoint>-<dtype>.json`` and read back
    instead of measured again."""
    cache = Path(runs_dir) / "table4" / "encoders" / f"{checkpoint}-{dtype}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    args = [sys.executable, "-m", "think2seg.cli", "bench", "encoder", "--checkpoint", checkpoint, "--repeats", "1",
            "--dtype", dtype]
    row = _json_subprocess(args, f"encoder probe of {checkpoint}")
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(row))
    return row


def table4(
    prompters: Mapping[str, str | None],
    runs_dir: str | Path,
    spec: TableSpec | None = None,
    *,
    encoder_timings: bool = False,
    **options: Any,
):
    """The LVLM prompter: gIoU, cIoU per split for each prompter that exists; the others (spec None or
    weights not found) are listed with ``status`` saying what they need, and with their parameter counts
    when the spec names a checkpoint of :data:`think2seg.prompters.catalog.CHECKPOINTS`; with
    ``encoder_timings`` also its vision tower's CPU encode time and peak RSS for one image at the family's
    size, random weights, bfloat16 (:func:`encoder_probe`)."""
    s = TableSpec.of(spec, **options)
    data, splits, protocol, segmenter = s.data, s.splits, s.protocol, s.segmenter
    question_kind, questions, limit, published = s.question_kind, s.questions, s.limit, s.published

    data = resolve_data(data)
    runnable = {label: s for label, s in prompters.items() if s and not missing_weights(s)}
    rows: dict[str, dict[str, Any]] = {}
    for label, spec in prompters.items():
        if label not in runnable:
            rows[label] = {"status": missing_weights(spec) if spec else "needs weights: not given"}
            if spec and (ckpt := checkpoint_for(spec)) is not None:
                total, vision = count_parameters(ckpt)
                rows[label].update({"params (M)": total / 1e6, "vision params (M)": vision / 1e6})
                rows[label]["status"] += f"; parameters of {ckpt.name}'s architecture (meta device)"
                if encoder_timings:
                    enc = encoder_probe(ckpt.name, runs_dir)
                    rows[label].update({"image tokens": enc["image_tokens"], "encoder s (random weights)": enc["encode_s"],
                                        "encoder peak RSS (GiB)": enc["peak_rss_GiB"]})
                    rows[label]["status"] += (f"; vision tower timed with random weights ({enc['image_size']} px, "
                                              f"{enc['dtype']}, CPU)")
    for split in splits:
        runs = evaluate_many(runnable, Path(runs_dir) / "table4" / split, data=data, split=split, segmenter=segmenter,
                             protocol=protocol, question_kind=question_kind, questions=questions, limit=limit)
        _split_metrics(runs, split, rows)
    df = pd.DataFrame.from_dict({k: rows[k] for k in prompters}, orient="index")
    df["protocol"] = protocol
    df["segmenter"] = segmenter
    if published:
        df = _published_rows(df, TABLE4)
    return df


def _published_rows(df, table: Mapping[str, Mapping[str, float]]):
    pub = pd.DataFrame.from_dict({f"{k} (published)": dict(v) for k, v in table.items()}, orient="index")
    pub["status"] = "paper"
    return pd.concat([df, pub])


def probe_sam2(size: str, checkpoint: str = "random", image: str | Path | None = None,
               prompts: Sequence[Sequence[dict[str, Any]]] = (), out: str | Path | None = None,
               spec: str | None = None) -> dict[str, Any]:
    """Build SAM2 ``size`` (or any segmenter ``spec``, e.g. ``sam3:random``) in THIS process, encode ``image``
    once (timed) and segment each prompt set.

    Returns ``{"size", "params_M", "encoder_ms", "rss_before_MiB", "peak_rss_MiB"}``; masks (H, W) bool in
    the image's pixel space go to ``out`` (``.npz``, key ``m<i>``). Peak RSS is this process's high-water mark
    (``getrusage``), so run it in a fresh process to measure one size (:func:`table5` does)."""

    import torch

    torch.manual_seed(0)
    img = read_image(image) if image else np.zeros((256, 256, 3), np.uint8)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    spec = spec or (f"sam2:{size}:{checkpoint}" if checkpoint else f"sam2:{size}")
    seg = build_segmenter(spec)
    model = seg.predictor.model if hasattr(seg, "predictor") else seg.load()[0]
    params = sum(p.numel() for p in model.parameters()) / 1e6
    t0 = time.perf_counter()
    seg.set_image(img)
    enc_ms = 1000 * (time.perf_counter() - t0)
    masks = seg.predict([[Instance.from_json(i) for i in ps] for ps in prompts]) if prompts else []
    if out is not None:
        np.savez_compressed(out, **{f"m{i}": m for i, m in enumerate(masks)})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"size": size, "params_M": params, "encoder_ms": enc_ms, "rss_before_MiB": before, "peak_rss_MiB": peak}


def _json_subprocess(args: list[str], what: str) -> dict[str, Any]:
    """Run ``args`` in a fresh process (so its peak RSS is its own) and parse the JSON of its last stdout
    line; a failure raises naming ``what`` with the last line of its stderr."""
    res = subprocess.run(args, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{what} failed: {res.stderr.strip().splitlines()[-1:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _probe_subprocess(size: str, checkpoint: str, image: Path, prompts: list, out: Path,
                      spec: str | None = None) -> dict[str, Any]:
    args = [sys.executable, "-m", "think2seg.reports.ablations", "probe", "--size", size, "--checkpoint", checkpoint,
            "--image", str(image), "--prompts", json.dumps(prompts), "--out", str(out)]
    args += ["--spec", spec] if spec else []
    return _json_subprocess(args, f"SAM2 {size} probe")


def pick_image(data: str, split: str = "val", seed_limit: int = 40):
    """The sample with the largest target among the first ``seed_limit`` of ``split`` (Fig. 4's image)."""

    ds = load_dataset(data, split, questions="first", limit=seed_limit)
    return max(ds, key=lambda s: (float(s.load_mask().mean()), s.id))


def table5(
    sizes: Sequence[str],
    runs_dir: str | Path,
    spec: TableSpec | None = None,
    *,
    prompter: str | Mapping[str, str] = "oracle:whole",
    segmenters: Mapping[str, str] | None = None,
    **options: Any,
):
    """SAM2 size: parameters, encoder ms and peak memory (random weights, one encoder pass on Fig. 4's
    image, a fresh process per size), then quality (gIoU, cIoU with ``prompter``) for each size whose
    checkpoint is found, and for GrabCut; ``prompter`` is a spec or a one-entry ``{label: spec}``.
    Returns ``(table, fig4_masks)`` where ``fig4_masks`` maps each
    segmenter to its mask of Fig. 4's image (``"image"``, ``"gt"`` hold the sample itself)."""
    s = TableSpec.of(spec, **options)  # its segmenters are ``sizes`` and ``segmenters``
    data, splits, protocol = s.data, s.splits, s.protocol
    question_kind, questions, limit, published = s.question_kind, s.questions, s.limit, s.published

    label, prompter = next(iter(prompter.items())) if isinstance(prompter, Mapping) else (prompter, prompter)
    data = resolve_data(data)
    out = Path(runs_dir) / "table5"
    out.mkdir(parents=True, exist_ok=True)
    sample = pick_image(data)
    image, gt = sample.load_image(), sample.load_mask()
    p = build_prompter(prompter)
    text = p.generate([sample])[0][0]
    parsed = parse_completion(text, DEFAULT_STYLE, p.image_size)
    insts = scale_prompts(parsed.instances, p.image_size, (image.shape[1], image.shape[0]))
    prompts = [[i.to_json() for i in insts]]
    fig4: dict[str, Any] = {"image": image, "gt": gt, "prompts": insts, "id": sample.id}
    found = {**find_sam2_checkpoints(), **shipped_sam2_checkpoints()}
    rows: dict[str, dict[str, Any]] = {}
    for size in sizes:
        size = parse_segmenter_spec(f"sam2:{size}").size
        shipped = size in SHIPPED_SAM2 and found.get(size) is not None
        ckpt = "" if shipped else "random"  # the shipped mini sizes are timed with their own weights
        probe = _probe_subprocess(size, ckpt, sample.image_path, prompts, out / f"fig4_{slug(size)}.npz")
        with np.load(out / f"fig4_{slug(size)}.npz") as z:
            fig4[f"sam2:{size}" if shipped else f"sam2:{size}:random"] = z["m0"] if "m0" in z else np.zeros_like(gt)
        if shipped:
            status = "measured (shipped, trained on SynthEarth)"
        elif size in SHIPPED_SAM2:
            status = f"not shipped (build: {REBUILD.format(size=size)}); timing with random weights"
        elif found.get(size):
            status = "measured"
        else:
            status = f"quality needs the checkpoint (sam2.1 {size}: set THINK2SEG_SAM2_DIR); timing with random weights"
        rows[f"sam2:{size}"] = {
            "params (M)": probe["params_M"], "encoder ms": probe["encoder_ms"],
            "peak RSS (MiB)": probe["peak_rss_MiB"], "peak - baseline (MiB)": probe["peak_rss_MiB"] - probe["rss_before_MiB"],
            "status": status,
        }
    quality = {"grabcut": "grabcut", **{f"sam2:{s}": f"sam2:{s}" for s in (parse_segmenter_spec(f"sam2:{x}").size
                                                                          for x in sizes) if found.get(s)}}
    for name, seg_spec in (segmenters or {}).items():
        parsed = parse_segmenter_spec(seg_spec)
        why = hf_weights_missing(parsed.checkpoint)
        probe_spec = f"{parsed.backend}:random" if why else str(parsed)
        probe = _probe_subprocess("-", "-", sample.image_path, prompts, out / f"fig4_{slug(name)}.npz", probe_spec)
        with np.load(out / f"fig4_{slug(name)}.npz") as z:
            fig4[probe_spec] = z["m0"] if "m0" in z else np.zeros_like(gt)
        rows[name] = {"params (M)": probe["params_M"], "encoder ms": probe["encoder_ms"],
                      "peak RSS (MiB)": probe["peak_rss_MiB"],
                      "peak - baseline (MiB)": probe["peak_rss_MiB"] - probe["rss_before_MiB"],
                      "status": f"needs weights ({why}); timing with random weights" if why else "measured"}
        if not why:
            quality[name] = seg_spec
    gc = build_segmenter("grabcut")
    gc.set_image(image)
    fig4["grabcut"] = gc.predict([insts])[0]
    for name, seg_spec in quality.items():
        row = rows.setdefault(name, {"status": "measured (no encoder: weightless)"})
        for split in splits:
            runs = evaluate_many({slug(name): prompter}, out / split, data=data, split=split, segmenter=seg_spec,
                                 protocol=protocol, question_kind=question_kind, questions=questions, limit=limit,
                                 progress=False)

            m = read_metrics(runs[slug(name)])
            row.update({f"{split} gIoU": 100 * m["gIoU"], f"{split} cIoU": 100 * m["cIoU"], f"{split} n": m["n"]})
    fig4["gt"] = resize_mask(gt, (image.shape[1], image.shape[0]))
    df = pd.DataFrame.from_dict(rows, orient="index")
    df["prompter"] = label
    df["protocol"] = protocol
    if published:
        df = _published_rows(df, {f"sam2:{k}": {**v, "params (M)": TABLE5_PARAMS_M[k]} for k, v in TABLE5.items()})
    return df, fig4


def figure4(masks: Mapping[str, Any], out: str | Path | None = None):
    """Fig. 4: the image with its prompts, the ground truth, and each segmenter's mask with its IoU."""
    import matplotlib.pyplot as plt

    names = [k for k in masks if k not in ("image", "gt", "prompts", "id")]
    fig, axes = plt.subplots(1, 2 + len(names), figsize=(3.2 * (2 + len(names)), 3.6))
    axes[0].imshow(masks["image"])
    draw_prompts(axes[0], masks["prompts"])
    axes[0].set_title(f"input + prompts\n{masks['id']}", fontsize=8)
    axes[1].imshow(masks["gt"], cmap="gray")
    axes[1].set_title("ground truth", fontsize=8)
    gt = masks["gt"]
    for ax, name in zip(axes[2:], names, strict=True):
        m = masks[name]
        iou = (m & gt).sum() / max(1, (m | gt).sum())
        ax.imshow(m, cmap="gray")
        ax.set_title(f"{name}\nIoU {iou:.2f}", fontsize=8)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
    return fig


def table6(
    prompters: Mapping[str, str],
    runs_dir: str | Path,
    spec: TableSpec | None = None,
    *,
    styles: Sequence[str] = STYLES,
    sampled: Mapping[str, str] | None = None,
    sample_temperature: float = 1.0,
    sample_seeds: Sequence[int] = (0, 1, 2),
    stability: Sequence[str] = (),
    **options: Any,
):
    """The prompt combination: every prompter under every style; index (style, prompter). ``sampled``
    rows: as in :func:`think2seg.reports.benchmarks.table1` (mean over seeds, ``±`` std, ``seeds`` n).
    ``stability``: perturbations of :mod:`think2seg.evaluation.stability` (e.g. ``("image_lsb",
    "points_1px")``); each greedy GrabCut row then gets ``"<split> tol"`` (the largest gIoU move, points)
    and ``"<split> flipping"`` (samples whose IoU moved by more than 0.1), and ``stable`` (every tol <= 1)."""
    s = TableSpec.of(spec, **options)
    data, splits, protocol, segmenter = s.data, s.splits, s.protocol, s.segmenter
    question_kind, questions, limit, published = s.question_kind, s.questions, s.limit, s.published

    data = resolve_data(data)
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for style in styles:
        for split in splits:
            runs = evaluate_many(dict(prompters), Path(runs_dir) / "table6" / slug(style) / split, data=data,
                                 split=split, segmenter=segmenter, style=style, protocol=protocol,
                                 question_kind=question_kind, questions=questions, limit=limit)
            per: dict[str, dict[str, Any]] = {}
            _split_metrics(runs, split, per)
            if stability and segmenter == "grabcut":
                for label, d in runs.items():
                    tol = tolerance(perturb_run(d, ("none", *stability)))
                    per[label].update({f"{split} tol": tol["gIoU"], f"{split} flipping": len(tol["flipping"])})
            for label, row in per.items():
                rows.setdefault((style, label), {}).update(row)
            base = Path(runs_dir) / "table6" / slug(style) / split
            for label, per_seed in sampled_metrics(
                sampled or {}, sample_seeds, lambda seed, sub, base=base, style=style, split=split: evaluate_many(
                    dict(sampled), base / sub, data=data, split=split, segmenter=segmenter, style=style,
                    protocol=protocol, question_kind=question_kind, questions=questions, limit=limit,
                    temperature=sample_temperature, seed=seed), sample_temperature).items():
                rows.setdefault((style, label), {"status": "measured"}).update(spread_columns(per_seed, split))
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index = pd.MultiIndex.from_tuples(df.index, names=["style", "prompter"])
    tols = [c for c in df.columns if c.endswith(" tol")]
    if tols:
        df["stable"] = (df[tols].fillna(0) <= STABLE_TOL).all(axis=1)
    df["protocol"] = protocol
    if published:
        pub = pd.DataFrame.from_dict({(k, "Qwen2.5-VL-3B (published)"): dict(v) for k, v in TABLE6.items()},
                                     orient="index")
        pub.index = pd.MultiIndex.from_tuples(pub.index, names=df.index.names)
        pub["status"] = "paper"
        df = pd.concat([df, pub])
    return df


def _main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m think2seg.reports.ablations", description="internal: one SAM2 probe")
    ap.add_argument("cmd", choices=["probe"])
    ap.add_argument("--size", required=True)
    ap.add_argument("--checkpoint", default="random", help="'random', a file, or '' (found by name / shipped)")
    ap.add_argument("--image", default=None)
    ap.add_argument("--prompts", default="[]", help="JSON list of prompt sets (lists of instance dicts)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--spec", default=None, help="any segmenter spec instead of --size/--checkpoint")
    a = ap.parse_args(argv)

    warnings.simplefilter("ignore")
    print(json.dumps(probe_sam2(a.size, a.checkpoint, a.image, json.loads(a.prompts), a.out, a.spec)))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
