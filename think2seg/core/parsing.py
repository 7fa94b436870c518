"""Completion text -> :class:`ParseResult`. Pure, deterministic, bounded in time, and never raises.

>>> r = parse_completion('<think>a runway</think>\\n<answer>```json[{"bbox_2d": [10,20,300,90], '
...                      '"positive_points": [[50, 55], [200, 60]]}]```</answer>')
>>> r.think_answer_ok, r.json_ok, r.is_empty, r.instances[0].box
(True, True, False, (10, 20, 300, 90))
>>> parse_completion("<think>x</think><answer>[]</answer>").is_empty
True

What real LVLMs emit and how it is handled (each repair or rejection is reported in ``warnings``;
``error`` holds the first reason when the answer could not be used at all):

- the ```json fence present or not; stray text or brackets after valid JSON (the first complete JSON
  value is decoded, as the released parser's "first ``[`` .. last ``]``" slice intends); trailing commas,
  single quotes and other damage go through a JSON-repair pass (``json_repair``), which sets ``repaired``;
- a single object instead of a list -> wrapped; numbers as strings or floats -> rounded ints;
- swapped box corners -> normalised; coordinates outside the image -> clipped to ``image_size``;
- NaN / inf / non-numeric coordinates, missing required keys, wrong point counts for the style ->
  that instance is rejected (the others are kept) and ``json_ok`` is False;
- positive points outside their box are kept (SAM receives them as released) and warned about;
- duplicate instances (box IoU > ``dedup_iou``, 0.5 as released) -> dropped; more than
  ``max_instances`` instances -> capped;
- inputs longer than ``max_chars`` are cut before any parsing, so time is bounded.

Format flags, as in the released reward: ``think_answer_ok`` is the full match of
``<think>.*?</think>\\s*<answer>.*?</answer>`` over the whole completion (DOTALL); ``json_ok`` means the
answer decoded (after the repairs above) to a list whose every element is a valid instance for the style.
An empty list ``[]`` is ``is_empty`` and ``json_ok``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from think2seg.core.geometry import box_iou
from think2seg.core.parsing_released import released_instances, released_json
from think2seg.core.styles import DEFAULT_STYLE, PromptStyle, get_style
from think2seg.core.types import Instance

MAX_CHARS = 20_000
MAX_INSTANCES = 32
POLICIES = ("lenient", "released-train", "released-test")
DEFAULT_POLICY = "lenient"

_TAGS_RE = re.compile(r"</think>\s*<answer>")
_THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_FENCE_RE = re.compile(r"```(?:json|JSON)?")


@dataclass
class ParseResult:
    """What one completion says. Coordinates are ints in the model's image space (``image_size``)."""

    text: str
    think: str | None = None
    answer: str | None = None
    instances: list[Instance] = field(default_factory=list)
    think_answer_ok: bool = False
    json_ok: bool = False
    is_empty: bool = False
    repaired: bool = False
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    policy: str = DEFAULT_POLICY

    @property
    def format_ok(self) -> bool:
        """Both released format terms hold."""
        return self.think_answer_ok and self.json_ok

    @property
    def usable(self) -> bool:
        """The answer gives a prompt set to segment (possibly the empty one)."""
        return self.is_empty or bool(self.instances)

    def to_record(self) -> dict[str, Any]:
        """JSON-serialisable summary for evaluation records."""
        return {
            "think": self.think,
            "instances": [i.to_json() for i in self.instances],
            "think_answer_ok": self.think_answer_ok,
            "json_ok": self.json_ok,
            "answer_empty": self.is_empty,
            "repaired": self.repaired,
            "parse_error": self.error,
            "parse_warnings": self.warnings,
            "parse_policy": self.policy,
        }


def tags_full_match(text: str) -> bool:
    """Linear-time equivalent of ``re.fullmatch(r"<think>.*?</think>\\s*<answer>.*?</answer>", text, DOTALL)``."""
    if not (text.startswith("<think>") and text.endswith("</answer>")):
        return False
    end = len(text) - len("</answer>")
    return any(m.end() <= end for m in _TAGS_RE.finditer(text, len("<think>")))


def check_policy(policy: str) -> str:
    """``policy`` if it names a parse policy, else ValueError listing them."""
    if policy not in POLICIES:
        raise ValueError(f"unknown parse policy {policy!r}; choose one of {list(POLICIES)}")
    return policy


