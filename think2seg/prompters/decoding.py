"""Which decoding a transformers prompter uses: the checkpoint's own generation config, or the released
evaluation's fresh one (``generation="authors"``).

    >>> from transformers import GenerationConfig
    >>> ckpt = GenerationConfig(top_k=1, top_p=0.001, repetition_penalty=1.05, pad_token_id=0)
    >>> g = checkpoint_config(ckpt, max_new_tokens=64, pad_token_id=0, temperature=1.0)
    >>> g.do_sample, g.top_k, g.top_p, g.repetition_penalty      # sampling is really sampling; the rest is kept
    (True, 0, 1.0, 1.05)
    >>> a = authors_config(ckpt, pad_token_id=0, temperature=0.0)
    >>> a.repetition_penalty, a.max_new_tokens, a.do_sample
    (1.0, 2048, False)
    >>> decoding_fields(a, "authors")["top_k"]
    50

``checkpoint``: the model's ``generation_config`` with ``max_new_tokens`` set; ``temperature == 0`` is greedy
with transformers' neutral values (a ``None`` would be refilled from the checkpoint); ``temperature > 0``
is multinomial sampling with ``top_p=1`` and top-k off (checkpoints often ship ``top_k=1`` /
``top_p=0.001``, which would make "sampling" greedy). ``authors``: a fresh config with every decoding
field set to the value the released 4.49 evaluation ran with (transformers >= 4.50 fills unset fields from
the checkpoint), and only the checkpoint's special tokens. In both, ``overrides`` (the prompter's
``generation_kwargs``) win.
"""

from __future__ import annotations

import copy
from typing import Any

GENERATION_MODES = ("checkpoint", "authors")
AUTHORS_MAX_NEW_TOKENS = 2048
# the released evaluation's decoding (transformers 4.49 defaults for what it leaves unset)
AUTHORS_GENERATION = {
    "do_sample": False,
    "temperature": 1.0,
    "top_p": 1.0,
    "top_k": 50,
    "repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "num_beams": 1,
    "length_penalty": 1.0,
    "use_cache": True,
    "max_new_tokens": AUTHORS_MAX_NEW_TOKENS,
}
RECORDED_FIELDS = ("do_sample", "temperature", "top_p", "top_k", "repetition_penalty", "max_new_tokens", "num_beams")


def check_mode(generation: str) -> str:
    """``generation`` if it is one of :data:`GENERATION_MODES`, else a ValueError naming the option."""
    if generation not in GENERATION_MODES:
        raise ValueError(f"unknown generation {generation!r} (option generation=); one of {list(GENERATION_MODES)}")
    return generation


def checkpoint_config(ckpt: Any, max_new_tokens: int, pad_token_id: int | None, temperature: float,
                      overrides: dict[str, Any] | None = None) -> Any:
    """A copy of the checkpoint's ``GenerationConfig`` ``ckpt`` set up for one ``generate`` call."""
    gen = copy.deepcopy(ckpt)
    gen.max_new_tokens = int(max_new_tokens)
    gen.max_length = None
    gen.num_return_sequences = 1
    if gen.pad_token_id is None:
        gen.pad_token_id = pad_token_id
    if temperature > 0:  # top_k=0 switches top-k off (None would take the checkpoint's, often 1)
        gen.do_sample, gen.temperature, gen.top_p, gen.top_k = True, float(temperature), 1.0, 0
    else:
        gen.do_sample, gen.temperature, gen.top_p, gen.top_k = False, 1.0, 1.0, 50
    for k, v in (overrides or {}).items():
        setattr(gen, k, v)
    return gen


def authors_config(ckpt: Any, pad_token_id: int | None, temperature: float,
                   overrides: dict[str, Any] | None = None) -> Any:
    """The released evaluation's fresh ``GenerationConfig`` (greedy only), with ``ckpt``'s eos/bos tokens."""
    from transformers import GenerationConfig

    if temperature > 0:
        raise ValueError("generation='authors' is greedy: temperature must be 0")
    fields = dict(AUTHORS_GENERATION)
    fields.update(pad_token_id=pad_token_id, eos_token_id=ckpt.eos_token_id, bos_token_id=ckpt.bos_token_id)
    fields.update(overrides or {})
    return GenerationConfig(**fields)


def decoding_fields(gen: Any, mode: str) -> dict[str, Any]:
    """What a run's ``config.json`` records of the decoding: ``{"generation": mode, <RECORDED_FIELDS>}``."""
    return {"generation": mode, **{k: getattr(gen, k, None) for k in RECORDED_FIELDS}}
