"""Oracle prompter: prompts derived from the ground-truth mask (the segmenter's upper bound per style).

>>> p = OraclePrompter(mode="components", style="bbox+2pos", image_size=840)
>>> p.generate(samples)                        # [[completion_text], ...] one per sample, deterministic  # doctest: +SKIP
>>> p.prompts(sample)                          # list[Instance] in 840x840 model space  # doctest: +SKIP
>>> mask_to_instances(mask, "bbox+2pos")       # list[Instance] in the mask's own pixel space  # doctest: +SKIP

Spaces: ``sample.load_mask()`` ((H, W) bool, native size) is resized with nearest neighbour to
``image_size`` (W, H; aspect ratio NOT kept, like the images the LVLM sees), and every coordinate of the
completions is an integer pixel ``(x=column, y=row)`` of that model-space mask, as a prompter emits them.

Modes:
- ``components``: one instance per 8-connected component of the mask (specks under ``min_area`` pixels
  dropped unless that would drop every component; at most ``max_instances`` largest components kept).
- ``whole``: a single instance for the whole mask (box around all components; points spread over them).

Per instance: the prompts of :func:`think2seg.core.mask_to_prompts.mask_to_instances` (tight box, deep spread
positive points, nearby negative points).

Completions go through :func:`think2seg.core.styles.format_answer` with a short think text. The oracle is
deterministic: ``generate(..., n)`` returns ``n`` identical copies whatever the temperature and seed.
"""

from __future__ import annotations

from collections.abc import Sequence

from think2seg.core.geometry import as_size, resize_mask
from think2seg.core.mask_to_prompts import MODES, mask_to_instances
from think2seg.core.styles import DEFAULT_STYLE, PromptStyle, format_answer, get_style
from think2seg.core.types import Instance, Sample
from think2seg.prompters.base import check_generate_args

__all__ = ["MODES", "OraclePrompter", "mask_to_instances"]


class OraclePrompter:
    """Prompts from the ground truth; implements the :class:`~think2seg.prompters.base.Prompter` protocol."""

    def __init__(
        self,
        mode: str = "components",
        style: str | PromptStyle = DEFAULT_STYLE,
        image_size: int | Sequence[int] = 840,
        max_instances: int | None = 32,
        min_area: int = 32,
        neg_margin: int | None = None,
    ):
        if mode not in MODES:
            raise ValueError(
                f"unknown oracle mode {mode!r}; choose one of {list(MODES)} (spec 'oracle:<mode>')"
            )
        self.mode = mode
        self.style = get_style(style)
        self.image_size = as_size(image_size)
        self.max_instances = max_instances
        self.min_area = min_area
        self.neg_margin = neg_margin
        self.name = f"oracle:{mode}"

    def prompts(self, sample: Sample) -> list[Instance]:
        """The oracle instances of one sample in model space (``image_size``)."""
        mask = resize_mask(sample.load_mask(), self.image_size)
        return mask_to_instances(
            mask,
            self.style,
            self.mode,
            max_instances=self.max_instances,
            min_area=self.min_area,
            neg_margin=self.neg_margin,
        )

    def completion(self, sample: Sample) -> str:
        instances = self.prompts(sample)
        if not instances:
            think = "The ground-truth mask is empty: there is no target."
        elif self.mode == "whole":
            think = "One prompt set for the whole ground-truth mask."
        else:
            k = len(instances)
            think = f"The ground-truth mask has {k} target region{'s' if k != 1 else ''}."
        return format_answer(instances, think=think)

    def generate(
        self, samples: Sequence[Sample], n: int = 1, temperature: float = 0.0, seed: int = 0
    ) -> list[list[str]]:
        """``n`` identical completions per sample (the oracle ignores ``temperature`` and ``seed``)."""
        samples = check_generate_args(samples, n, temperature, sampling=False)
        return [[self.completion(s)] * n for s in samples]

    def __repr__(self) -> str:
        return f"OraclePrompter(mode={self.mode!r}, style={self.style.name!r}, image_size={self.image_size})"