def parse_completion(
    text: Any,
    style: str | PromptStyle = DEFAULT_STYLE,
    image_size: int | tuple[int, int] = 840,
    *,
    policy: str = DEFAULT_POLICY,
    max_instances: int = MAX_INSTANCES,
    dedup_iou: float = 0.5,
    max_chars: int = MAX_CHARS,
) -> ParseResult:
    """Parse one completion under a parse ``policy`` (``lenient``, ``released-train``, ``released-test``;
    see ``docs/parse_policies.md``). Never raises: problems end up in ``error`` / ``warnings``. The
    released policies ignore ``image_size``, ``max_instances`` and ``dedup_iou`` (their rules are fixed)."""
    check_policy(policy)
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    res = ParseResult(text=text, policy=policy)
    try:
        if policy == "lenient":
            _parse_into(res, text, get_style(style), image_size, max_instances, dedup_iou, max_chars)
        else:
            _parse_released_into(res, text, get_style(style), policy == "released-train", max_chars)
    except Exception as e:  # defensive: the contract is "never raises"
        res.instances, res.json_ok, res.is_empty = [], False, False
        res.error = f"internal parser error: {type(e).__name__}: {e}"
    return res


def _parse_into(
    res: ParseResult,
    text: str,
    style: PromptStyle,
    image_size: int | tuple[int, int],
    max_instances: int,
    dedup_iou: float,
    max_chars: int,
) -> None:
    text = _read_tags(res, text, max_chars)
    if res.answer is None:
        tail = text.rsplit("</think>", 1)[-1] if "</think>" in text else text
        if "[" not in tail and "{" not in tail:
            res.error = "no <answer> block"
            return
        res.answer = tail
        res.warnings.append("no <answer> block; JSON taken from the text after </think>")

    value, res.repaired, err = _decode_json(res.answer)
    if err:
        res.error = err
        return
    if isinstance(value, dict):
        value = [value]
        res.warnings.append("answer is a single object, not a list")
    if not isinstance(value, list):
        res.error = f"answer JSON is a {type(value).__name__}, not a list"
        return
    if not value:
        res.is_empty = True
        res.json_ok = True
        return

    w, h = (image_size, image_size) if isinstance(image_size, int) else image_size
    all_valid = True
    instances: list[Instance] = []
    for k, obj in enumerate(value):
        inst, why = _instance(obj, style, w, h, res.warnings, k)
        if inst is None:
            all_valid = False
            res.warnings.append(f"instance {k} rejected: {why}")
            continue
        instances.append(inst)
    kept = _dedup(instances, dedup_iou)
    if len(kept) < len(instances):
        res.warnings.append(f"{len(instances) - len(kept)} duplicate instance(s) dropped")
    if len(kept) > max_instances:
        res.warnings.append(f"{len(kept)} instances capped to {max_instances}")
        kept = kept[:max_instances]
    res.instances = kept
    res.json_ok = all_valid
    if not kept:
        res.error = "no valid instance in the answer"


def _read_tags(res: ParseResult, text: str, max_chars: int) -> str:
    """Cut ``text`` to ``max_chars``; fill the tag flag, ``think`` and ``answer`` (None when absent)."""
    if len(text) > max_chars:
        res.warnings.append(f"completion of {len(text)} chars cut to {max_chars}")
        text = text[:max_chars]
    res.think_answer_ok = tags_full_match(text)
    m = _THINK_RE.search(text)
    res.think = m.group(1).strip() if m else None
    m = _ANSWER_RE.search(text)
    res.answer = m.group(1) if m else None
    return text


def _parse_released_into(res: ParseResult, text: str, style: PromptStyle, train: bool, max_chars: int) -> None:
    text = _read_tags(res, text, max_chars)
    objs, res.error = released_json(text, style, train=train)
    if objs is None:
        return
    res.json_ok = True
    if not objs:
        res.is_empty = True
        return
    res.instances, res.error = released_instances(objs)
    if not res.instances and res.error is None:
        res.error = "every instance has a non-finite coordinate (SAM gives an empty mask)"


