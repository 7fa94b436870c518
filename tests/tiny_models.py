"""Test helper: tiny random-init LVLMs of the real transformers classes, for offline tests of
:mod:`think2seg.prompters.hf` (not part of the package).

    >>> from tiny_models import build_tiny      # tests/ is on sys.path under pytest  # doctest: +SKIP
    >>> model, processor = build_tiny("internvl3", "/tmp/tiny_internvl")   # saved with save_pretrained  # doctest: +SKIP
    >>> HFPrompter("/tmp/tiny_internvl", image_size=112).generate(samples)   # exactly the real code path  # doctest: +SKIP

No weights are downloaded: tokenizers are trained here (byte-level BPE for the Qwen2-based families,
a byte-fallback Metaspace BPE for LLaVA's Llama tokenizer) on the reference instruction text, and the
models are random-init ``*ForConditionalGeneration`` of the same classes as the released checkpoints:

=============  =======================================  ==========================================
family         model / processor                        image path (tests use small sizes)
=============  =======================================  ==========================================
qwen2.5-vl     Qwen2_5_VLForConditionalGeneration,      built by :mod:`~think2seg.prompters.tinybuild`;
               Qwen2_5_VLProcessor                      (image_size / 28)^2 image tokens
internvl3      InternVLForConditionalGeneration,        GotOcr2 tiles of ``tile_size`` px (dynamic
               InternVLProcessor (Qwen2 tokenizer)      tiling + thumbnail as InternVL3-hf), pixel
                                                        shuffle 0.5: (tile/14)^2/4 tokens per tile
llava          LlavaForConditionalGeneration,           CLIP resize + centre crop to ``image_size``;
               LlavaProcessor (Llama tokenizer)         (image_size/14)^2 tokens (CLS dropped)
qwen3-vl       Qwen3VLForConditionalGeneration,         patch 16 x merge 2: (image_size / 32)^2
               Qwen3VLProcessor (Qwen2 tokenizer)       tokens; deepstack on both vision blocks
qwen3.5        Qwen3_5ForConditionalGeneration,         as qwen3-vl; text: 3 Gated-DeltaNet layers +
               Qwen3VLProcessor (Qwen2 tokenizer)       1 full-attention layer; the template opens
                                                        ``<think>`` in its generation prompt
=============  =======================================  ==========================================

Each builder returns ``(model, processor)`` and saves both to ``out_dir`` when given. The chat
templates are short re-statements of each family's prompt layout (ChatML for Qwen / InternVL,
``USER: <image>\\n... ASSISTANT:`` for LLaVA-1.5), not the released files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

TINY_FAMILIES = ("qwen2.5-vl", "internvl3", "llava", "qwen3-vl", "qwen3.5")

_QUESTIONS = (
    "Where could a plane take off?",
    "Which buildings store oil?",
    "Find the sports fields in this area.",
    "Which structures collect solar energy?",
)

INTERNVL_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<IMG_CONTEXT>\n"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{% for part in message['content'] %}{{ part['text'] }} {% endfor %}"
    "{% else %}{{ message['role'].upper() }}: "
    "{% if message['content'] is string %}{{ message['content'] }} {% else %}"
    "{% for part in message['content'] if part['type'] == 'image' %}<image>\n{% endfor %}"
    "{% for part in message['content'] if part['type'] == 'text' %}{{ part['text'] }} {% endfor %}"
    "{% endif %}{% if message['role'] == 'assistant' %}</s>{% endif %}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


# Qwen3-VL / Qwen3.5 layout: ChatML, no default system message, one vision block per image part
_QWEN3_BODY = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
)
QWEN3_VL_CHAT_TEMPLATE = _QWEN3_BODY + "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
# thinking by default: the generation prompt opens <think> (enable_thinking=false closes it empty)
QWEN3_5_CHAT_TEMPLATE = _QWEN3_BODY + (
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n"
    "{% else %}<think>\n{% endif %}{% endif %}"
)


def default_corpus() -> list[str]:
    """Instruction texts of every prompt style (reference template) plus answer-format examples."""
    from think2seg.core.styles import REFERENCE_SYSTEM, STYLES, format_answer, instruction_text
    from think2seg.core.types import Instance

    texts = [REFERENCE_SYSTEM]
    for q in _QUESTIONS:
        for style in STYLES:
            texts.append(instruction_text(q, style))
    texts.append(format_answer([Instance(box=(12, 345, 678, 790), positive=((123, 456), (789, 101)))], "ok"))
    return texts


# --------------------------------------------------------------------------------------------------
# Tokenizers


def _qwen2_tokenizer(texts: Iterable[str], vocab_size: int, named: dict[str, str], extra: list[str]):
    """A ``Qwen2Tokenizer`` (byte-level BPE trained by tinybuild) with named model-specific tokens."""
    from transformers import Qwen2Tokenizer

    from think2seg.prompters.tinybuild import train_bpe_tokenizer

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *named.values(), *extra]
    base = train_bpe_tokenizer(list(texts), vocab_size, special_tokens=specials)
    state = json.loads(base.backend_tokenizer.to_str())
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in state["model"]["merges"]]
    tok = Qwen2Tokenizer(
        vocab=state["model"]["vocab"],
        merges=merges,
        unk_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=dict(named),  # -> tok.start_image_token, tok.start_image_token_id, ...
    )
    tok.add_special_tokens({"additional_special_tokens": [s for s in specials if s != "<|endoftext|>"]})
    tok.padding_side = "left"
    return tok


def _llama_tokenizer(texts: Iterable[str], vocab_size: int):
    """A ``LlamaTokenizer``: Metaspace BPE with byte fallback (``<0x00>``..``<0xFF>``), plus ``<image>``/``<pad>``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaTokenizer

    base = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
    bpe = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    trainer = trainers.BpeTrainer(
        vocab_size=len(base) + int(vocab_size), min_frequency=2, special_tokens=base, show_progress=False
    )
    bpe.train_from_iterator(list(texts), trainer=trainer)
    state = json.loads(bpe.to_str())
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in state["model"]["merges"]]
    tok = LlamaTokenizer(vocab=state["model"]["vocab"], merges=merges, legacy=False)
    tok.add_special_tokens({"pad_token": "<pad>", "additional_special_tokens": ["<image>"]})
    tok.padding_side = "left"
    return tok


