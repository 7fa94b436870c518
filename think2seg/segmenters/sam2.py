"""Frozen SAM2.1 (Meta's ``sam2`` package) with a content-keyed embedding cache and batched decoding.

    >>> seg = SAM2Segmenter("small")                          # (checkpoint by name)  # doctest: +SKIP
    >>> seg = build_segmenter("sam2:tiny:random")             # (random weights, tests only)  # doctest: +SKIP
    >>> masks = seg.segment(image, [prompts_a, prompts_b])   # one encoder pass for both  # doctest: +SKIP

``image`` is (H, W, 3) uint8 RGB; prompts are absolute pixel coordinates of that image; masks are (H, W)
bool in the same space, one per prompt set (the union of its instances' masks). Numerics are the
released ones (``multimask_output=False``, threshold 0, box + all points of an instance in one prompt).
The encoder runs once per image content (an LRU of ``cache_size`` embeddings); instances are grouped by
prompt signature and decoded ``decoder_batch`` rows per call (None: 1 on CPU, where single rows go through
the exact :mod:`~think2seg.segmenters.sam2_decoder`, and 64 on CUDA). One segmenter holds one current
image: it is not thread-safe. How the cache and the cached decoder work, their memory and their
measured speed: ``docs/sam2.md``.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from think2seg.core.types import Instance, PromptSet
from think2seg.segmenters.base import (
    EncoderCache,
    as_rgb,
    instance_arrays,
    instance_key,
    usable,
)
from think2seg.segmenters.checkpoints import MINI_DIR, resolve_sam2_checkpoint
from think2seg.segmenters.sam2_decoder import CachedDecoder, ImagePrep
from think2seg.segmenters.spec import ALL_SAM2_SIZES, RANDOM, SAM2_SIZES, SHIPPED_SAM2

CPU_DECODER_BATCH = 1
CUDA_DECODER_BATCH = 64
# cap on the float32 (B, 1, H, W) upsampled logits one decoder call may allocate
DECODER_BYTES_BUDGET = 1 << 30


class RandomWeightsWarning(UserWarning):
    """SAM2 was built with random weights: masks are meaningless (tests and benchmarks only)."""


@dataclass
class _Entry:
    """One cached image: the predictor's features, the image size, the decoder's per-image tensors."""

    features: dict[str, Any]
    hw: tuple[int, int]
    prep: ImagePrep | None = None  # made on the first single-row decode


class QuietPredictorLog(logging.Filter):
    """Drops the INFO lines sam2's image predictor writes to the ROOT logger on every ``set_image`` (three a
    call: thousands in a training log); its warnings and errors pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or not record.pathname.endswith("sam2_image_predictor.py")


def quiet_predictor_log() -> None:
    """Install :class:`QuietPredictorLog` on the root logger (once)."""
    root = logging.getLogger()
    if not any(isinstance(f, QuietPredictorLog) for f in root.filters):
        root.addFilter(QuietPredictorLog())


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


