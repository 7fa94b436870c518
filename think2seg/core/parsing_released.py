"""The released Think2Seg-RS answer parsers, as two parse policies (``released-train``, ``released-test``).

>>> from think2seg.core.parsing import parse_completion
>>> text = '<think>x</think><answer>[{"bbox_2d": [1, 2, 30, 40], "positive_points": [[5, 6], [7, 8]]}]</answer>'
>>> parse_completion(text, policy="released-train").json_ok     # the fence is required in training
False
>>> parse_completion(text, policy="released-test").instances[0].box
(1, 2, 30, 40)

Both are all-or-nothing: one invalid instance makes the whole answer invalid (``json_ok`` False, no
instances). What each accepts is tabled in ``docs/parse_policies.md``. Coordinates are kept exactly as the
model wrote them (floats, outside the image, swapped corners), because the released code hands them to SAM
unchanged. Two outcomes of the released code that happen after parsing are folded in here so that every
consumer (rewards, metrics) sees them the same way:

- a valid answer whose numbers the released code would fail to hand to SAM (a string or ``null`` among
  the box or point values, a nested box) keeps ``json_ok`` True but gets no instances and an ``error``:
  the released code swallows that exception and scores IoU 0;
- an instance with a non-finite value (``NaN``, ``Infinity``) is dropped: SAM answers it with an empty mask.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from think2seg.core.styles import PromptStyle
from think2seg.core.types import Instance

_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_FENCE_RE = re.compile(r"```json\s*(.*?)\s*```", re.DOTALL)


class _Invalid(Exception):
    """The released parser returns None with this reason."""


def released_json(text: str, style: PromptStyle, *, train: bool) -> tuple[list[dict] | None, str | None]:
    """The released parser's output for ``text``: (list of instance dicts after NMS, None) or (None, reason)."""
    try:
        return _released_json(text, style, train), None
    except _Invalid as e:
        return None, str(e)
    except Exception as e:  # the released parser turns every exception into "invalid"
        return None, f"released parser error ({type(e).__name__})"


def _released_json(s: str, style: PromptStyle, train: bool) -> list[dict]:
    if "<answer>" in s and "</answer>" in s:
        m = _ANSWER_RE.search(s)
        if m:
            s = m.group(1).strip()
    if train:
        if "```json" not in s:
            raise _Invalid("no ```json fence (required by the training parser)")
        m = _FENCE_RE.search(s)
        if not m:
            raise _Invalid("the ```json fence is not closed")
        s = m.group(1).strip()
    if "[" in s and "]" in s:
        s = s[s.find("[") : s.rfind("]") + 1]
    try:
        value = json.loads(s)
    except json.JSONDecodeError:
        import json_repair

        value = json_repair.loads(s)
    if not isinstance(value, list):
        raise _Invalid(f"answer JSON is a {type(value).__name__}, not a list")
    for k, obj in enumerate(value):
        if not isinstance(obj, dict):
            raise _Invalid(f"instance {k} is not an object")
        has_box, has_pos = "bbox_2d" in obj, "positive_points" in obj
        if not (has_box or has_pos):
            raise _Invalid(f"instance {k} has neither 'bbox_2d' nor 'positive_points'")
        if has_box and not _box_ok(obj):
            raise _Invalid(f"instance {k}: 'bbox_2d' is not a list of 4")
        if (train or has_pos) and not _points_ok(obj, "positive_points", style.n_pos):
            raise _Invalid(f"instance {k}: 'positive_points' is not {style.n_pos} [x, y] pairs")
        if (train or "negative_points" in obj) and not _points_ok(obj, "negative_points", style.n_neg):
            raise _Invalid(f"instance {k}: 'negative_points' is not {style.n_neg} [x, y] pairs")
    return _nms(value)


def _box_ok(obj: dict) -> bool:
    b = obj.get("bbox_2d")
    return isinstance(b, list) and len(b) == 4


def _points_ok(obj: dict, key: str, n: int) -> bool:
    pts = obj.get(key)
    if pts is None and n == 0:
        return True
    if not isinstance(pts, list) or not pts or len(pts) != n:
        return False
    for p in pts:
        if not isinstance(p, (list, tuple)) or len(p) != 2:
            return False
        try:
            float(p[0]), float(p[1])
        except (TypeError, ValueError):
            return False
    return True


def _nms(value: list[dict], thr: float = 0.5) -> list[dict]:
    """Area-sorted NMS at box IoU > ``thr`` over the instances that have a box (released box convention:
    area ``(x2 - x1) * (y2 - y1)``, no +1); instances without a box are always kept; order is kept."""
    if len(value) <= 1:
        return value
    boxed = [(k, obj["bbox_2d"]) for k, obj in enumerate(value) if _box_ok(obj)]
    if len(boxed) <= 1:
        return value
    area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # raises on strings / None, as released
    order = sorted(boxed, key=lambda kb: area(kb[1]), reverse=True)  # stable, like list.sort
    removed: set[int] = set()
    for i, (_, a) in enumerate(order):
        if i in removed:
            continue
        for j in range(i + 1, len(order)):
            if j not in removed and _flat_iou(a, order[j][1]) > thr:
                removed.add(j)
    drop = {order[i][0] for i in removed}
    return [obj for k, obj in enumerate(value) if k not in drop]


def _flat_iou(a: list, b: list) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _numeric(v: Any) -> bool:
    """A value numpy turns into a number (SAM accepts it): int, float or bool, not str / None / list."""
    return isinstance(v, (int, float))


def released_instances(objs: list[dict]) -> tuple[list[Instance], str | None]:
    """Instance dicts the released parser accepted -> prompts SAM receives (coordinates as written).

    Returns ``([], reason)`` when SAM would raise on them (IoU 0 as released); instances with a
    non-finite value are left out (SAM gives them an empty mask)."""
    out = []
    for obj in objs:
        box = obj.get("bbox_2d")
        pos = obj.get("positive_points") or []
        neg = obj.get("negative_points") or []
        vals = (list(box) if box is not None else []) + [v for p in (*pos, *neg) for v in p]
        if not all(_numeric(v) for v in vals):
            return [], "a non-numeric coordinate (SAM raises; IoU 0 as released)"
        if not all(math.isfinite(v) for v in vals):
            continue
        out.append(
            Instance(
                box=tuple(box) if box is not None else None,  # type: ignore[arg-type]
                positive=tuple(tuple(p) for p in pos),  # type: ignore[misc]
                negative=tuple(tuple(p) for p in neg),  # type: ignore[misc]
            )
        )
    return out, None
