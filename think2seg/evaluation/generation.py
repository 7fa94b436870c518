"""The decoding an evaluation uses: one function for ``think2seg eval``, the in-training evaluation and
checkpoint sweeps, so a training curve scores what ``think2seg eval`` scores.

    >>> from think2seg.evaluation.generation import eval_generation
    >>> eval_generation("authors")["repetition_penalty"], eval_generation("authors")["max_new_tokens"]
    (1.0, 2048)
    >>> eval_generation("strict")                     # the checkpoint's own generation config, greedy
    {'generation': 'checkpoint'}
    >>> eval_generation("authors")["generation"]      # the prompter option (hf: / vllm: / HFPrompter.attach)
    'authors'

Under a protocol whose ``generation`` is ``authors`` (the ``authors`` protocol) an HF or vLLM prompter
decodes with the released evaluation's fresh config (greedy, repetition penalty 1.0, 2048 new tokens,
:data:`think2seg.prompters.decoding.AUTHORS_GENERATION`), whatever the checkpoint's ``generation_config.json``
says (Qwen releases ship repetition penalty 1.05). Under ``checkpoint`` the model's own config is used
(greedy; the prompter's ``max_new_tokens``). What a prompter really used is its
``generation_parameters()``, written to each run's ``config.json``.

vLLM and SAM2 share the evaluation's GPU: :func:`vllm_memory_share` gives the ``gpu_memory_utilization``
that leaves a SAM2 segmenter its weights (4 B a parameter) plus :data:`SAM2_WORKING_BYTES`:

    >>> vllm_memory_share("sam2:large", total_bytes=24 * 2**30)   # a 24 GiB GPU
    0.86
    >>> vllm_memory_share("sam2:small", total_bytes=80 * 2**30)   # vLLM's default leaves enough
    0.9
"""

from __future__ import annotations

from typing import Any

from think2seg.core.metrics import DEFAULT_PROTOCOL, Protocol, get_protocol
from think2seg.prompters.decoding import AUTHORS_GENERATION
from think2seg.segmenters.spec import SAM2_PARAMS, WEIGHTLESS, parse_segmenter_spec

VLLM_DEFAULT_SHARE = 0.9  # vLLM's own default gpu_memory_utilization
# what a SAM2 segmenter needs next to vLLM on one GPU, besides its fp32 weights: the activations of one
# 1024 px image through the encoder and the decoder plus a CUDA context (an allowance, not measured)
SAM2_WORKING_BYTES = 2 * 2**30 + 2**29
# transformers' SAM ports (hf-sam2, samhq, sam3) can load any checkpoint: sized at this bound (assumed, not counted)
HF_SAM_PARAMS_BOUND = 1_000_000_000


def eval_generation(protocol: str | Protocol = DEFAULT_PROTOCOL, max_new_tokens: int | None = None) -> dict[str, Any]:
    """The evaluation generation settings of ``protocol``: ``{"generation": mode, **decoding fields}``.

    ``mode`` is the value of the prompters' ``generation`` option (``authors`` | ``checkpoint``); under
    ``authors`` the fixed decoding fields follow (``do_sample``, ``temperature``, ``top_p``, ``top_k``,
    ``repetition_penalty``, ``max_new_tokens``...); under ``checkpoint`` they come from the checkpoint.
    ``max_new_tokens``: an explicit cap instead of the protocol's (e.g. a training run's
    ``--eval_max_new_tokens``); it is part of the returned settings, so whoever records them records it."""
    mode = get_protocol(protocol).generation
    out: dict[str, Any] = {"generation": mode, **(AUTHORS_GENERATION if mode == "authors" else {})}
    if max_new_tokens is not None:
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens {max_new_tokens}: must be >= 1")
        out["max_new_tokens"] = int(max_new_tokens)
    return out


def prompter_options(settings: dict[str, Any]) -> dict[str, Any]:
    """The HF / vLLM prompter keyword options that decode with ``settings`` (from :func:`eval_generation`):
    the ``generation`` mode, and a ``max_new_tokens`` that differs from the mode's own."""
    options: dict[str, Any] = {"generation": settings["generation"]}
    cap = settings.get("max_new_tokens")
    if settings["generation"] == "authors" and cap != AUTHORS_GENERATION["max_new_tokens"]:
        options["generation_kwargs"] = {"max_new_tokens": cap}
    elif settings["generation"] != "authors" and cap is not None:
        options["max_new_tokens"] = cap
    return options


def vllm_memory_share(segmenter: str, total_bytes: int | None) -> float | None:
    """The ``gpu_memory_utilization`` of a vLLM prompter that shares a ``total_bytes`` GPU with
    ``segmenter`` (a segmenter spec): vLLM's default 0.9, lowered so that a SAM2 model keeps its fp32
    weights plus :data:`SAM2_WORKING_BYTES`; rounded down to 0.01. None when ``total_bytes`` is None (no
    GPU: vLLM's own default applies). Segmenters without weights (grabcut, boxfill) need nothing;
    transformers' SAM ports are sized at :data:`HF_SAM_PARAMS_BOUND`.
    Raises ``ValueError`` when the GPU is too small to hold both."""
    if total_bytes is None:
        return None
    spec = parse_segmenter_spec(segmenter)
    if spec.backend in WEIGHTLESS:
        return VLLM_DEFAULT_SHARE
    # the shipped mini sizes are smaller than tiny: tiny's count bounds them
    params = SAM2_PARAMS.get(spec.size, SAM2_PARAMS["tiny"]) if spec.backend == "sam2" else HF_SAM_PARAMS_BOUND
    need = 4 * params + SAM2_WORKING_BYTES
    share = min(VLLM_DEFAULT_SHARE, int(100 * (total_bytes - need) / total_bytes) / 100)
    if share < 0.1:
        raise ValueError(
            f"a {total_bytes / 2**30:.1f} GiB GPU cannot hold vLLM and {segmenter} "
            f"({need / 2**30:.1f} GiB for SAM2); set ?gpu_memory_utilization= yourself or use a smaller SAM2"
        )
    return share
