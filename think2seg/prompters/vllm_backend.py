"""vLLM as the generation backend of an HF checkpoint, behind the same prompter interface (GPU only).

    >>> p = build_prompter("vllm:/ckpt/think2seg-rs-3b?gpu_memory_utilization=0.8")   # doctest: +SKIP
    >>> p.generate(samples)                                  # [[greedy completion], ...] as HFPrompter  # doctest: +SKIP
    >>> p.requests(samples, n=8, temperature=1.0, seed=0)    # what vLLM is given (no vllm import)  # doctest: +SKIP

:class:`VLLMPrompter` is an :class:`~think2seg.prompters.hf.HFPrompter` for everything but generation:
family, image size (and a checkpoint's ``think2seg_prompter.json``), prompt text from the processor's
chat template, the image squashed to ``image_size`` first. vLLM re-processes the image with the model's
processor, so the request pins its pixel count (``mm_processor_kwargs`` min = max pixels = W x H) as the
HF path does. Decoding matches HFPrompter's: greedy at temperature 0, else multinomial sampling with
``top_p`` 1 and top-k off, ``repetition_penalty`` 1 unless ``generation_kwargs`` say otherwise
(``generation="authors"``, what the ``authors`` protocol asks for: ``max_tokens`` 2048 as the released
evaluation); every request has its own seed from ``seed`` and the sample id, so completions do not
depend on batching. :meth:`VLLMPrompter.generation_parameters` gives the ``SamplingParams`` fields used.
vLLM's kernels differ from transformers', so greedy completions can differ in rare near-ties.

Needs the ``vllm`` extra in its own environment (docs/gpus.md): vLLM pins its own torch build.
Options (spec query or keywords): ``gpu_memory_utilization`` (0.9; ``think2seg eval`` lowers it to leave
a SAM2 segmenter its memory, :func:`think2seg.evaluation.generation.vllm_memory_share`), ``max_model_len`` (4096),
``tensor_parallel_size`` (1), ``dtype`` (``auto``), plus HFPrompter's (``image_size``, ``style``...).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from think2seg.core.types import Sample
from think2seg.prompters.chat import own_think_tags
from think2seg.prompters.decoding import AUTHORS_GENERATION
from think2seg.prompters.hf import HFPrompter


class VLLMPrompter(HFPrompter):
    """An HF checkpoint generated with ``vllm.LLM`` (see module doc)."""

    def __init__(
        self,
        model_id_or_path: str,
        *,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int = 4096,
        tensor_parallel_size: int = 1,
        **kwargs: Any,
    ) -> None:
        if not 0 < gpu_memory_utilization <= 1:
            raise ValueError(f"gpu_memory_utilization {gpu_memory_utilization}: must be in (0, 1]")
        if max_model_len < 1:
            raise ValueError(f"max_model_len {max_model_len}: must be >= 1")
        super().__init__(model_id_or_path, **kwargs)
        self.engine_kwargs = {
            "gpu_memory_utilization": float(gpu_memory_utilization),
            "max_model_len": int(max_model_len),
            "tensor_parallel_size": int(tensor_parallel_size),
        }
        self.name = f"vllm:{model_id_or_path}"
        self._llm = None

    # -- the processor only (the chat template); the weights are vLLM's --------------------------
    @property
    def processor(self):
        if self._processor is None:
            from transformers import AutoProcessor

            kw = {"local_files_only": True} if self.local else {}
            self._processor = AutoProcessor.from_pretrained(
                self.model_id, trust_remote_code=self.trust_remote_code, **kw
            )
            own_think_tags(self._processor)
            self._check_image_size(self._processor)
        return self._processor

    def load(self):
        raise TypeError("VLLMPrompter holds no transformers model; use HFPrompter for that")

    def engine_args(self) -> dict[str, Any]:
        """Keyword arguments of ``vllm.LLM`` for this checkpoint (refused for a family vLLM does not ship)."""
        if not self.family.vllm:
            raise ValueError(f"{self.name}: vLLM has no {self.family.name} architecture; use hf:{self.model_id}")
        args: dict[str, Any] = {
            "model": self.model_id,
            "trust_remote_code": self.trust_remote_code,
            "limit_mm_per_prompt": {"image": 1},
            "dtype": "auto" if self._dtype is None else str(self._dtype),
            **self.engine_kwargs,
        }
        args["mm_processor_kwargs"] = self._pixel_kwargs()
        return args

    def _pixel_kwargs(self) -> dict[str, Any]:
        if not self.family.pin_pixels:
            return {}
        pixels = self.image_size[0] * self.image_size[1]
        return {"min_pixels": pixels, "max_pixels": pixels}

    def sampling_params(self, n: int = 1, temperature: float = 0.0, seed: int | None = None) -> dict[str, Any]:
        """Keyword arguments of ``vllm.SamplingParams`` (decoding as HFPrompter's, module doc)."""
        authors = self.generation == "authors"
        if authors and temperature > 0:
            raise ValueError("generation='authors' is greedy: temperature must be 0")
        params: dict[str, Any] = {
            "n": int(n),
            "temperature": float(temperature),
            "top_p": 1.0,
            "top_k": 0,  # off
            "repetition_penalty": 1.0,
            "max_tokens": AUTHORS_GENERATION["max_new_tokens"] if authors else self.max_new_tokens,
            "skip_special_tokens": True,
        }
        if seed is not None:
            params["seed"] = int(seed)
        params.update(self.generation_kwargs)
        return params

    def generation_parameters(self, temperature: float = 0.0) -> dict[str, Any]:
        """The ``SamplingParams`` fields :meth:`generate` uses at ``temperature`` (for result configs;
        the per-sample ``seed`` of sampled requests is left out)."""
        params = self.sampling_params(1, temperature)
        return {"backend": "vllm", "generation": self.generation, **params}

    def requests(
        self, samples: Sequence[Sample], n: int = 1, temperature: float = 0.0, seed: int = 0
    ) -> list[dict[str, Any]]:
        """One vLLM request per sample: ``{"prompt", "multi_modal_data": {"image"}, "mm_processor_kwargs",
        "sampling": SamplingParams kwargs}`` (the image a PIL RGB squashed to ``image_size``)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if temperature == 0 and n > 1:
            raise ValueError("n > 1 needs temperature > 0 (greedy decoding gives n identical completions)")
        out = []
        for s in samples:
            sample_seed = zlib.crc32(f"{seed}|{s.id}".encode()) & 0x7FFFFFFF if temperature > 0 else None
            out.append(
                {
                    "prompt": self.prompt_text(s.question),
                    "multi_modal_data": {"image": self.model_image(s)},
                    "mm_processor_kwargs": self._pixel_kwargs(),
                    "sampling": self.sampling_params(n, temperature, sample_seed),
                }
            )
        return out

    def samples_per_batch(self, n: int, total: int) -> int:
        return max(1, total)  # vLLM schedules all requests itself: one call

    def generate_batch(
        self, samples: list[Sample], n: int, temperature: float, seed: int, prefill: list[str] | None
    ) -> list[list[str]]:
        if prefill is not None:
            raise ValueError("VLLMPrompter does not support prefill; use HFPrompter")
        try:
            from vllm import LLM, SamplingParams
        except ImportError as e:
            raise ImportError(
                "the vllm prompter needs the vllm package (pip install 'think2seg[vllm]' in its own "
                "environment, see docs/gpus.md)"
            ) from e
        if self._llm is None:
            self._llm = LLM(**self.engine_args())
        reqs = self.requests(samples, n=n, temperature=temperature, seed=seed)
        params = [SamplingParams(**r.pop("sampling")) for r in reqs]
        results = self._llm.generate(reqs, params, use_tqdm=False)
        return [[c.text for c in r.outputs] for r in results]