def _save(model, processor, out_dir: str | Path | None) -> None:
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out)
        processor.save_pretrained(out)


def _generation_config(tok, eos: list[int], **fields: Any):
    from transformers import GenerationConfig

    fields = {"do_sample": False, "max_new_tokens": 64, **fields}
    return GenerationConfig(eos_token_id=eos, pad_token_id=tok.pad_token_id, **fields)


# --------------------------------------------------------------------------------------------------
# Builders


def build_qwen_from_corpus(
    out_dir: str | Path | None = None,
    *,
    image_size: int = 56,
    texts: Iterable[str] | None = None,
    vocab_size: int = 400,
    seed: int = 0,
    **overrides: Any,
):
    """Tiny ``Qwen2_5_VLForConditionalGeneration`` + processor: a BPE trained on ``texts`` (default: the
    reference instruction text), then :func:`think2seg.prompters.tinybuild.build_tiny_qwen2_5_vl`."""
    from think2seg.prompters import tinybuild

    tok = tinybuild.train_bpe_tokenizer(list(texts or default_corpus()), vocab_size)
    return tinybuild.build_tiny_qwen2_5_vl(tok, out_dir, image_size=image_size, seed=seed, **overrides)


def build_tiny_internvl(
    out_dir: str | Path | None = None,
    *,
    tile_size: int = 56,
    texts: Iterable[str] | None = None,
    vocab_size: int = 400,
    seed: int = 0,
    max_patches: int = 12,
):
    """Tiny ``InternVLForConditionalGeneration`` (Qwen2 text model) + ``InternVLProcessor``.

    Vision: 2 layers, hidden 32, patch 14 on ``tile_size`` px tiles (a multiple of 28); text: 2 layers,
    hidden 64. The processor tiles each image like InternVL3-hf (``crop_to_patches``, up to
    ``max_patches`` tiles plus a thumbnail), each tile giving ``(tile_size / 28) ** 2`` image tokens.
    """
    import torch
    from transformers import (
        GotOcr2ImageProcessor,
        InternVLConfig,
        InternVLForConditionalGeneration,
        InternVLProcessor,
        InternVLVideoProcessor,
    )

    if tile_size % 28:
        raise ValueError(f"tile_size must be a multiple of 28 (patch 14, pixel shuffle 0.5), got {tile_size}")
    named = {
        "start_image_token": "<img>",
        "end_image_token": "</img>",
        "context_image_token": "<IMG_CONTEXT>",
        "video_token": "<video>",
    }
    tok = _qwen2_tokenizer(texts or default_corpus(), vocab_size, named, [])
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    seq = (tile_size // 28) ** 2
    vision = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=[tile_size, tile_size],
        patch_size=[14, 14],
    )
    text = dict(
        model_type="qwen2",
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        eos_token_id=eos,
        pad_token_id=tok.pad_token_id,
    )
    config = InternVLConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tok.context_image_token_id,
        image_seq_length=seq,
        downsample_ratio=0.5,
    )
    torch.manual_seed(seed)
    model = InternVLForConditionalGeneration(config)
    # near-greedy sampling defaults, as Qwen-based releases ship them: the prompter must override them
    model.generation_config = _generation_config(
        tok, [eos, tok.pad_token_id], do_sample=True, top_k=1, top_p=0.001, repetition_penalty=1.05
    )
    image_processor = GotOcr2ImageProcessor(
        size={"height": tile_size, "width": tile_size}, min_patches=1, max_patches=max_patches
    )
    processor = InternVLProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        video_processor=InternVLVideoProcessor(),
        image_seq_length=seq,
        chat_template=INTERNVL_CHAT_TEMPLATE,
    )
    _save(model, processor, out_dir)
    return model, processor


