"""The two 0/1 format terms of the released reward, as trl reward functions.

>>> think_format_reward(["<think>a</think>\\n<answer>[]</answer>", "no tags"])
[1.0, 0.0]

- :func:`think_format_reward` — the completion fully matches ``<think>.*?</think>\\s*<answer>.*?</answer>``
  (DOTALL), the released regex;
- :class:`JsonFormatReward` — the answer parses, under the reward's parse policy, into a list of instance
  objects valid for the prompt style.

The released quirk — ``[]`` earns the JSON-format reward even when a target exists — is part of the
released parse policies; under ``lenient`` it is the option ``empty_json_ok_on_target`` (default False,
so that rejecting a present target earns nothing but the tag format).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from think2seg.core.parsing import tags_full_match
from think2seg.core.styles import DEFAULT_STYLE, PromptStyle
from think2seg.rewards.columns import BatchParser, ParsingReward, completion_text, image_sizes, load_gt_mask


def think_format_reward(completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
    """1.0 when the completion is exactly ``<think>..</think> <answer>..</answer>``, else 0.0."""
    return [1.0 if tags_full_match(completion_text(c)) else 0.0 for c in completions]


class JsonFormatReward(ParsingReward):
    """1.0 when the answer is a list of valid instance objects for the style (``[]`` included, see above)."""

    __name__ = "json_format"

    def __init__(
        self,
        style: str | PromptStyle = DEFAULT_STYLE,
        empty_json_ok_on_target: bool = False,
        parser: BatchParser | None = None,
        policy: str | None = None,
    ) -> None:
        super().__init__(style, parser, policy)
        # the released parsers accept "[]" whatever the target: the quirk is theirs, not an option
        self.empty_json_ok_on_target = empty_json_ok_on_target or self.policy != "lenient"

    def __call__(
        self,
        completions: Sequence[Any],
        image: Sequence[Any] | None = None,
        gt_mask: Any = None,
        **kwargs: Any,
    ) -> list[float | None]:
        sizes = image_sizes(image, len(completions))
        parsed = self._parse(completions, sizes)
        out: list[float | None] = []
        for k, r in enumerate(parsed):
            ok = r.json_ok
            if ok and r.is_empty and not self.empty_json_ok_on_target and gt_mask is not None:
                ok = not load_gt_mask(gt_mask[k], sizes[k]).any()
            out.append(1.0 if ok else 0.0)
        return out
