"""Prompt styles (the paper's Table 6 prompt combinations), instruction templates, answer formatting.

>>> msgs = build_messages("Where could a plane take off?")          # reference template, bbox+2pos
>>> [m["role"] for m in msgs], [p["type"] for p in msgs[1]["content"]]
(['system', 'user'], ['image', 'text'])
>>> format_answer([Instance(box=(1, 2, 30, 40), positive=((5, 6), (7, 8)))], think="runway")
'<think>runway</think>\\n<answer>```json[{"bbox_2d": [1,2,30,40], "positive_points": [[5, 6], [7, 8]]}]```</answer>'

Styles fix which fields each instance carries and how many points: ``bbox``, ``2pos``, ``bbox+2pos``
(the default and the released one), ``bbox+4pos``, ``bbox+2pos+2neg`` (JSON key ``negative_points``).

Templates turn (question, style) into chat messages in the transformers format: a system message, then a
user message whose content is the image part FIRST and the text second. ``reference`` reproduces byte for
byte the instruction the released Think2Seg-RS checkpoints were trained on (use it with them: they answer
worse on any other wording); ``compact`` is a short instruction for the embedded tiny prompter, whose
every token costs CPU time. Coordinates in answers are absolute integer pixels of the image as the model
saw it (840x840 for Qwen2.5-VL as released, aspect ratio not kept: see :mod:`think2seg.core.geometry`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from think2seg.core.types import Instance

REFERENCE_SYSTEM = (
    "You are a remote sensing analysis assistant. Your task is to generate spatial prompts for the "
    "Segment Anything Model (SAM) based on a user's request."
)

@dataclass(frozen=True)
class PromptStyle:
    """Which prompts each instance carries: a box or not, and exact positive / negative point counts."""

    name: str
    box: bool
    n_pos: int
    n_neg: int = 0

    @property
    def keys(self) -> tuple[str, ...]:
        out = ("bbox_2d",) if self.box else ()
        out += ("positive_points",) if self.n_pos else ()
        return out + (("negative_points",) if self.n_neg else ())

    def items_text(self) -> str:
        """The numbered 'provide:' items of the instruction (reference wording, two spaces after 'N.')."""
        words = {1: "one point", 2: "two points", 4: "four points"}
        lines = []
        if self.box:
            lines.append("`bbox_2d`: A tight bounding box.")
        if self.n_pos:
            lines.append(
                f"`positive_points`: Exactly {words.get(self.n_pos, f'{self.n_pos} points')}, "
                "placed inside the target."
            )
        if self.n_neg:
            lines.append(
                f"`negative_points`: Exactly {words.get(self.n_neg, f'{self.n_neg} points')}, placed "
                "outside the target on nearby background that looks similar."
            )
        return "\n".join(f"{i}.  {line}" for i, line in enumerate(lines, 1))

    def example_json(self) -> str:
        """The two-instance example answer of the instruction (released formatting for bbox+2pos)."""
        examples = [
            (
                (310, 360, 567, 586),
                [(434, 474), (450, 460), (400, 420), (520, 540)],
                [(300, 600), (580, 350)],
            ),
            ((10, 200, 100, 320), [(50, 250), (90, 300), (30, 220), (70, 280)], [(5, 330), (110, 190)]),
        ]
        parts = []
        for box, pos, neg in examples:
            inst = Instance(
                box=box if self.box else None,
                positive=tuple(pos[: self.n_pos]),
                negative=tuple(neg[: self.n_neg]),
            )
            parts.append(instance_json(inst))
        return "[" + ", ".join(parts) + "]"


STYLES: dict[str, PromptStyle] = {
    s.name: s
    for s in (
        PromptStyle("bbox", box=True, n_pos=0),
        PromptStyle("2pos", box=False, n_pos=2),
        PromptStyle("bbox+2pos", box=True, n_pos=2),
        PromptStyle("bbox+4pos", box=True, n_pos=4),
        PromptStyle("bbox+2pos+2neg", box=True, n_pos=2, n_neg=2),
    )
}
DEFAULT_STYLE = "bbox+2pos"


def get_style(style: str | PromptStyle) -> PromptStyle:
    if isinstance(style, PromptStyle):
        return style
    try:
        return STYLES[style]
    except KeyError:
        raise ValueError(f"unknown prompt style {style!r}; choose one of {sorted(STYLES)}") from None


def instance_json(inst: Instance) -> str:
    """One instance object in the released formatting: box without spaces, points with ``", "``."""
    fields = []
    if inst.box is not None:
        fields.append('"bbox_2d": [' + ",".join(str(int(v)) for v in inst.box) + "]")
    for key, pts in (("positive_points", inst.positive), ("negative_points", inst.negative)):
        if pts:
            fields.append(f'"{key}": ' + json.dumps([[int(x), int(y)] for x, y in pts]))
    return "{" + ", ".join(fields) + "}"


def format_answer(instances: Sequence[Instance], think: str = "", *, sep: str = "\n") -> str:
    """A completion in the answer format: ``<think>..</think>{sep}<answer>```json[...]```</answer>``."""
    body = "[" + ", ".join(instance_json(i) for i in instances) + "]"
    return f"<think>{think}</think>{sep}<answer>```json{body}```</answer>"


# ---------------------------------------------------------------------------------------------------
# Templates


def _reference_text(question: str, style: PromptStyle) -> str:
    return (
        f'Please find "{question}", identify the target. For each target instance, provide:\n'
        f"{style.items_text()}\n"
        "Output your thinking process in <think> </think> tags.\n"
        "Output the final answer in <answer> </answer> tags with the specified JSON format. "
        "If no targets are found, output an empty list.\n"
        "i.e. <think> thinking process here </think> \n"
        f"<answer>```json{style.example_json()}```</answer>"
    )


def _compact_text(question: str, style: PromptStyle) -> str:
    return f"{question}\nAnswer {'+'.join(style.keys)} per target in <think></think><answer></answer>."


TEMPLATES = {
    "reference": (REFERENCE_SYSTEM, _reference_text),
    "compact": (None, _compact_text),
    "compact-qfirst": (None, _compact_text),
}
# templates whose user turn puts the text BEFORE the image: under causal attention the image tokens then
# see the question, so each can work out its own relevance (what a tiny model trained from scratch needs)
TEXT_FIRST = frozenset({"compact-qfirst"})


def instruction_text(
    question: str, style: str | PromptStyle = DEFAULT_STYLE, template: str = "reference"
) -> str:
    """The user text of a template (without the image part)."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}; choose one of {sorted(TEMPLATES)}")
    return TEMPLATES[template][1](question, get_style(style))


def build_messages(
    question: str,
    style: str | PromptStyle = DEFAULT_STYLE,
    template: str = "reference",
    image: Any = None,
) -> list[dict[str, Any]]:
    """Chat messages (transformers format): [system,] user = [image part, text part] (text first for the
    templates in :data:`TEXT_FIRST`).

    ``image`` (a PIL image, array or path) is put in the image part when given; processors that take
    images separately (``processor(text=..., images=...)``) need only the placeholder.
    """
    text = instruction_text(question, style, template)
    system = TEMPLATES[template][0]
    image_part: dict[str, Any] = {"type": "image"}
    if image is not None:
        image_part["image"] = image
    messages: list[dict[str, Any]] = []
    if system is not None:
        messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
    parts = [image_part, {"type": "text", "text": text}]
    messages.append({"role": "user", "content": parts[::-1] if template in TEXT_FIRST else parts})
    return messages
