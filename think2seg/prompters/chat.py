"""Chat templates whose generation prompt opens the ``<think>`` block themselves (Qwen3.5-style thinking
templates), made to end at the assistant header so that the model writes ``<think>`` as the reference
instruction asks it to.

    >>> from think2seg.prompters.chat import OPEN_THINK, own_think_tags
    >>> own_think_tags(processor)        # True when the template was wrapped  # doctest: +SKIP
    >>> processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)   # doctest: +SKIP
    '...<|im_start|>assistant\\n'        # was '...<|im_start|>assistant\\n<think>\\n'

Why: the format reward and the parsers read ``<think>...</think><answer>...</answer>`` in the completion.
A template that writes ``<think>\\n`` into the prompt would leave the completion without its opening tag,
so every answer would fail the format check. The wrapper renders the original template into a Jinja
block and cuts a trailing ``<think>`` (with or without its newline) only when ``add_generation_prompt``
is set; everything else renders as before. The same wrapped template is what trl renders in training
(:func:`think2seg.training.grpo.make_trainer` calls this too), so training and evaluation prompts agree.
"""

from __future__ import annotations

from typing import Any

OPEN_THINK = "<think>"
_MARK = "{# think2seg: own think tags #}"
_WRAP = (
    _MARK + "{%- set __t2s_out -%}{template}{%- endset -%}"
    "{%- if add_generation_prompt is defined and add_generation_prompt and __t2s_out.rstrip().endswith('" + OPEN_THINK + "') -%}"
    "{{- __t2s_out.rstrip()[:-" + str(len(OPEN_THINK)) + "] -}}"
    "{%- else -%}{{- __t2s_out -}}{%- endif -%}"
)


def opens_think(processor: Any) -> bool:
    """Whether the processor's generation prompt ends inside an opened ``<think>`` block."""
    msgs = [{"role": "user", "content": [{"type": "text", "text": "x"}]}]
    text = processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    return text.rstrip().endswith(OPEN_THINK)


def own_think_tags(processor: Any) -> bool:
    """Wrap ``processor.chat_template`` (see module doc) when its generation prompt opens ``<think>``;
    True when it did. Idempotent; processors without a chat template are left alone."""
    template = getattr(processor, "chat_template", None)
    if not isinstance(template, str) or template.startswith(_MARK) or not opens_think(processor):
        return False
    processor.chat_template = _WRAP.replace("{template}", template)
    tok = getattr(processor, "tokenizer", None)
    if tok is not None and isinstance(getattr(tok, "chat_template", None), str):
        tok.chat_template = processor.chat_template
    if opens_think(processor):  # a template the wrapper cannot cut: say so rather than train on it
        raise ValueError("could not remove the '<think>' that this chat template opens in its generation prompt")
    return True
