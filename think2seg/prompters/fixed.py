"""A question-independent baseline: the same prompts for every sample, placed as fractions of the image.

>>> p = FixedPrompter(image_size=112)                              # box over 7..93 % of the image
>>> p = build_prompter("fixed?box=0.07,0.07,0.9,0.9&points=0.82,0.87,0.12,0.65&image_size=112")  # doctest: +SKIP

A learned policy whose answers stop depending on the question collapses onto one of these (the GRPO demo
of the README did: a near-whole-image box that GrabCut turns into a saliency mask), so this row belongs in
every zero-shot table: a trained prompter is only reasoning if it beats the best constant answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from think2seg.core.geometry import DEFAULT_MODEL_SIZE, as_size
from think2seg.core.styles import DEFAULT_STYLE, PromptStyle, format_answer, get_style
from think2seg.core.types import Instance, Sample
from think2seg.prompters.base import check_generate_args


def _floats(value: str | Sequence[float], n: int, name: str) -> tuple[float, ...]:
    vals = [float(v) for v in value.split(",")] if isinstance(value, str) else [float(v) for v in value]
    if len(vals) % n or not vals or not all(0.0 <= v <= 1.0 for v in vals):
        raise ValueError(f"fixed prompter option {name}={value!r}: a multiple of {n} fractions in [0, 1]")
    return tuple(vals)


class FixedPrompter:
    """Always answers one instance: ``box`` and positive ``points`` given as fractions of (W, H)."""

    def __init__(
        self,
        *,
        box: str | Sequence[float] = (0.07, 0.07, 0.93, 0.93),
        points: str | Sequence[float] = (0.35, 0.35, 0.65, 0.65),
        style: str | PromptStyle = DEFAULT_STYLE,
        image_size: int | Sequence[int] = DEFAULT_MODEL_SIZE,
    ) -> None:
        self.style = get_style(style)
        self.image_size = as_size(image_size)
        w, h = self.image_size
        bx = _floats(box, 4, "box")[:4]
        pts = _floats(points, 2, "points")
        px = [(round(pts[i] * (w - 1)), round(pts[i + 1] * (h - 1))) for i in range(0, len(pts), 2)]
        if self.style.n_pos and len(px) != self.style.n_pos:
            raise ValueError(f"fixed prompter: style {self.style.name} needs {self.style.n_pos} points, got {len(px)}")
        inst = Instance(
            box=(round(bx[0] * (w - 1)), round(bx[1] * (h - 1)), round(bx[2] * (w - 1)), round(bx[3] * (h - 1)))
            if self.style.box
            else None,
            positive=tuple(px) if self.style.n_pos else (),
        )
        self.text = format_answer([inst], think="The same prompt for every question.")
        self.name = "fixed"

    def generate(
        self, samples: Sequence[Sample], n: int = 1, temperature: float = 0.0, seed: int = 0
    ) -> list[list[str]]:
        samples = check_generate_args(samples, n, temperature, sampling=False)
        return [[self.text] * n for _ in samples]