def _decode_json(answer: str) -> tuple[Any, bool, str | None]:
    """First complete JSON value in ``answer`` (fences removed); fall back to json_repair."""
    s = _FENCE_RE.sub("", answer).strip()
    starts = [i for i in (s.find("["), s.find("{")) if i >= 0]
    if not starts:
        return None, False, "no JSON list or object in the answer"
    s = s[min(starts) :]
    try:
        value, _ = json.JSONDecoder().raw_decode(s)
        return value, False, None
    except (json.JSONDecodeError, RecursionError):
        pass
    try:
        import json_repair

        value = json_repair.loads(s[: s.rfind("]") + 1] if "]" in s else s)
    except Exception as e:  # json_repair is robust, but never trust it to not raise
        return None, True, f"answer JSON could not be repaired ({type(e).__name__})"
    if value in ("", None) or (isinstance(value, list) and value and all(v in ("", None) for v in value)):
        return None, True, "answer JSON could not be repaired"
    return value, True, None


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, str):
        try:
            v = float(v.strip())
        except ValueError:
            return None
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _clip(x: float, hi: int) -> int:
    return int(min(max(round(x), 0), hi - 1))


def _points(obj: Any, n: int, key: str, w: int, h: int) -> tuple[tuple[tuple[int, int], ...] | None, str]:
    pts = obj.get(key)
    if not isinstance(pts, list):
        return None, f"missing or non-list {key!r}"
    if len(pts) == 2 and all(_num(v) is not None for v in pts) and n == 1:
        pts = [pts]
    if len(pts) != n:
        return None, f"{key!r} has {len(pts)} point(s), the style needs {n}"
    out = []
    for p in pts:
        if not isinstance(p, (list, tuple)) or len(p) != 2:
            return None, f"{key!r} has a point that is not [x, y]"
        x, y = _num(p[0]), _num(p[1])
        if x is None or y is None:
            return None, f"{key!r} has a non-finite or non-numeric coordinate"
        out.append((_clip(x, w), _clip(y, h)))
    return tuple(out), ""


def _instance(
    obj: Any, style: PromptStyle, w: int, h: int, warnings: list[str], k: int
) -> tuple[Instance | None, str]:
    if not isinstance(obj, dict):
        return None, f"not an object ({type(obj).__name__})"
    if "bbox_2d" not in obj and "bbox" in obj:
        obj = {**obj, "bbox_2d": obj["bbox"]}
    box = None
    if style.box:
        b = obj.get("bbox_2d")
        if not isinstance(b, (list, tuple)) or len(b) != 4:
            return None, "missing 'bbox_2d' or it is not 4 numbers"
        vals = [_num(v) for v in b]
        if any(v is None for v in vals):
            return None, "'bbox_2d' has a non-finite or non-numeric value"
        x1, y1, x2, y2 = vals  # type: ignore[misc]
        if x1 > x2 or y1 > y2:
            warnings.append(f"instance {k}: box corners swapped")
        x1, x2 = sorted((x1, x2))
        y1, y2 = sorted((y1, y2))
        box = (_clip(x1, w), _clip(y1, h), _clip(x2, w), _clip(y2, h))
        if box != tuple(round(v) for v in (x1, y1, x2, y2)):
            warnings.append(f"instance {k}: box clipped to the image")
    pos: tuple[tuple[int, int], ...] = ()
    neg: tuple[tuple[int, int], ...] = ()
    if style.n_pos:
        pos, why = _points(obj, style.n_pos, "positive_points", w, h)  # type: ignore[assignment]
        if pos is None:
            return None, why
    if style.n_neg:
        neg, why = _points(obj, style.n_neg, "negative_points", w, h)  # type: ignore[assignment]
        if neg is None:
            return None, why
    if box is not None and any(not (box[0] <= x <= box[2] and box[1] <= y <= box[3]) for x, y in pos):
        warnings.append(f"instance {k}: positive point outside its box")
    return Instance(box=box, positive=pos, negative=neg), ""


def _dedup(instances: list[Instance], thr: float) -> list[Instance]:
    kept: list[Instance] = []
    for inst in instances:
        if inst.box is not None:
            dup = any(k.box is not None and box_iou(inst.box, k.box) > thr for k in kept)
        else:
            dup = any(k.positive == inst.positive and k.negative == inst.negative for k in kept)
        if not dup:
            kept.append(inst)
    return kept
