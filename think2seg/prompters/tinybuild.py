"""Offline builders for tiny random-init vision-language models (no download, no pretrained weights).

    >>> from think2seg.prompters.tinybuild import train_bpe_tokenizer, build_tiny_qwen2_5_vl
    >>> tok = train_bpe_tokenizer(["Where is the runway?", "storage tanks"], vocab_size=400)   # doctest: +SKIP
    >>> model, processor = build_tiny_qwen2_5_vl(tok, out_dir="/tmp/tinyqwen")               # doctest: +SKIP
    >>> # later, exactly like a real checkpoint:
    >>> AutoProcessor.from_pretrained("/tmp/tinyqwen")                                       # doctest: +SKIP
    >>> Qwen2_5_VLForConditionalGeneration.from_pretrained("/tmp/tinyqwen")                  # doctest: +SKIP

``train_bpe_tokenizer`` trains a byte-level BPE with Qwen2's pre-tokenizer (digits split one by one)
and wraps it in transformers' ``Qwen2Tokenizer`` with Qwen's special tokens. ``number_tokens=N`` adds
the whole numbers ``"0".."N-1"`` as single (non-special) added tokens, so that a coordinate is ONE
token (a "coordinate vocabulary"; added tokens are matched longest-first before pre-tokenization).

``build_tiny_qwen2_5_vl`` returns a standard ``Qwen2_5_VLForConditionalGeneration`` and
``Qwen2_5_VLProcessor`` (Qwen2.5-VL chat template, fixed square input size) that ``save_pretrained``
and reload offline with no custom code (tests/test_tiny.py builds, saves and reloads one).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# Qwen2.5-VL's chat template (same rendering as the released checkpoints: default system message when
# none is given, image parts as <|vision_start|><|image_pad|><|vision_end|>, generation prompt).
QWEN2_5_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Text the tokenizer always sees besides the caller's corpus (chat scaffolding, answer format).
_SCAFFOLD_TEXT = [
    "system\nYou are a helpful assistant.",
    "user\n",
    "assistant\n",
    '<think></think>\n<answer>```json[{"bbox_2d": [1,2,3,4], "positive_points": [[5, 6], [7, 8]], '
    '"negative_points": [[9, 0]]}]```</answer>',
    "<think> thinking process here </think> \n<answer>```json[]```</answer>",
]


def _qwen2_pre_tokenizer():
    """The pre-tokenizer transformers' Qwen2Tokenizer uses (regex split, digits one by one, byte level)."""
    from transformers import Qwen2Tokenizer

    probe = Qwen2Tokenizer(vocab={"a": 0, "<|endoftext|>": 1}, merges=[])
    return probe.backend_tokenizer.pre_tokenizer


def train_bpe_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 2000,
    special_tokens: list[str] = QWEN_SPECIAL_TOKENS,
    *,
    number_tokens: int = 0,
    min_frequency: int = 2,
):
    """Train a byte-level BPE on ``texts`` and wrap it as a transformers ``Qwen2Tokenizer``.

    ``vocab_size`` counts the 256 byte symbols and the merges (special and number tokens come on top).
    ``number_tokens=N`` adds "0".."N-1" as single tokens (see the module docstring).
    """
    from tokenizers import Tokenizer, decoders, models, trainers
    from transformers import AddedToken, Qwen2Tokenizer

    texts = list(texts) + _SCAFFOLD_TEXT
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = _qwen2_pre_tokenizer()
    bpe.decoder = decoders.ByteLevel()
    from tokenizers import pre_tokenizers

    trainer = trainers.BpeTrainer(
        vocab_size=max(int(vocab_size), 257),
        min_frequency=min_frequency,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        special_tokens=[],
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    state = json.loads(bpe.to_str())
    vocab: dict[str, int] = state["model"]["vocab"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in state["model"]["merges"]]
    tok = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    tok.add_special_tokens({"additional_special_tokens": list(special_tokens)})
    if number_tokens:
        tok.add_tokens([AddedToken(str(i), normalized=False, special=False) for i in range(int(number_tokens))])
    tok.chat_template = QWEN2_5_VL_CHAT_TEMPLATE
    tok.padding_side = "left"
    return tok


def tiny_qwen2_5_vl_config(tokenizer, **overrides: Any):
    """A small ``Qwen2_5_VLConfig`` matching ``tokenizer`` (overrides: text keys plain, vision keys
    prefixed ``vision_``, e.g. ``hidden_size=256, vision_depth=4, rope_theta=3.0``)."""
    from transformers import Qwen2_5_VLConfig

    text = dict(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        rope_theta=10000.0,
        mrope_section=None,
        tie_word_embeddings=True,
    )
    vision = dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=2, fullatt_block_indexes=None)
    for k, v in overrides.items():
        if k.startswith("vision_"):
            vision[k[len("vision_") :]] = v
        else:
            text[k] = v
    head_dim = text["hidden_size"] // text["num_attention_heads"]
    if text["mrope_section"] is None:
        half = head_dim // 2  # mrope_section sums to head_dim / 2 (t, h, w)
        t = half // 4
        h = (half - t) // 2
        text["mrope_section"] = [t, h, half - t - h]
    if vision["fullatt_block_indexes"] is None:
        vision["fullatt_block_indexes"] = list(range(vision["depth"]))
    vision["out_hidden_size"] = text["hidden_size"]
    tie = text.pop("tie_word_embeddings")
    rope = {"rope_type": "default", "mrope_section": text.pop("mrope_section"), "rope_theta": text.pop("rope_theta")}
    ids = {
        "image_token_id": tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        "video_token_id": tokenizer.convert_tokens_to_ids("<|video_pad|>"),
        "vision_start_token_id": tokenizer.convert_tokens_to_ids("<|vision_start|>"),
        "vision_end_token_id": tokenizer.convert_tokens_to_ids("<|vision_end|>"),
    }
    text.update(
        rope_parameters=rope,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|im_start|>"),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=tie,
    )
    cfg = Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=tie, **ids)
    return cfg


def build_tiny_qwen2_5_vl(
    tokenizer,
    out_dir: str | Path | None = None,
    *,
    image_size: int = 224,
    seed: int = 0,
    **config_overrides: Any,
):
    """A random-init ``(Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor)`` for ``tokenizer``.

    The image processor resizes every image to exactly ``image_size`` x ``image_size`` (a multiple of
    28): ``(image_size / 28) ** 2`` image tokens. Saved to ``out_dir`` when given.
    """
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2_5_VLForConditionalGeneration,
    )

    if image_size % 28:
        raise ValueError(f"image_size must be a multiple of 28 (patch 14 x merge 2), got {image_size}")
    cfg = tiny_qwen2_5_vl_config(tokenizer, **config_overrides)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(cfg)
    model.generation_config = GenerationConfig(
        bos_token_id=cfg.text_config.bos_token_id,
        eos_token_id=[tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")],
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
        max_new_tokens=256,
    )
    processor = build_processor(tokenizer, image_size)
    if out_dir is not None:
        save_tiny(model, processor, out_dir)
    return model, processor


def build_processor(tokenizer, image_size: int):
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    pixels = image_size * image_size
    image_processor = Qwen2VLImageProcessor(size={"shortest_edge": pixels, "longest_edge": pixels})
    return Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=QWEN2_5_VL_CHAT_TEMPLATE,
    )


def save_tiny(model, processor, out_dir: str | Path, *, dtype=None) -> Path:
    """``save_pretrained`` model (optionally cast, e.g. ``torch.float16`` to halve the size) + processor."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if dtype is not None:
        model = copy.deepcopy(model).to(dtype)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
