"""The embedded tiny prompter: a small Qwen2.5-VL warm-started on SynthEarth, shipped in the package.

    >>> from think2seg.prompters.tiny import TinyPrompter
    >>> p = TinyPrompter()                 # the shipped checkpoint (think2seg/assets/tiny_prompter/)
    >>> p = TinyPrompter("/runs/grpo/ckpt") # any save_pretrained dir of a Qwen2.5-VL + processor
    >>> p.image_size                        # coordinates of the completions refer to this size
    (112, 112)
    >>> p.generate(samples)                               # [[greedy completion], ...]
    >>> p.generate(samples, n=8, temperature=1.0, seed=0)  # 8 seeded samples per sample

Prompter spec strings: ``tiny`` (shipped checkpoint) and ``tiny:/path`` (see :func:`from_spec`).
The model is driven exactly as a real Qwen2.5-VL: messages from :func:`think2seg.prompts.build_messages`
(template ``compact`` unless the checkpoint's ``think2seg_prompter.json`` says otherwise) rendered by the
processor's chat template, the image (resized to ``image_size`` first) through the processor, batched
left-padded ``generate``. Rebuild the shipped checkpoint with ``python -m think2seg.warmstart``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from think2seg.types import Sample

log = logging.getLogger(__name__)

ASSET_DIR = Path(__file__).resolve().parent.parent / "assets" / "tiny_prompter"
META_FILE = "think2seg_prompter.json"  # template / style / image_size written by the warm start
REBUILD_HINT = "python -m think2seg.warmstart --out think2seg/assets/tiny_prompter"


def _check_dir(path: Path) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(f"tiny prompter checkpoint {str(path)!r} is not a directory (rebuild: {REBUILD_HINT})")
    for name in ("config.json", "tokenizer.json"):
        if not (path / name).is_file():
            raise FileNotFoundError(
                f"tiny prompter checkpoint {str(path)!r} has no {name}: expected a save_pretrained dir of "
                f"a Qwen2.5-VL model + processor (rebuild: {REBUILD_HINT})"
            )
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise FileNotFoundError(f"tiny prompter checkpoint {str(path)!r} has no model weights (*.safetensors)")
    return path


def read_meta(path: str | Path) -> dict[str, Any]:
    """The checkpoint's ``think2seg_prompter.json`` (or ``{}``; a GRPO save may lack it)."""
    f = Path(path) / META_FILE
    return json.loads(f.read_text()) if f.is_file() else {}


def load_tiny(path: str | Path | None = None, dtype: str = "float32"):
    """``(model, processor)`` from a checkpoint dir (default: the shipped one), offline, eval mode."""
    import torch
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    p = _check_dir(Path(path) if path is not None else ASSET_DIR)
    processor = AutoProcessor.from_pretrained(p, local_files_only=True)
    processor.tokenizer.padding_side = "left"
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
        p, dtype=getattr(torch, dtype), local_files_only=True
    )
    model.eval()
    return model, processor


def processor_image_size(processor) -> int:
    """The square input size a tiny processor was built for (its fixed pixel count)."""
    size = processor.image_processor.size
    pixels = size.get("longest_edge") or size.get("max_pixels")
    return int(round(math.sqrt(pixels)))


class TinyPrompter:
    """A Qwen2.5-VL checkpoint (default: the shipped tiny one) as a :class:`~think2seg.prompters.base.Prompter`."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        batch_size: int = 32,
        max_new_tokens: int | None = None,
        template: str | None = None,
        style: str | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else ASSET_DIR
        _check_dir(self.path)  # fail early with a clear message; weights load lazily
        meta = read_meta(self.path)
        self.template = template or meta.get("template", "compact")
        self.style = style or meta.get("style", "bbox+2pos")
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens or int(meta.get("max_new_tokens", 200))
        self.name = "tiny" if path is None else f"tiny:{self.path}"
        self._model = None
        self._processor = None
        size = meta.get("image_size")
        if size is None:
            from transformers import AutoProcessor

            size = processor_image_size(AutoProcessor.from_pretrained(self.path, local_files_only=True))
        self.image_size = (int(size), int(size))

    # -- loading -------------------------------------------------------------------------------------
    def load(self):
        if self._model is None:
            self._model, self._processor = load_tiny(self.path)
        return self._model, self._processor

    @property
    def model(self):
        return self.load()[0]

    @property
    def processor(self):
        return self.load()[1]

    # -- inputs --------------------------------------------------------------------------------------
    def prompt_text(self, question: str) -> str:
        from think2seg.prompts import build_messages

        msgs = build_messages(question, self.style, self.template)
        return self.processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)

    def model_image(self, sample: Sample):
        """The sample's image resized to ``image_size`` (a PIL image, what the processor receives)."""
        from PIL import Image

        from think2seg.geometry import resize_image

        return Image.fromarray(resize_image(sample.load_image(), self.image_size))

    # -- generation ----------------------------------------------------------------------------------
    def generate(
        self, samples: Sequence[Sample], n: int = 1, temperature: float = 0.0, seed: int = 0
    ) -> list[list[str]]:
        import torch

        model, processor = self.load()
        if n > 1 and temperature <= 0:
            raise ValueError("n > 1 needs temperature > 0 (greedy decoding gives n identical completions)")
        out: list[list[str]] = []
        eos = model.generation_config.eos_token_id
        for start in range(0, len(samples), self.batch_size):
            chunk = samples[start : start + self.batch_size]
            texts = [self.prompt_text(s.question) for s in chunk]
            images = [self.model_image(s) for s in chunk]
            inputs = processor(text=texts, images=images, return_tensors="pt", padding=True)
            kwargs: dict[str, Any] = dict(
                max_new_tokens=self.max_new_tokens,
                eos_token_id=eos,
                pad_token_id=processor.tokenizer.pad_token_id,
            )
            if temperature > 0:
                kwargs.update(do_sample=True, temperature=float(temperature), top_k=0, top_p=1.0,
                              num_return_sequences=n)
                torch.manual_seed(seed + start)
            else:
                kwargs.update(do_sample=False)
            with torch.inference_mode():
                ids = model.generate(**inputs, **kwargs)
            texts_out = processor.batch_decode(ids[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
            k = n if temperature > 0 else 1
            for i in range(len(chunk)):
                got = [t.strip() for t in texts_out[i * k : (i + 1) * k]]
                out.append(got if k == n else got * n)
        return out


def from_spec(spec: str) -> TinyPrompter:
    """``"tiny"`` -> the shipped checkpoint; ``"tiny:/path"`` -> that checkpoint dir."""
    if spec == "tiny":
        return TinyPrompter()
    if spec.startswith("tiny:"):
        path = spec[len("tiny:") :]
        if not path:
            raise ValueError("prompter spec 'tiny:' needs a path, e.g. tiny:/runs/grpo/checkpoint-100")
        return TinyPrompter(path)
    raise ValueError(f"not a tiny prompter spec: {spec!r} (use 'tiny' or 'tiny:/path')")