def build_tiny_llava(
    out_dir: str | Path | None = None,
    *,
    image_size: int = 56,
    texts: Iterable[str] | None = None,
    vocab_size: int = 400,
    seed: int = 0,
):
    """Tiny ``LlavaForConditionalGeneration`` (CLIP vision tower + Llama text model) + ``LlavaProcessor``.

    As llava-1.5-hf: CLIP image processor (shortest edge ``image_size``, centre crop), patch 14 with a
    CLS token that the ``default`` feature strategy drops, features from layer -2, 2-layer MLP projector.
    """
    import torch
    from transformers import CLIPImageProcessor, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    if image_size % 14:
        raise ValueError(f"image_size must be a multiple of 14 (CLIP patch), got {image_size}")
    tok = _llama_tokenizer(texts or default_corpus(), vocab_size)
    eos = tok.eos_token_id
    vision = dict(
        model_type="clip_vision_model",
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=14,
        projection_dim=32,
    )
    text = dict(
        model_type="llama",
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=4096,
        bos_token_id=tok.bos_token_id,
        eos_token_id=eos,
        pad_token_id=tok.pad_token_id,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        image_seq_length=(image_size // 14) ** 2,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    model.generation_config = _generation_config(tok, [eos])
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_CHAT_TEMPLATE,
    )
    _save(model, processor, out_dir)
    return model, processor


def build_tiny_qwen3(
    out_dir: str | Path | None = None,
    *,
    family: str = "qwen3-vl",
    image_size: int = 64,
    texts: Iterable[str] | None = None,
    vocab_size: int = 400,
    seed: int = 0,
):
    """Tiny ``Qwen3VLForConditionalGeneration`` or ``Qwen3_5ForConditionalGeneration`` + ``Qwen3VLProcessor``.

    Vision: 2 blocks, hidden 32, patch 16, merge 2 (``image_size`` a multiple of 32, pinned as min = max
    pixels); text: hidden 64, head_dim 16, interleaved M-RoPE. Qwen3.5's text model has 4 layers (3 linear
    attention, 1 full attention, as its ``full_attention_interval`` 4) and a thinking chat template.
    """
    import torch
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3_5Config,
        Qwen3_5ForConditionalGeneration,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    from think2seg.prompters import tinybuild

    if image_size % 32:
        raise ValueError(f"image_size must be a multiple of 32 (patch 16 x merge 2), got {image_size}")
    tok = tinybuild.train_bpe_tokenizer(list(texts or default_corpus()), vocab_size)
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    ids = {
        "image_token_id": tok.convert_tokens_to_ids("<|image_pad|>"),
        "video_token_id": tok.convert_tokens_to_ids("<|video_pad|>"),
        "vision_start_token_id": tok.convert_tokens_to_ids("<|vision_start|>"),
        "vision_end_token_id": tok.convert_tokens_to_ids("<|vision_end|>"),
    }
    vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16, spatial_merge_size=2,
                  temporal_patch_size=2, out_hidden_size=64, num_position_embeddings=64)
    text = dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_attention_heads=4,
                num_key_value_heads=2, head_dim=16, eos_token_id=eos, pad_token_id=tok.pad_token_id,
                max_position_embeddings=4096)
    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_interleaved": True}
    torch.manual_seed(seed)
    if family == "qwen3-vl":
        text.update(num_hidden_layers=2, rope_parameters={**rope, "mrope_section": [4, 2, 2]})
        config = Qwen3VLConfig(text_config=text, vision_config={**vision, "deepstack_visual_indexes": [0, 1]}, **ids)
        model, template = Qwen3VLForConditionalGeneration(config), QWEN3_VL_CHAT_TEMPLATE
    elif family == "qwen3.5":
        text.update(num_hidden_layers=4, linear_key_head_dim=16, linear_value_head_dim=16, linear_num_key_heads=2,
                    linear_num_value_heads=4,
                    rope_parameters={**rope, "mrope_section": [2, 1, 1], "partial_rotary_factor": 0.5})
        config = Qwen3_5Config(text_config=text, vision_config=vision, **ids)
        model, template = Qwen3_5ForConditionalGeneration(config), QWEN3_5_CHAT_TEMPLATE
    else:
        raise ValueError(f"build_tiny_qwen3: family must be qwen3-vl or qwen3.5, got {family!r}")
    model.generation_config = _generation_config(
        tok, [eos, tok.pad_token_id], do_sample=True, top_k=20, top_p=0.8, temperature=0.7
    )
    pixels = image_size * image_size
    image_processor = Qwen2VLImageProcessor(
        size={"shortest_edge": pixels, "longest_edge": pixels}, patch_size=16, merge_size=2, temporal_patch_size=2
    )
    processor = Qwen3VLProcessor(image_processor=image_processor, tokenizer=tok,
                                 video_processor=Qwen3VLVideoProcessor(), chat_template=template)
    _save(model, processor, out_dir)
    return model, processor


def build_tiny(family: str, out_dir: str | Path | None = None, **kwargs: Any):
    """``(model, processor)`` of a tiny random-init model of ``family`` (one of :data:`TINY_FAMILIES`)."""
    builders = {
        "qwen2.5-vl": build_qwen_from_corpus,
        "internvl3": build_tiny_internvl,
        "llava": build_tiny_llava,
        "qwen3-vl": lambda out, **kw: build_tiny_qwen3(out, family="qwen3-vl", **kw),
        "qwen3.5": lambda out, **kw: build_tiny_qwen3(out, family="qwen3.5", **kw),
    }
    if family not in builders:
        raise ValueError(f"no tiny builder for family {family!r}; choose one of {list(builders)}")
    return builders[family](out_dir, **kwargs)
