"""Prompters: a batch of samples -> ``n`` completion texts per sample (see :mod:`.base` for the protocol).

    >>> from think2seg.prompters import build_prompter
    >>> build_prompter("oracle")                            # GT mask -> one instance per component, 840 px  # doctest: +SKIP
    >>> build_prompter("oracle:whole", style="bbox")       # one instance for the whole mask  # doctest: +SKIP
    >>> build_prompter("tiny")                              # the shipped tiny Qwen2.5-VL  # doctest: +SKIP
    >>> build_prompter("tiny:/runs/grpo/checkpoint-100")  # doctest: +SKIP
    >>> build_prompter("hf:/ckpt/think2seg-rs-3b")          # Qwen2.5-VL / InternVL3 / LLaVA, auto family  # doctest: +SKIP
    >>> build_prompter("hf:OpenGVLab/InternVL3-2B-hf?image_size=896&batch_size=4")  # doctest: +SKIP
    >>> build_prompter("hf:/ckpt/odd-config?family=internvl3")   # force the family  # doctest: +SKIP
    >>> build_prompter("vllm:/ckpt/think2seg-rs-3b?gpu_memory_utilization=0.8")   # vLLM generation (GPU)  # doctest: +SKIP

Spec grammar: ``KIND[:ARG][?key=value&key=value...]``.

- ``oracle`` | ``oracle:components`` | ``oracle:whole`` -> :class:`OraclePrompter` (options: ``style``,
  ``image_size``, ``max_instances``, ``min_area``, ``neg_margin``).
- ``tiny`` | ``tiny:PATH`` -> :class:`think2seg.prompters.tiny.TinyPrompter` (imported lazily; options:
  ``batch_size``, ``max_new_tokens``, ``template``, ``style``).
- ``fixed`` -> :class:`think2seg.prompters.fixed.FixedPrompter`, the same prompts for every question
  (options ``box`` and ``points`` as comma-separated fractions of the image, ``style``, ``image_size``).
- ``tiny-grpo``, ``tiny-grpo-segzero``, ``tiny-grpo-visionreasoner``, ``tiny-grpo-remotereasoner`` -> the
  shipped GRPO policies (:data:`think2seg.prompters.tiny.SHIPPED`, same options as ``tiny``).
- ``replay:RUN_DIR`` -> :class:`think2seg.prompters.replay.ReplayPrompter`, the completions an evaluation
  run recorded (score the same answers under another protocol).
- ``hf:PATH_OR_HUB_ID`` -> :class:`HFPrompter` (options: every keyword of its constructor, e.g.
  ``family``, ``image_size``, ``style``, ``template``, ``dtype``, ``device``, ``attn_implementation``,
  ``max_new_tokens``, ``trust_remote_code``, ``batch_size``, ``generation`` = ``checkpoint`` | ``authors``;
  ``think2seg eval`` sets ``generation`` from the protocol unless the spec names it).
- ``vllm:PATH_OR_HUB_ID`` -> :class:`think2seg.prompters.vllm_backend.VLLMPrompter` (HFPrompter's options
  plus ``gpu_memory_utilization``, ``max_model_len``, ``tensor_parallel_size``; needs the vllm extra).

Query values are converted: integers -> int, ``true``/``false`` -> bool, ``WxH`` for ``image_size`` ->
``(W, H)``; everything else stays a string. Keyword arguments of :func:`build_prompter` override the
query. The ``?`` is split off at the LAST ``?`` of the spec.
"""

from __future__ import annotations

from typing import Any

from think2seg.core.specs import split_options
from think2seg.prompters.base import Prompter
from think2seg.prompters.families import FAMILIES
from think2seg.prompters.hf import HFPrompter
from think2seg.prompters.oracle import OraclePrompter, mask_to_instances
from think2seg.prompters.tiny import SHIPPED

__all__ = [
    "FAMILIES",
    "HFPrompter",
    "OraclePrompter",
    "Prompter",
    "build_prompter",
    "mask_to_instances",
    "parse_spec",
]

KINDS = ("oracle", "tiny", "hf", "fixed", "vllm", "replay")



def _value(key: str, raw: str) -> Any:
    low = raw.strip().lower()
    if low in ("true", "yes"):
        return True
    if low in ("false", "no"):
        return False
    if low in ("none", "null"):
        return None
    if key == "image_size" and "x" in low:
        w, h = low.split("x", 1)
        if w.isdigit() and h.isdigit():
            return (int(w), int(h))
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        return raw


def parse_spec(spec: str) -> tuple[str, str | None, dict[str, Any]]:
    """``"hf:/p?family=llava&batch_size=2"`` -> ``("hf", "/p", {"family": "llava", "batch_size": 2})``."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(
            f"empty prompter spec {spec!r}; use one of oracle, oracle:whole, tiny, tiny:PATH, hf:PATH"
        )
    spec, raw_options = split_options(spec.strip(), "prompter spec")
    options: dict[str, Any] = {key: _value(key, raw) for key, raw in raw_options.items()}
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind in SHIPPED and not arg:
        return kind, None, options
    if kind not in KINDS:
        raise ValueError(f"unknown prompter kind {kind!r} in spec {spec!r}; choose one of {list(KINDS)}")
    return kind, (arg or None), options


def build_prompter(spec: str, **kwargs: Any) -> Prompter:
    """A prompter from a spec string (module doc); ``kwargs`` go to its constructor and win over the query."""
    kind, arg, options = parse_spec(spec)
    options.update(kwargs)
    try:
        if kind == "oracle":
            return OraclePrompter(mode=arg or "components", **options)
        if kind == "fixed":
            from think2seg.prompters.fixed import FixedPrompter

            return FixedPrompter(**options)
        if kind == "replay":
            from think2seg.prompters.replay import ReplayPrompter

            if arg is None:
                raise ValueError("prompter spec 'replay:' needs an evaluation run directory")
            return ReplayPrompter(arg)
        if kind == "tiny" or kind in SHIPPED:
            from think2seg.prompters import tiny

            spec = f"tiny:{arg}" if arg else kind
            if not options:
                return tiny.from_spec(spec)
            p = tiny.TinyPrompter(tiny.shipped_dir(kind) if kind in SHIPPED else arg, **options)
            p.name = spec
            return p
        if arg is None:
            raise ValueError(
                f"prompter spec '{kind}:' needs a local directory or a hub id, e.g. {kind}:/ckpt/qwen2.5-vl-3b"
            )
        if kind == "vllm":
            from think2seg.prompters.vllm_backend import VLLMPrompter

            return VLLMPrompter(arg, **options)
        return HFPrompter(arg, **options)
    except TypeError as e:
        raise ValueError(f"prompter spec {spec!r}: bad option ({e})") from e
