"""Which completion tokens carry the GRPO policy-gradient loss: all of them (the paper) or the reasoning only.

    >>> import torch
    >>> from think2seg.training.loss_tokens import think_token_mask
    >>> class Tok:  # any tokenizer with ``decode``; here one character per token id
    ...     def decode(self, ids, skip_special_tokens=False):
    ...         return "".join(chr(i) for i in ids)
    >>> text = "<think>roads</think><answer>[]</answer>"
    >>> ids = torch.tensor([[ord(c) for c in text]])
    >>> mask = think_token_mask(ids, torch.ones_like(ids), Tok())
    >>> int(mask.sum()) == len("<think>roads</think>")
    True

``loss_tokens`` (a training option, :class:`think2seg.training.grpo.Think2SegArgs`):

- ``completion``: every generated token is trained with the group advantage (trl's GRPO, the paper).
- ``think``: only the tokens up to and including the one that closes ``</think>`` carry the loss; the
  answer's tokens are still generated, parsed, segmented and rewarded, and the reward is unchanged
  (mask-only), but no gradient is taken through their log-probabilities. A completion without
  ``</think>`` keeps all its tokens (there is no reasoning span to single out, and its format failure
  should be trained away). Why this exists and what it measured: ``docs/warmstart.md``.

The mask reaches trl's :class:`~trl.GRPOTrainer` through its own per-token loss mask (the ``tool_mask``
entry of a generation batch, which ``_compute_loss`` multiplies into ``completion_mask``), set by the
small subclass :class:`ThinkLossGRPOTrainer`; the trainer itself is not forked. The token normaliser
``num_items_in_batch`` is recomputed from the new mask, so ``dapo``/``bnpo`` losses average over the
trained tokens only.
"""

from __future__ import annotations

from typing import Any

import torch
from trl import GRPOTrainer

__all__ = ["LOSS_TOKENS", "ThinkLossGRPOTrainer", "check_loss_tokens", "think_token_mask", "trainer_class"]

LOSS_TOKENS = ("completion", "think")
THINK_CLOSE = "</think>"


def check_loss_tokens(value: str) -> str:
    """The canonical spelling of a ``loss_tokens`` option, or ValueError naming the option."""
    v = str(value).strip().lower()
    if v not in LOSS_TOKENS:
        raise ValueError(f"{value!r} is not one of {', '.join(LOSS_TOKENS)}")
    return v


def _close_index(ids: list[int], tokenizer: Any, close: str) -> int | None:
    """Smallest k such that the first k tokens decode to a text containing ``close`` (binary search over
    prefixes: decoding is monotone in k for a prefix), or None when the whole sequence does not."""
    def has(k: int) -> bool:
        return close in tokenizer.decode(ids[:k], skip_special_tokens=False)

    if not ids or not has(len(ids)):
        return None
    lo, hi = 1, len(ids)
    while lo < hi:
        mid = (lo + hi) // 2
        if has(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def think_token_mask(completion_ids: torch.Tensor, completion_mask: torch.Tensor, tokenizer: Any,
                     close: str = THINK_CLOSE) -> torch.Tensor:
    """Per-token loss mask keeping the reasoning span of each completion.

    completion_ids, completion_mask: (B, C) right-padded generation batch (trl's layout; mask 1 on real
    tokens). Returns a (B, C) tensor of completion_mask's dtype and device: 1 on tokens 0..k-1 where token
    k-1 completes ``close``, 0 after; the completion_mask row unchanged when ``close`` never appears.
    """
    out = torch.zeros_like(completion_mask)
    for row, (ids, m) in enumerate(zip(completion_ids.tolist(), completion_mask.tolist(), strict=True)):
        n = int(sum(m))
        k = _close_index(ids[:n], tokenizer, close)
        out[row, : (n if k is None else k)] = 1
    return out * completion_mask


class ThinkLossGRPOTrainer(GRPOTrainer):
    """trl's GRPOTrainer with the policy loss restricted to the ``<think>`` span (``loss_tokens: think``)."""

    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        tok = getattr(self.processing_class, "tokenizer", self.processing_class)
        mask = think_token_mask(out["completion_ids"], out["completion_mask"], tok)
        if out.get("tool_mask") is not None:
            mask = mask * out["tool_mask"]
        out["tool_mask"] = mask
        out["num_items_in_batch"] = self.accelerator.gather(mask.sum()).sum()
        mode = "train" if self.model.training else "eval"
        share = mask.sum() / out["completion_mask"].sum().clamp(min=1)
        self._metrics[mode]["loss_tokens/trained_share"].append(self.accelerator.gather(share).mean().item())
        return out


def trainer_class(loss_tokens: str) -> type[GRPOTrainer]:
    """The GRPOTrainer class for a ``loss_tokens`` option."""
    return ThinkLossGRPOTrainer if check_loss_tokens(loss_tokens) == "think" else GRPOTrainer