@contextlib.contextmanager
def _config_dir(folder: Path) -> Any:
    """hydra's config search path switched to ``folder`` (sam2's own ``build_sam2`` then finds the shipped
    configs by name), and sam2's own search path restored afterwards."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    saved = GlobalHydra.instance().hydra if GlobalHydra.instance().is_initialized() else None
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(folder.resolve()), version_base="1.2"):
            yield
    finally:
        GlobalHydra.instance().clear()
        if saved is not None:
            GlobalHydra.instance().initialize(saved)


def build_sam2_model(size: str, device: str = "cpu", mode: str = "eval") -> torch.nn.Module:
    """An untrained SAM2 of ``size`` built by sam2's own ``build_sam2`` from its hydra config (the package's
    configs for the official sizes, ``think2seg/assets/sam2_mini`` for the shipped mini sizes)."""
    from sam2.build_sam import build_sam2

    if size in SHIPPED_SAM2:
        with _config_dir(MINI_DIR):
            return build_sam2(SHIPPED_SAM2[size][0], ckpt_path=None, device=device, mode=mode)
    return build_sam2(SAM2_SIZES[size][0], ckpt_path=None, device=device, mode=mode)


def feature_sizes(model: torch.nn.Module) -> list[tuple[int, int]]:
    """The backbone feature sizes (stride 4, 8, 16) of ``model``'s input size; sam2's predictor hard-codes
    the 1024-px ones, so :class:`SAM2Segmenter` sets them for other sizes (the mini configs are 256 px)."""
    s = int(model.image_size)
    return [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]


def image_predictor(model: torch.nn.Module) -> Any:
    """sam2's ``SAM2ImagePredictor`` over ``model``, with the feature sizes of its image size (mini
    configs are not 1024 px) and :class:`QuietPredictorLog` installed."""
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    quiet_predictor_log()
    pred = SAM2ImagePredictor(model)
    pred._bb_feat_sizes = feature_sizes(model)
    return pred


def load_sam2_model(size: str, checkpoint: str | Path | None, device: str) -> torch.nn.Module:
    """Build SAM2 ``size`` (:func:`build_sam2_model`), load weights, freeze, eval, move to ``device``.

    The checkpoint (official format ``{"model": state_dict}``) is read before the model is built, so a
    bad file fails fast. ``checkpoint="random"`` seeds torch's CPU generator with 0 for the init
    (reproducible random weights) without touching the global RNG state.
    """
    if checkpoint == RANDOM:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = build_sam2_model(size)
    else:
        path = Path(checkpoint) if checkpoint is not None else resolve_sam2_checkpoint(size)
        state = _read_state(path)
        model = build_sam2_model(size)
        expected = model.state_dict()
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
        wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
        if missing or unexpected or wrong:
            raise RuntimeError(
                f"SAM2 checkpoint {path} does not match the SAM2.1 '{size}' model (wrong size, or not a "
                f"SAM 2.1 checkpoint?): {len(missing)} missing keys {missing[:3]}, {len(unexpected)} "
                f"unexpected keys {unexpected[:3]}, {len(wrong)} shape mismatches {wrong[:3]}"
            )
        model.load_state_dict(state, strict=True)  # float16 (shipped) weights are cast to the model's float32
        del state, expected
    model = model.to(device).eval()
    model.requires_grad_(False)
    return model


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise RuntimeError(f"could not read SAM2 checkpoint {path}: {type(e).__name__}: {e}") from e
    state = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise RuntimeError(f"SAM2 checkpoint {path} holds no state dict (expected {{'model': state_dict}})")
    return state


class SAM2Segmenter(EncoderCache):
    """SAM2.1 behind the :class:`~think2seg.segmenters.base.Segmenter` protocol.

    ``checkpoint``: None (found by official name, see ``checkpoints.py``), ``"random"``, or a file/folder.
    The checkpoint path is resolved at construction (a missing file fails fast); the model loads on the
    first ``set_image``. ``stats`` counts ``encoder_calls``, ``decoder_calls`` (of which ``cached_decodes``
    went through :class:`~think2seg.segmenters.sam2_decoder.CachedDecoder`), ``decoder_preps`` (its
    per-image tensors computed), ``cache_hits``, ``duplicates``.
    ``cached_decoder=False`` decodes every row with ``SAM2ImagePredictor._predict``; :attr:`decoder_path`
    says which path single rows take.
    """

    def __init__(
        self,
        size: str = "small",
        checkpoint: str | Path | None = None,
        device: str | None = None,
        decoder_batch: int | None = None,
        cache_size: int = 4,
        cached_decoder: bool = True,
    ) -> None:
        super().__init__(cache_size)
        if size not in ALL_SAM2_SIZES:
            raise ValueError(f"unknown SAM2 size {size!r}; expected one of {', '.join(ALL_SAM2_SIZES)}")
        self.size = size
        self.device = torch.device(device or default_device())
        self.random = checkpoint == RANDOM
        if self.random:
            self.checkpoint: Path | str = RANDOM
            warnings.warn(
                f"SAM2 '{size}' is built with RANDOM WEIGHTS: its masks are meaningless; use this only for "
                "tests and benchmarks (pass a checkpoint or set THINK2SEG_SAM2_DIR for real masks)",
                RandomWeightsWarning,
                stacklevel=2,
            )
        else:
            self.checkpoint = resolve_sam2_checkpoint(size, checkpoint)
        self.name = f"sam2:{size}:random" if self.random else f"sam2:{size}"
        if decoder_batch is None:
            decoder_batch = CUDA_DECODER_BATCH if self.device.type == "cuda" else CPU_DECODER_BATCH
        if decoder_batch < 1:
            raise ValueError(f"decoder_batch must be >= 1, got {decoder_batch}")
        self.decoder_batch = int(decoder_batch)
        self._predictor: Any = None
        self.cached_decoder = cached_decoder
        self._decoder: CachedDecoder | None = None

    # -- model -------------------------------------------------------------------------------------------
    @property
    def predictor(self) -> Any:
        """The package's ``SAM2ImagePredictor`` over the frozen model (built on first use)."""
        if self._predictor is None:
            with warnings.catch_warnings():  # sam2's transforms use torch.jit.script (deprecated)
                warnings.simplefilter("ignore", FutureWarning)
                self._predictor = image_predictor(load_sam2_model(self.size, self.checkpoint, str(self.device)))
            self._decoder = CachedDecoder.build(self._predictor)
        return self._predictor

    @property
    def decoder_path(self) -> str:
        """How single prompt rows are decoded: ``cached`` (exact, per-image work reused) or ``predictor``."""
        self.predictor  # noqa: B018  (builds the model and checks its code)
        if self._decoder is None:
            return "predictor (sam2's decoder code differs from the mirrored 1.1.0 code)"
        return "cached" if self.cached_decoder else "predictor (cached_decoder=False)"

    @property
    def conv_layout(self) -> str | None:
        """The cached decoder's layout for its upscaling convolutions (``CachedDecoder.conv_layout``), None
        when single rows go through ``_predict``."""
        cached = self.decoder_path == "cached"  # (builds the model)
        return self._decoder.conv_layout if cached and self._decoder is not None else None

    def _ctx(self) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.device.type == "cuda":
            stack.enter_context(torch.autocast("cuda", dtype=torch.bfloat16))
        return stack

    # -- embedding ---------------------------------------------------------------------------------------
    def _encode(self, image: np.ndarray) -> _Entry:
        pred = self.predictor
        with self._ctx():
            pred.set_image(image)
        return _Entry(pred._features, (int(image.shape[0]), int(image.shape[1])))

    def _activate(self) -> tuple[Any, _Entry]:
        """Point the predictor at the cached features of the current image."""
        assert self._key is not None
        entry = self._cache[self._key]
        pred = self.predictor
        pred._features, pred._orig_hw = entry.features, [entry.hw]
        pred._is_image_set, pred._is_batch = True, False
        return pred, entry

    def clear_cache(self) -> None:
        super().clear_cache()
        if self._predictor is not None:
            self._predictor.reset_predictor()

    # -- decoding ----------------------------------------------------------------------------------------
    def _chunk(self, h: int, w: int) -> int:
        return max(1, min(self.decoder_batch, DECODER_BYTES_BUDGET // (4 * h * w)))

    def _decode(self, pred: Any, entry: _Entry, rows: Sequence[Instance]) -> np.ndarray:
        """Masks (B, H, W) bool for B instances of one signature, in one decoder call.

        A single row goes through the cached decoder when there is one (same masks, see its module),
        more rows through ``SAM2ImagePredictor._predict``.
        """
        arrays = [instance_arrays(inst) for inst in rows]
        coords = labels = boxes = None
        if arrays[0][0] is not None:
            coords = np.stack([a[0] for a in arrays])  # (B, N, 2)
            labels = np.stack([a[1] for a in arrays])  # (B, N)
        if arrays[0][2] is not None:
            boxes = np.stack([a[2] for a in arrays])  # (B, 4)
        _, unnorm_coords, point_labels, unnorm_box = pred._prep_prompts(
            coords, labels, boxes, None, normalize_coords=True
        )
        if len(rows) == 1 and self._decoder is not None and self.cached_decoder:
            if entry.prep is None:
                entry.prep = self._decoder.prepare(entry.features)
                self._count("decoder_preps")
            masks = self._decoder.predict(entry.prep, unnorm_coords, point_labels, unnorm_box, entry.hw)
            self._count("cached_decodes")
        else:
            masks, _, _ = pred._predict(
                unnorm_coords, point_labels, unnorm_box, None, multimask_output=False, return_logits=False
            )
        self._count("decoder_calls")
        return masks[:, 0].cpu().numpy()

    def predict(self, prompt_sets: Sequence[PromptSet]) -> list[np.ndarray]:
        h, w = self._require_image()
        out = self._empty_masks(len(prompt_sets))
        # signature -> {prompt key: (instance, owning prompt-set indices)}; identical prompts decode once
        groups: dict[tuple[bool, int], dict[tuple, tuple[Instance, list[int]]]] = {}
        for s, prompts in enumerate(prompt_sets):
            for inst in prompts:
                if usable(inst):
                    sig = (inst.box is not None, len(inst.positive) + len(inst.negative))
                    groups.setdefault(sig, {}).setdefault(instance_key(inst), (inst, []))[1].append(s)
        if not groups:
            return out
        chunk = self._chunk(h, w)
        with self._ctx():
            pred, entry = self._activate()
            for uniq in groups.values():
                rows = list(uniq.values())
                self._count("duplicates", sum(len(owners) - 1 for _, owners in rows))
                for start in range(0, len(rows), chunk):
                    part = rows[start : start + chunk]
                    masks = self._decode(pred, entry, [inst for inst, _ in part])
                    for (_, owners), m in zip(part, masks, strict=True):
                        for s in owners:
                            np.logical_or(out[s], m, out=out[s])
        return out

    # -- the released path -------------------------------------------------------------------------------
    def segment_released(self, image: np.ndarray, prompt_sets: Sequence[PromptSet]) -> list[np.ndarray]:
        """As released: ``set_image`` per prompt set (completion), public ``predict`` per instance, OR-union.

        Uses the package's public predictor API only and leaves this segmenter's cache untouched. A prompt
        set without usable instances gives an empty mask without an encoder pass.
        """
        rgb = as_rgb(image)
        pred = self.predictor
        out = []
        with self._ctx():
            for prompts in prompt_sets:
                union = np.zeros(rgb.shape[:2], dtype=bool)
                todo = [inst for inst in prompts if usable(inst)]
                if todo:  # the released reward never calls SAM for an empty answer
                    pred.set_image(rgb)
                for inst in todo:
                    coords, labels, box = instance_arrays(inst)
                    masks, _, _ = pred.predict(
                        point_coords=coords, point_labels=labels, box=box, multimask_output=False
                    )
                    union |= masks[0] > 0
                out.append(union)
        return out
