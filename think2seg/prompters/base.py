"""The prompter protocol: a batch of samples -> ``n`` completion texts per sample.

>>> p = build_prompter("oracle")                                        # doctest: +SKIP
>>> p.generate(samples, n=1)          # [[completion_text], ...] greedy  # doctest: +SKIP
>>> p.generate(samples, n=8, temperature=1.0, seed=0)                   # sampled, seeded  # doctest: +SKIP

``image_size`` is the model-space size the completions' coordinates refer to (840 for Qwen2.5-VL as
released). Completions are raw text in the answer format (``<think>..</think><answer>..</answer>``);
parse them with :func:`think2seg.core.parsing.parse_completion`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from think2seg.core.types import Sample


@runtime_checkable
class Prompter(Protocol):
    name: str
    image_size: tuple[int, int]

    def generate(
        self,
        samples: Sequence[Sample],
        n: int = 1,
        temperature: float = 0.0,
        seed: int = 0,
    ) -> list[list[str]]: ...
