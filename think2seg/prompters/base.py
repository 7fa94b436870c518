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

from tqdm.auto import tqdm

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


def check_generate_args(
    samples: Sequence[Sample], n: int, temperature: float, prefill: Sequence[str] | None = None, sampling: bool = True
) -> list[Sample]:
    """The rules every ``generate`` shares: ``n >= 1``; ``temperature >= 0``; ``n > 1`` only when sampling
    (``sampling=False``: a prompter whose answers are deterministic repeats them); one ``prefill`` text per
    sample. Raises ``ValueError`` naming the argument; returns ``samples`` as a list."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if sampling and temperature == 0 and n > 1:
        raise ValueError("n > 1 needs temperature > 0 (greedy decoding gives n identical completions)")
    samples = list(samples)
    if prefill is not None and len(prefill) != len(samples):
        raise ValueError(f"prefill: {len(prefill)} texts for {len(samples)} samples")
    return samples


class BatchedGeneration:
    """The ``generate`` skeleton of model-backed prompters: check the arguments, cut the samples into
    batches (``batch_size`` sequences, so ``batch_size // n`` samples each), show progress, and ask
    :meth:`generate_batch` for each batch's completions. A backend implements :meth:`generate_batch`
    (and may change :meth:`samples_per_batch`, e.g. an engine that schedules everything itself)."""

    name: str
    batch_size: int = 1

    def samples_per_batch(self, n: int, total: int) -> int:
        return max(1, self.batch_size // n)

    def generate_batch(
        self, samples: list[Sample], n: int, temperature: float, seed: int, prefill: list[str] | None
    ) -> list[list[str]]:
        raise NotImplementedError

    def generate(
        self,
        samples: Sequence[Sample],
        n: int = 1,
        temperature: float = 0.0,
        seed: int = 0,
        prefill: Sequence[str] | None = None,
    ) -> list[list[str]]:
        """``n`` completions per sample (list in sample order, each of length ``n``); ``prefill``: one
        assistant-turn start per sample, returned as the start of its completions."""
        samples = check_generate_args(samples, n, temperature, prefill)
        per_batch = self.samples_per_batch(n, len(samples))
        starts = range(0, len(samples), per_batch)
        out: list[list[str]] = []
        for start in tqdm(starts, desc=f"{self.name} generate", unit="batch", disable=len(starts) <= 1):
            chunk = samples[start : start + per_batch]
            pre = list(prefill[start : start + per_batch]) if prefill is not None else None
            out.extend(self.generate_batch(chunk, n, temperature, seed, pre))
        return out
