"""One sample of one run drawn as a panel: a JPEG (image, ground truth, prediction, prompts) and an HTML block
(IoU, outcome, format flags, parse warnings, ``<think>`` text, raw answer). The widget and the static gallery
show the same two pieces.

>>> jpeg = panel_jpeg(run, "val_00003:1")           # bytes of a JPEG, at least 320 px on its long side  # doctest: +SKIP
>>> html = panel_text(run, "val_00003:1")           # an HTML fragment, every model string escaped  # doctest: +SKIP

Colours: ground truth cyan (light fill and contour), prediction magenta (fill and contour), boxes red,
positive points green, negative points blue crosses.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np
from PIL import Image

from think2seg.core.drawing import overlay
from think2seg.core.geometry import resize_image, resize_mask
from think2seg.reports.viewer.state import outcome, parse_failed

GT_RGB = (0, 220, 255)
PRED_RGB = (255, 0, 200)
BOX_RGB = (255, 30, 30)
NEG_RGB = (40, 90, 255)
MIN_SIDE = 320  # small score spaces (112 px) are enlarged by an integer factor to at least this


def panel_array(run: Any, sid: str, min_side: int = MIN_SIDE) -> np.ndarray:
    """(H', W', 3) uint8: the sample's image in score space, enlarged by an integer factor, with the ground
    truth and the predicted mask overlaid and the answer's prompts drawn on top."""

    image, pred, gt = run.arrays(sid)
    h, w = image.shape[:2]
    f = max(1, -(-min_side // max(h, w)))
    size = (w * f, h * f)
    image, pred, gt = resize_image(image, size), resize_mask(pred, size), resize_mask(gt, size)
    insts = [i.scaled(f, f, size) for i in run.instances(sid)]
    out = overlay(image, gt, (), color=GT_RGB, alpha=0.25, thickness=2)
    return overlay(out, pred, insts, color=PRED_RGB, alpha=0.35, thickness=2, box_color=BOX_RGB,
                   neg_color=NEG_RGB)


def panel_jpeg(run: Any, sid: str, min_side: int = MIN_SIDE, quality: int = 88) -> bytes:
    """:func:`panel_array` encoded as JPEG bytes (about a quarter of the PNG size on SynthEarth)."""

    buf = io.BytesIO()
    Image.fromarray(panel_array(run, sid, min_side)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def data_uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()


def _flag(name: str, ok: bool) -> str:
    return f'<span class="flag {"ok" if ok else "bad"}">{name} {"✓" if ok else "✗"}</span>'


def sample_header(state: Any, sid: str) -> str:
    """HTML: the sample id, question, category / kind when known, and the IoU difference of two runs."""
    r = state.runs[0].record(sid)
    extra = r.get("extra") or {}
    tags = " · ".join(f"{k} {html.escape(str(extra[k]))}" for k in ("category", "kind") if extra.get(k))
    delta = ""
    if len(state.runs) > 1:
        d = state.delta(sid)
        delta = f' <b class="delta">ΔIoU {d:+.3f}</b> ({html.escape(state.runs[-1].label)} − ' \
                f"{html.escape(state.runs[0].label)})"
    return (f'<div class="sample-head"><code class="sid">{html.escape(sid)}</code> {tags}{delta}'
            f'<div class="question">Q: {html.escape(r["question"])}</div></div>')


def panel_text(run: Any, sid: str) -> str:
    """HTML: the run label, IoU, outcome, format flags, parse error / warnings, think text and raw answer."""
    r = run.record(sid)
    flags = "".join([
        _flag("tags", bool(r.get("think_answer_ok"))),
        _flag("json", bool(r.get("json_ok"))),
        _flag("format", bool(r.get("format_ok"))),
        ' <span class="flag bad">repaired</span>' if r.get("repaired") else "",
    ])
    problems = ([f"parse error: {r['parse_error']}"] if r.get("parse_error") else []) + list(r.get("parse_warnings") or [])
    warn = "".join(f'<li>{html.escape(str(p))}</li>' for p in problems)
    think = r.get("think")
    return (
        f'<div class="run-text"><div class="run-label">{html.escape(run.label)}</div>'
        f'<div class="iou">IoU <b>{r["iou"]:.3f}</b> · {outcome(r).replace("_", " ")}'
        f'{" · parse failed" if parse_failed(r) else ""}</div>'
        f'<div class="flags">{flags}</div>'
        + (f'<ul class="warnings">{warn}</ul>' if warn else "")
        + '<div class="think-label">think</div>'
        f'<div class="think">{html.escape(think) if think else "<i>(no think text)</i>"}</div>'
        '<div class="answer-label">raw answer</div>'
        f'<pre class="answer">{html.escape(str(r.get("completion", "")))}</pre></div>'
    )


LEGEND = ('<div class="legend">ground truth <span style="color:#00dcff">■</span> · prediction '
          '<span style="color:#ff00c8">■</span> · box <span style="color:#ff1e1e">□</span> · positive point '
          '<span style="color:#28dc3c">●</span> · negative point <span style="color:#285aff">✕</span></div>')

CSS = """
.t2s-viewer .sample-head, .t2s-gallery .sample-head {margin: 4px 0; font-size: 13px}
.t2s-viewer .question, .t2s-gallery .question {font-weight: 600; margin-top: 2px}
.t2s-viewer .flag, .t2s-gallery .flag {margin-right: 6px; font-size: 12px}
.flag.ok {color: #1a7f37} .flag.bad {color: #c0392b}
.t2s-viewer .think, .t2s-gallery .think {white-space: pre-wrap; background: #f4f6fa; padding: 4px;
  font-size: 12px; max-height: 14em; overflow: auto}
.t2s-viewer pre.answer, .t2s-gallery pre.answer {white-space: pre-wrap; font-size: 11px; background: #f7f7f2;
  padding: 4px; max-height: 12em; overflow: auto}
.think-label, .answer-label {font-size: 11px; color: #666; margin-top: 4px}
.run-label {font-weight: 700} .warnings {color: #b35900; font-size: 12px; margin: 2px 0}
.legend {font-size: 12px; color: #444}
"""
