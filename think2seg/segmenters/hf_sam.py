"""transformers' interactive SAM models as segmenters: SAM2 (``Sam2Model``), SAM-HQ (``SamHQModel``) and
SAM3's tracker image path (``Sam3TrackerModel``), behind the same :class:`~think2seg.segmenters.base.Segmenter`
protocol as the ``sam2`` package path.

    >>> seg = build_segmenter("sam3")                         # facebook/sam3, tracker path  # doctest: +SKIP
    >>> seg = build_segmenter("samhq:/models/sam-hq-vit-b")   # a save_pretrained folder  # doctest: +SKIP
    >>> seg = build_segmenter("hf-sam2:random")               # default config, RANDOM weights  # doctest: +SKIP
    >>> masks = seg.segment(image, [prompts_a, prompts_b])    # one encoder pass for both  # doctest: +SKIP
    >>> seg.dtype, seg.device                                  # ('float32', 'cpu')  # doctest: +SKIP

``image`` is (H, W, 3) uint8 RGB; prompts are absolute pixel coordinates of that image (boxes
``(x1, y1, x2, y2)``, positive points label 1, negative 0) and reach the model through the processor's own
coordinate transform (squash to 1024 / 1008 for SAM2 / SAM3, longest side to 1024 for SAM-HQ); points and
boxes off the image are passed as given, as the ``sam2`` path does. Masks are (H, W) bool, one per prompt
set, the OR-union of its instances (``multimask_output=False``, the processor's threshold 0). The image
encoder runs once per image content (an LRU of ``cache_size`` embeddings); instances are grouped by prompt
signature (box or not, number of points) and each group is decoded in one call. On CUDA the model runs
under bf16 autocast (weights fp32), as the ``sam2`` path. SAM3's text prompting is not used: the LVLM
prompter reasons and emits geometry; the segmenter gets geometry.

``source="random"`` builds the class's default configuration (the released architecture) with seeded
random weights and a default processor, for timings and tests only.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from think2seg.core.model_dirs import check_model_dir, looks_local
from think2seg.core.types import Instance, PromptSet
from think2seg.segmenters.base import EncoderCache, instance_arrays, instance_key, usable
from think2seg.segmenters.spec import HF_SAM_BACKENDS, RANDOM

# backend -> (model class, processor class, image processor class) in transformers
CLASSES: dict[str, tuple[str, str, str]] = {
    "hf-sam2": ("Sam2Model", "Sam2Processor", "Sam2ImageProcessor"),
    "samhq": ("SamHQModel", "SamHQProcessor", "SamImageProcessor"),
    "sam3": ("Sam3TrackerModel", "Sam3TrackerProcessor", "Sam3ImageProcessor"),
}


class RandomWeightsWarning(UserWarning):
    """A transformers SAM model was built with random weights: masks are meaningless."""


@dataclass
class _Entry:
    """One cached image: the encoder's output and what the processor said about the image's size."""

    embeddings: Any  # list of feature maps (SAM2 / SAM3) or (image_embeddings, intermediate) (SAM-HQ)
    image: np.ndarray  # kept for SAM-HQ, whose processor derives its coordinate transform from the image
    original_sizes: torch.Tensor  # (1, 2) (H, W)
    reshaped_input_sizes: torch.Tensor | None  # (1, 2) SAM-HQ only


def load_hf_sam(backend: str, source: str, device: str) -> tuple[Any, Any]:
    """``(model, processor)`` for ``backend`` from a local folder, a hub id or ``"random"``; frozen, eval."""
    import transformers

    model_cls, proc_cls, image_proc_cls = (getattr(transformers, n) for n in CLASSES[backend])
    if source == RANDOM:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = model_cls(model_cls.config_class())
        processor = proc_cls(image_processor=image_proc_cls())
    else:
        kw = {"local_files_only": True} if looks_local(source) else {}
        model = model_cls.from_pretrained(source, **kw)
        processor = proc_cls.from_pretrained(source, **kw)
    model = model.to(device).eval()
    model.requires_grad_(False)
    return model, processor


class HFSamSegmenter(EncoderCache):
    """A transformers SAM model behind the Segmenter protocol (see module doc).

    ``stats`` counts ``encoder_calls``, ``cache_hits``, ``decoder_calls`` and ``duplicates`` (identical
    instances decoded once). The model loads on the first ``set_image``.
    """

    def __init__(self, backend: str, source: str | None = None, device: str | None = None, cache_size: int = 4):
        super().__init__(cache_size)
        if backend not in CLASSES:
            raise ValueError(f"unknown transformers SAM backend {backend!r}; expected one of {list(CLASSES)}")
        self.backend = backend
        source = source or HF_SAM_BACKENDS[backend]
        self.random = source.lower() == RANDOM
        if self.random:
            source = RANDOM
            warnings.warn(f"{backend} is built with RANDOM WEIGHTS: its masks are meaningless (tests and timings "
                          "only)", RandomWeightsWarning, stacklevel=2)
        elif looks_local(source):
            source = str(check_model_dir(source, f"segmenter {backend}").resolve())
        self.source = source
        self.name = f"{backend}:{source}"
        self._device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._model: Any = None
        self._processor: Any = None

    # -- model -------------------------------------------------------------------------------------------
    def load(self) -> tuple[Any, Any]:
        if self._model is None:
            self._model, self._processor = load_hf_sam(self.backend, self.source, str(self._device))
        return self._model, self._processor

    @property
    def device(self) -> str:
        return str(self._device)

    @property
    def dtype(self) -> str:
        """What the model computes in: ``bfloat16 (autocast)`` on CUDA, else the weights' dtype."""
        if self._device.type == "cuda":
            return "bfloat16 (autocast)"
        return str(self.load()[0].dtype).replace("torch.", "")

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.load()[0].parameters())

    def _ctx(self) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self._device.type == "cuda":
            stack.enter_context(torch.autocast("cuda", dtype=torch.bfloat16))
        return stack

    # -- embedding ---------------------------------------------------------------------------------------
    def _encode(self, image: np.ndarray) -> _Entry:
        model, processor = self.load()
        enc = processor(images=image, return_tensors="pt")
        with self._ctx():
            emb = model.get_image_embeddings(enc["pixel_values"].to(self._device))
        return _Entry(emb, image, enc["original_sizes"], enc.get("reshaped_input_sizes"))

    # -- prompts and decoding ----------------------------------------------------------------------------
    def prompt_tensors(self, entry: _Entry, rows: Sequence[Instance]) -> dict[str, torch.Tensor]:
        """The processor's model inputs for ``rows`` (one signature) as one object batch: ``input_points``
        (1, B, N, 2), ``input_labels`` (1, B, N), ``input_boxes`` (1, B, 4), in the model's input space."""
        _, processor = self.load()
        arrays = [instance_arrays(inst) for inst in rows]
        kw: dict[str, Any] = {}
        if arrays[0][0] is not None:
            kw["input_points"] = [[a[0].tolist() for a in arrays]]
            kw["input_labels"] = [[a[1].tolist() for a in arrays]]
        if arrays[0][2] is not None:
            kw["input_boxes"] = [[a[2].tolist() for a in arrays]]
        if self.backend == "samhq":  # its processor derives the transform from the image itself
            out = processor(images=entry.image, return_tensors="pt", **kw)
        else:
            out = processor(original_sizes=entry.original_sizes, return_tensors="pt", **kw)
        return {k: out[k].to(self._device) for k in ("input_points", "input_labels", "input_boxes") if k in out}

    def _decode(self, entry: _Entry, rows: Sequence[Instance]) -> np.ndarray:
        """Masks (B, H, W) bool for B instances of one signature, in one decoder call."""
        model, processor = self.load()
        prompts = self.prompt_tensors(entry, rows)
        if self.backend == "samhq":
            emb, intermediate = entry.embeddings
            out = model(image_embeddings=emb, intermediate_embeddings=intermediate, multimask_output=False, **prompts)
            masks = processor.post_process_masks(out.pred_masks.float().cpu(), entry.original_sizes,
                                                 entry.reshaped_input_sizes)
        else:
            out = model(image_embeddings=entry.embeddings, multimask_output=False, **prompts)
            masks = processor.post_process_masks(out.pred_masks.float().cpu(), entry.original_sizes)
        self._count("decoder_calls")
        return masks[0][:, 0].numpy().astype(bool)  # (B, 1, H, W) -> (B, H, W)

    def predict(self, prompt_sets: Sequence[PromptSet]) -> list[np.ndarray]:
        self._require_image()
        out = self._empty_masks(len(prompt_sets))
        groups: dict[tuple[bool, int], dict[tuple, tuple[Instance, list[int]]]] = {}
        for s, prompts in enumerate(prompt_sets):
            for inst in prompts:
                if usable(inst):
                    sig = (inst.box is not None, len(inst.positive) + len(inst.negative))
                    groups.setdefault(sig, {}).setdefault(instance_key(inst), (inst, []))[1].append(s)
        if not groups:
            return out
        assert self._key is not None
        entry = self._cache[self._key]
        with self._ctx():
            for uniq in groups.values():
                rows = list(uniq.values())
                self._count("duplicates", sum(len(owners) - 1 for _, owners in rows))
                masks = self._decode(entry, [inst for inst, _ in rows])
                for (_, owners), m in zip(rows, masks, strict=True):
                    for s in owners:
                        np.logical_or(out[s], m, out=out[s])
        return out
