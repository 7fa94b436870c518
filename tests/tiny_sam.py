"""Test helper: tiny random-init transformers SAM models of the real classes (Sam2Model, SamHQModel,
Sam3TrackerModel) with their processors, saved with save_pretrained; nothing is downloaded.

    >>> from tiny_sam import build_tiny_sam      # tests/ is on sys.path under pytest  # doctest: +SKIP
    >>> build_tiny_sam("sam3", "/tmp/tiny_sam3")  # then build_segmenter("sam3:/tmp/tiny_sam3")  # doctest: +SKIP

Sizes: SAM2 / SAM-HQ take 256 px inputs (patch 16: a 16 x 16 embedding), SAM3's tracker 224 px (patch 14);
every width is 16-64 channels, so an encoder pass costs well under a second on a CPU.
"""

from __future__ import annotations

from pathlib import Path

TINY_SAM_BACKENDS = ("hf-sam2", "samhq", "sam3")


def build_tiny_sam(backend: str, out_dir: str | Path | None = None, seed: int = 0):
    """``(model, processor)`` of a tiny random-init ``backend`` (one of :data:`TINY_SAM_BACKENDS`)."""
    import torch
    import transformers as T

    torch.manual_seed(seed)
    decoder = dict(hidden_size=32, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32)
    if backend == "hf-sam2":
        s = 256
        hiera = T.Sam2HieraDetConfig(
            hidden_size=16, num_attention_heads=1, image_size=[s, s], blocks_per_stage=[1, 2, 1, 1],
            embed_dim_per_stage=[16, 32, 64, 128], num_attention_heads_per_stage=[1, 1, 1, 1],
            window_size_per_stage=[8, 4, 4, 4], global_attention_blocks=[2],
            window_positional_embedding_background_size=[4, 4])
        vision = T.Sam2VisionConfig(backbone_config=hiera, backbone_channel_list=[128, 64, 32, 16],
                                    backbone_feature_sizes=[[s // 4] * 2, [s // 8] * 2, [s // 16] * 2],
                                    fpn_hidden_size=32)
        config = T.Sam2Config(vision_config=vision, prompt_encoder_config=dict(hidden_size=32, image_size=s, patch_size=16),
                              mask_decoder_config=decoder)
        model = T.Sam2Model(config)
        ip = T.Sam2ImageProcessor(size={"height": s, "width": s}, mask_size={"height": s // 4, "width": s // 4})
        processor = T.Sam2Processor(image_processor=ip, target_size=s)
    elif backend == "samhq":
        s = 256
        vision = dict(hidden_size=32, output_channels=32, num_hidden_layers=2, num_attention_heads=2, image_size=s,
                      patch_size=16, window_size=4, global_attn_indexes=[1], num_pos_feats=16, mlp_dim=64)
        config = T.SamHQConfig(vision_config=vision,
                               prompt_encoder_config=dict(hidden_size=32, image_size=s, patch_size=16),
                               mask_decoder_config={**decoder, "vit_dim": 32})
        model = T.SamHQModel(config)
        ip = T.SamImageProcessor(size={"longest_edge": s}, pad_size={"height": s, "width": s})
        processor = T.SamHQProcessor(image_processor=ip)
    elif backend == "sam3":
        s = 224
        vit = T.Sam3ViTConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=s, patch_size=14, window_size=4, global_attn_indexes=[1],
                              pretrain_image_size=56)
        vision = T.Sam3VisionConfig(backbone_config=vit, fpn_hidden_size=32,
                                    backbone_feature_sizes=[[64, 64], [32, 32], [16, 16]])
        config = T.Sam3TrackerConfig(vision_config=vision,
                                     prompt_encoder_config=dict(hidden_size=32, image_size=s, patch_size=14),
                                     mask_decoder_config=decoder)
        model = T.Sam3TrackerModel(config)
        ip = T.Sam3ImageProcessor(size={"height": s, "width": s}, mask_size={"height": 56, "width": 56})
        processor = T.Sam3TrackerProcessor(image_processor=ip, target_size=s)
    else:
        raise ValueError(f"no tiny builder for {backend!r}; choose one of {TINY_SAM_BACKENDS}")
    model.eval()
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out_dir)
        processor.save_pretrained(out_dir)
    return model, processor
