"""transformers LVLMs as prompters: Qwen2.5-VL (the paper's), InternVL3 and LLaVA-1.5 (Table 4 ablation).

    >>> p = HFPrompter("/ckpt/think2seg-rs-3b")            # local save_pretrained dir (or a hub id)  # doctest: +SKIP
    >>> p.family.name, p.image_size                         # from config.json's model_type  # doctest: +SKIP
    ('qwen2.5-vl', (840, 840))
    >>> p.generate(samples)                                 # [[greedy completion], ...] one per sample  # doctest: +SKIP
    >>> p.generate(samples, n=8, temperature=1.0, seed=0)   # 8 sampled completions per sample, seeded  # doctest: +SKIP
    >>> HFPrompter("OpenGVLab/InternVL3-2B-hf")             # family internvl3, 896 px  # doctest: +SKIP
    >>> HFPrompter("llava-hf/llava-1.5-7b-hf", style="bbox")  # family llava, 336 px  # doctest: +SKIP
    >>> HFPrompter.attach(model, processor, image_size=840)    # a live in-memory model (training evals)  # doctest: +SKIP

Families (auto-detected from ``config.model_type``, or forced with ``family=``) are the registry of
:mod:`think2seg.prompters.families`; docs/models.md tells, for each, its class, default image size and what
its processor then does with the image.

A chat template whose generation prompt opens ``<think>`` itself (Qwen3.5's thinking template) is wrapped
so the prompt ends at the assistant header and the model writes the tags the reference instruction asks
for (:mod:`think2seg.prompters.chat`).

A local checkpoint written by ``think2seg train`` carries ``think2seg_prompter.json`` (image size,
template, style it was trained with): those become the defaults, so ``hf:runs/lora_24gb`` answers in its
448 px space without ``?image_size=448``; explicit options still win.

InternVL3 must be a transformers-native ``*-hf`` checkpoint (``model_type: internvl``); the original
remote-code repos (``internvl_chat``) are refused with a message saying so.

Image path: ``sample.load_image()`` ((H, W, 3) uint8 RGB, native size) is squashed to ``image_size``
(W, H; aspect ratio NOT kept) with :func:`think2seg.core.geometry.resize_image`, then given to the processor.
The completions' coordinates are integer pixels of that ``image_size`` image (map them back with
:func:`think2seg.core.geometry.prompts_to_native`).

Text path: :func:`think2seg.core.styles.build_messages` (system + user = [image, text]) rendered by the
processor's chat template with the generation prompt. Prompts are never truncated (cut image tokens are
the "Image features and image tokens do not match" failure); batches are LEFT padded.

Decoding: ``temperature == 0`` is greedy (``n`` must be 1), otherwise multinomial sampling; which
generation config that means (the checkpoint's, or with ``generation="authors"`` the released evaluation's
fresh one) is :mod:`think2seg.prompters.decoding`'s; :meth:`HFPrompter.generation_parameters` gives what
is used. Each batch is seeded with ``transformers.set_seed`` from ``seed`` and the ids of its samples, so
the same seed and the same batches give the same completions, also after a resume. ``batch_size`` counts
sequences: a batch holds ``max(1, batch_size // n)`` samples, each repeated ``n`` times. Completions are
the decoded new tokens without special tokens, not stripped.

Prefill (probing): ``generate(samples, prefill=[...])`` starts the assistant turn of each sample with the
given text (e.g. ``"<think>The request refers to runways"``) and returns it followed by what the model
wrote. Cut a prefill where the tokenizer would cut the model's own text (a BPE tokenizer may merge a
prefill's last characters with the next ones and the model then sees a token sequence it never wrote).

Devices: ``device`` defaults to CUDA when available, else CPU; ``dtype`` to bf16 on CUDA (if supported)
else fp32; ``attn_implementation`` to flash_attention_2 on CUDA when ``flash_attn`` is installed, else
sdpa (falling back to eager for a model that has no sdpa). ``trust_remote_code`` stays False unless asked.
Weights load lazily (first :meth:`HFPrompter.generate` or :meth:`HFPrompter.load`), once per process for
each (path, dtype, device, attention) combination.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from think2seg.core.errors import ModelNotFoundError
from think2seg.core.geometry import as_size, resize_image
from think2seg.core.model_dirs import check_model_dir, looks_local, read_model_type
from think2seg.core.styles import DEFAULT_STYLE, TEMPLATES, PromptStyle, build_messages, get_style
from think2seg.core.types import Sample
from think2seg.prompters.base import BatchedGeneration
from think2seg.prompters.chat import own_think_tags
from think2seg.prompters.decoding import (
    authors_config,
    check_mode,
    checkpoint_config,
    decoding_fields,
)
from think2seg.prompters.families import (  # noqa: F401  (re-exported: the family registry's old home)
    FAMILIES,
    META_FILE,
    Family,
    family_of_model_type,
    read_checkpoint_meta,
    read_meta,
    resolve_family,
)

log = logging.getLogger(__name__)


_CACHE: dict[tuple, tuple[Any, Any]] = {}  # (path, family, dtype, device, attn, remote) -> (model, processor)


def _torch_dtype(dtype: Any, device: str):
    import torch

    if dtype is None:
        if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    name = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32"}.get(
        str(dtype), str(dtype)
    )
    value = getattr(torch, name, None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r} (option dtype=); use bfloat16, float16 or float32")
    return value


class HFPrompter(BatchedGeneration):
    """A transformers LVLM checkpoint as a :class:`~think2seg.prompters.base.Prompter` (see module doc)."""

    def __init__(
        self,
        model_id_or_path: str | Path,
        *,
        family: str | None = None,
        image_size: int | Sequence[int] | None = None,
        style: str | PromptStyle | None = None,
        template: str | None = None,
        dtype: Any = None,
        device: str | None = None,
        attn_implementation: str | None = None,
        max_new_tokens: int | None = None,
        trust_remote_code: bool = False,
        batch_size: int = 8,
        generation_kwargs: dict[str, Any] | None = None,
        generation: str = "checkpoint",
    ):
        self.generation = check_mode(generation)
        spec = str(model_id_or_path)
        self.local = looks_local(spec)
        if self.local:
            self.model_id = str(check_model_dir(spec, "hf prompter").resolve())
        else:
            self.model_id = spec
        self.trust_remote_code = bool(trust_remote_code)
        self.model_type = self._read_model_type()
        # a trained checkpoint says how it was driven (think2seg_prompter.json); explicit arguments win
        meta = read_checkpoint_meta(self.model_id, f"hf:{spec}") if self.local else {}
        given_style = get_style(style).name if style is not None else None
        if given_style and meta.get("style") and given_style != meta["style"]:
            log.warning("%s was trained with style %s; driving it with %s", spec, meta["style"], given_style)
        self._configure(
            family,
            image_size if image_size is not None else meta.get("image_size"),
            style if style is not None else meta.get("style", DEFAULT_STYLE),
            template or meta.get("template", "reference"),
            max_new_tokens or int(meta.get("max_new_tokens", 1024)),
            batch_size,
            generation_kwargs,
            spec,
        )
        self._device = device
        self._dtype = dtype
        self._attn = attn_implementation
        self.name = f"hf:{spec}"
        self._synced_gpus = False
        self._live = False
        self._model = None
        self._processor = None

    def _configure(
        self, family, image_size, style, template, max_new_tokens, batch_size, generation_kwargs, source
    ):

        self.family = resolve_family(family) if family else family_of_model_type(self.model_type, source)
        self.image_size = as_size(image_size if image_size is not None else self.family.image_size)
        self.style = get_style(style)
        if template not in TEMPLATES:
            raise ValueError(
                f"unknown template {template!r} (option template=); choose one of {sorted(TEMPLATES)}"
            )
        self.template = template
        self.max_new_tokens = int(max_new_tokens)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.generation_kwargs = dict(generation_kwargs or {})

    @classmethod
    def attach(
        cls,
        model: Any,
        processor: Any,
        *,
        family: str | None = None,
        image_size: int | Sequence[int] | None = None,
        style: str | PromptStyle = DEFAULT_STYLE,
        template: str = "reference",
        max_new_tokens: int = 1024,
        batch_size: int = 8,
        generation_kwargs: dict[str, Any] | None = None,
        name: str = "live",
        synced_gpus: bool = False,
        generation: str = "checkpoint",
    ) -> HFPrompter:
        """Wrap an already loaded ``model`` + ``processor`` (e.g. the live policy inside a trainer).

        Nothing is loaded, cached or moved; the model's own device and dtype are used, and the caller
        owns train/eval mode. Family and default image size come from ``model.config.model_type``.
        ``synced_gpus``: every rank keeps stepping until all ranks' sequences end (needed when the
        forward pass is a collective, DeepSpeed ZeRO-3 with sharded weights); every rank must then call
        ``generate`` equally often. It is passed to ``generate`` as given (False included: transformers
        would otherwise switch it on under any ZeRO-3 run, even on gathered weights). ``generation``: as for a loaded checkpoint (``authors``: the released evaluation's config).
        A live model generates under ``torch.no_grad()``, not ``inference_mode``: tensors a training
        engine creates during that forward (ZeRO-3 gathers) must stay usable by the next backward.
        """
        self = cls.__new__(cls)
        self.generation = check_mode(generation)
        self.local, self.model_id, self.trust_remote_code = False, name, False
        self.model_type = getattr(getattr(model, "config", None), "model_type", None)
        self._configure(
            family, image_size, style, template, max_new_tokens, batch_size, generation_kwargs, name
        )
        self._device, self._dtype, self._attn = str(model.device), model.dtype, None
        self.name = name
        self._model, self._processor = model, processor
        self._synced_gpus = bool(synced_gpus)
        self._live = True
        self._check_image_size(processor)
        return self

    def _read_model_type(self) -> str | None:
        if self.local:
            return read_model_type(self.model_id)
        from transformers import AutoConfig

        try:
            cfg = AutoConfig.from_pretrained(self.model_id, trust_remote_code=self.trust_remote_code)
        except Exception as e:
            offline = os.environ.get("HF_HUB_OFFLINE") == "1"
            raise ModelNotFoundError(
                f"prompter hf:{self.model_id}: could not load the config of this hub model"
                + (" (HF_HUB_OFFLINE=1 and it is not in the local cache)" if offline else "")
                + f"; pass a local directory instead. Cause: {type(e).__name__}: {e}"
            ) from e
        return getattr(cfg, "model_type", None)

    # -- loading -------------------------------------------------------------------------------------
    @property
    def device(self) -> str:
        if self._device is None:
            import torch

            self._device = "cuda" if torch.cuda.is_available() else "cpu"
        return self._device

    def _attn_choice(self, dtype) -> str:
        if self._attn is not None:
            return self._attn

        import torch

        half = dtype in (torch.bfloat16, torch.float16)
        if self.device.startswith("cuda") and half and importlib.util.find_spec("flash_attn") is not None:
            return "flash_attention_2"
        return "sdpa"

    def load(self):
        """``(model, processor)``, loaded on first use and cached for the process."""
        if self._model is not None:
            return self._model, self._processor
        import transformers
        from transformers import AutoProcessor

        dtype = _torch_dtype(self._dtype, self.device)
        attn = self._attn_choice(dtype)
        key = (self.model_id, self.family.name, str(dtype), self.device, attn, self.trust_remote_code)
        if key not in _CACHE:
            cls = getattr(transformers, self.family.model_class)
            common = dict(trust_remote_code=self.trust_remote_code)
            if self.local:
                common["local_files_only"] = True
            processor = AutoProcessor.from_pretrained(self.model_id, **common)
            try:
                model = cls.from_pretrained(
                    self.model_id, dtype=dtype, attn_implementation=attn, device_map=self.device, **common
                )
            except (ValueError, ImportError) as e:
                if self._attn is not None or attn != "sdpa" or "sdpa" not in str(e).lower():
                    raise
                log.warning("%s: no sdpa support (%s); using eager attention", self.model_id, e)
                model = cls.from_pretrained(
                    self.model_id, dtype=dtype, attn_implementation="eager", device_map=self.device, **common
                )
            model.eval()
            processor.tokenizer.padding_side = "left"
            own_think_tags(processor)
            if processor.tokenizer.pad_token_id is None:
                processor.tokenizer.pad_token = processor.tokenizer.eos_token
            _CACHE[key] = (model, processor)
        self._model, self._processor = _CACHE[key]
        self._check_image_size(self._processor)
        return self._model, self._processor

    @property
    def model(self):
        return self.load()[0]

    @property
    def processor(self):
        return self.load()[1]

    def _check_image_size(self, processor) -> None:
        if self.family.pin_pixels:
            ip = processor.image_processor
            factor = int(ip.patch_size) * int(ip.merge_size)
            w, h = self.image_size
            if w % factor or h % factor:
                raise ValueError(
                    f"image_size {self.image_size} (option image_size=) must be a multiple of {factor} "
                    f"(patch {ip.patch_size} x merge {ip.merge_size}) for {self.model_id}, or its processor "
                    "would resize the image again and the coordinates would not match"
                )

    # -- inputs --------------------------------------------------------------------------------------
    def prompt_text(self, question: str) -> str:
        """The chat-template rendering of one question (with the generation prompt)."""
        msgs = build_messages(question, self.style, self.template)
        return self.processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)

    def model_image(self, sample: Sample):
        """The sample's image squashed to ``image_size`` (a PIL RGB image, what the processor receives)."""

        return Image.fromarray(resize_image(sample.load_image(), self.image_size)).convert("RGB")

    def _image_kwargs(self) -> dict[str, Any]:
        if self.family.pin_pixels:
            pixels = self.image_size[0] * self.image_size[1]
            return {"size": {"shortest_edge": pixels, "longest_edge": pixels}}
        return {}

    def prepare(self, samples: Sequence[Sample], repeat: int = 1, prefill: Sequence[str] | None = None):
        """Processor outputs (left padded, untruncated, on the model's device) for ``samples``, each
        repeated ``repeat`` times in a row; ``prefill[i]`` is appended to sample i's prompt."""
        processor = self.processor
        texts, images = [], []
        for i, s in enumerate(samples):
            text, image = self.prompt_text(s.question), self.model_image(s)
            if prefill is not None:
                text += prefill[i]
            texts += [text] * repeat
            images += [image] * repeat
        inputs = processor(
            text=texts,
            images=images,
            return_tensors="pt",
            padding=True,
            padding_side="left",
            truncation=False,
            **self._image_kwargs(),
        )
        return inputs.to(self.device, dtype=self.model.dtype)  # floating tensors only (pixel_values)

    # -- generation ----------------------------------------------------------------------------------
    def _generation_config(self, temperature: float):
        """The ``GenerationConfig`` of one call (:mod:`think2seg.prompters.decoding`)."""
        ckpt, pad = self.model.generation_config, self.processor.tokenizer.pad_token_id
        if self.generation == "authors":
            return authors_config(ckpt, pad, temperature, self.generation_kwargs)
        return checkpoint_config(ckpt, self.max_new_tokens, pad, temperature, self.generation_kwargs)

    def generation_parameters(self, temperature: float = 0.0) -> dict[str, Any]:
        """The decoding fields :meth:`generate` uses at ``temperature`` (for result configs)."""
        return decoding_fields(self._generation_config(temperature), self.generation)

    def generate_batch(
        self, samples: list[Sample], n: int, temperature: float, seed: int, prefill: list[str] | None
    ) -> list[list[str]]:
        """One batch of :meth:`generate` (the skeleton in :class:`~think2seg.prompters.base.BatchedGeneration`):
        ``n`` completions per sample; a sampled batch is seeded from ``seed`` and its samples' ids."""
        import torch
        from transformers import set_seed

        model, processor = self.load()
        gen = self._generation_config(temperature)
        decode_kw = {"clean_up_tokenization_spaces": False} if self.generation == "authors" else {}
        inputs = self.prepare(samples, repeat=n, prefill=prefill)
        if temperature > 0:
            ids = "|".join(str(s.id) for s in samples)
            set_seed(zlib.crc32(f"{seed}|{ids}".encode()) & 0x7FFFFFFF)
        live = getattr(self, "_live", False)
        # a live (training) model: no_grad, so nothing created here is an inference tensor (module doc)
        with torch.no_grad() if live else torch.inference_mode():
            # a live model is told whether its forward pass is a collective: transformers would turn
            # synced_gpus on under any ZeRO-3 run, and ranks running different numbers of batches on
            # gathered weights would then wait for each other forever
            sync = {"synced_gpus": self._synced_gpus} if live else {}
            seqs = model.generate(**inputs, generation_config=gen, **sync)
        new = seqs[:, inputs["input_ids"].shape[1] :]
        texts = processor.batch_decode(new, skip_special_tokens=True, **decode_kw)
        if prefill is not None:
            texts = [prefill[i // n] + text for i, text in enumerate(texts)]
        return [texts[i * n : (i + 1) * n] for i in range(len(samples))]

    def __repr__(self) -> str:
        return (
            f"HFPrompter({self.model_id!r}, family={self.family.name!r}, image_size={self.image_size}, "
            f"style={self.style.name!r}, template={self.template!r})"
        )
