"""SAM2's single-prompt mask decoding with its prompt-independent work done once per image, bit for bit.

    >>> dec = CachedDecoder.build(predictor)   # None unless the sam2 code is the one mirrored here  # doctest: +SKIP
    >>> prep = dec.prepare(predictor._features)             # once per image  # doctest: +SKIP
    >>> masks = dec.predict(prep, coords, labels, box, hw)  # == predictor._predict(...)[0]  # doctest: +SKIP

:meth:`CachedDecoder.predict` is ``SAM2ImagePredictor._predict`` for one prompt row (no mask input,
``multimask_output=False``): ``coords`` (1, P, 2) and ``labels`` (1, P) or None, ``box`` (1, 2, 2) or None, in
the predictor's transformed input coordinates; it returns (1, 1, H, W) masks (or logits) for ``hw`` =
(H, W). It runs the same torch ops in the same order with the model's own modules and weights, so its
logits equal ``_predict``'s bit for bit; the upscaling convolutions use channels-last only where a
per-process check found the same bits (:attr:`CachedDecoder.conv_layout`). Only sam2 1.1.0's code is
mirrored: :meth:`CachedDecoder.build` compares a hash of the sources and returns None on any other
version. Why the bits are equal, and what it costs and saves: ``docs/sam2.md``.
"""

from __future__ import annotations

import hashlib
import inspect
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

# sha256 of the sources mirrored here, as in sam2 1.1.0 (see ``source_digest``)
SAM2_SOURCE_DIGEST = "eb3c067fcf3fe6c5bfa58ca8834a82a9eb0ab2ab2d86adcb3a23b2832fda92ea"


class ImagePrep(NamedTuple):
    """The prompt-independent decoder tensors of one image (batch 1)."""

    keys: torch.Tensor  # (1, HW, C) image tokens: (image_embed + no_mask_embed) flattened
    k0: torch.Tensor  # layer 0, token->image attention: k_proj(keys + pe), heads separated
    v0: torch.Tensor  # layer 0, token->image attention: v_proj(keys), heads separated
    q0: torch.Tensor  # layer 0, image->token attention: q_proj(keys + pe), heads separated
    high_res: list[torch.Tensor]  # [feat_s0, feat_s1 made contiguous] for the upscaling
    size: tuple[int, int]  # (h, w) of the embedding

    @property
    def nbytes(self) -> int:
        """Bytes held beyond the predictor's features (``keys`` is a new tensor; ``feat_s0`` is shared)."""
        held = (self.keys, self.k0, self.v0, self.q0, self.high_res[1])
        return sum(t.numel() * t.element_size() for t in held)


def _methods(pred: Any) -> list[Any]:
    """The functions mirrored here, looked up on the runtime classes of ``pred``'s model."""
    dec = pred.model.sam_mask_decoder
    attns = [a for layer in dec.transformer.layers
             for a in (layer.self_attn, layer.cross_attn_token_to_image, layer.cross_attn_image_to_token)]
    attns.append(dec.transformer.final_attn_token_to_image)
    fns = [type(pred)._predict, type(dec).forward, type(dec).predict_masks, type(dec.transformer).forward,
           type(dec.output_upscaling[1]).forward]
    fns += [type(layer).forward for layer in dec.transformer.layers]
    for a in attns:
        fns += [type(a).forward, type(a)._separate_heads, type(a)._recombine_heads]
    return list(dict.fromkeys(fns))  # each function once


def source_digest(pred: Any) -> str | None:
    """sha256 of the source of the mirrored methods (None when a source is unavailable)."""
    h = hashlib.sha256()
    try:
        for fn in _methods(pred):
            h.update(inspect.getsource(fn).encode())
    except (AttributeError, OSError, TypeError, IndexError):
        return None
    return h.hexdigest()


def _attend(attn: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``Attention.forward`` after its input projections and head separation (no dropout: eval)."""
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.0)
    return attn.out_proj(attn._recombine_heads(out))


def _heads(attn: Any, x: torch.Tensor) -> torch.Tensor:
    return attn._separate_heads(x, attn.num_heads)


def _block(layer: Any, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor, key_pe: torch.Tensor,
           prep: ImagePrep | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``TwoWayAttentionBlock.forward``, with ``keys + key_pe`` computed once (it computes it twice) and,
    for the first block (``prep`` given), the projections of the image tokens taken from ``prep``."""
    if layer.skip_first_layer_pe:
        queries = layer.self_attn(q=queries, k=queries, v=queries)
    else:
        q = queries + query_pe
        queries = queries + layer.self_attn(q=q, k=q, v=queries)
    queries = layer.norm1(queries)
    t2i, i2t = layer.cross_attn_token_to_image, layer.cross_attn_image_to_token
    if prep is None:
        k = keys + key_pe
        k_t2i, v_t2i, q_i2t = _heads(t2i, t2i.k_proj(k)), _heads(t2i, t2i.v_proj(keys)), _heads(i2t, i2t.q_proj(k))
    else:
        k_t2i, v_t2i, q_i2t = prep.k0, prep.v0, prep.q0
    q = queries + query_pe
    queries = layer.norm2(queries + _attend(t2i, _heads(t2i, t2i.q_proj(q)), k_t2i, v_t2i))
    queries = layer.norm3(queries + layer.mlp(queries))
    q = queries + query_pe
    attn_out = _attend(i2t, q_i2t, _heads(i2t, i2t.k_proj(q)), _heads(i2t, i2t.v_proj(queries)))
    return queries, layer.norm4(keys + attn_out)


def _layer_norm_2d(ln: Any, x: torch.Tensor) -> torch.Tensor:
    """``LayerNorm2d.forward``, with ``x - u`` computed once (it computes it twice)."""
    u = x.mean(1, keepdim=True)
    centred = x - u
    s = centred.pow(2).mean(1, keepdim=True)
    x = centred / torch.sqrt(s + ln.eps)
    return ln.weight[:, None, None] * x + ln.bias[:, None, None]


def _nchw(x: torch.Tensor) -> torch.Tensor:
    """``x.contiguous()``, by a 2-D transpose when ``x`` (batch 1) is channels-last (faster, same values)."""
    if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return x.contiguous()
    return x[0].permute(1, 2, 0).reshape(-1, x.shape[1]).t().contiguous().view(x.shape)


def _conv_channels_last(conv: Any, x: torch.Tensor) -> torch.Tensor:
    """``conv`` run on a channels-last copy of ``x``, its output made contiguous NCHW."""
    return _nchw(conv(x.contiguous(memory_format=torch.channels_last)))


class CachedDecoder:
    """``SAM2ImagePredictor._predict`` for one prompt row over an :class:`ImagePrep` (see the module doc)."""

    def __init__(self, pred: Any) -> None:
        self.pred = pred
        self.prompt_encoder = pred.model.sam_prompt_encoder
        self.decoder = pred.model.sam_mask_decoder
        self.pe: torch.Tensor | None = None  # the transformer's image_pe (1, HW, C), contiguous (first prepare)
        # (conv, input shape, dtype, device, torch threads) -> channels-last gave _predict's bits (see module doc)
        self.channels_last_ok: dict[tuple, bool] = {}

    @classmethod
    def build(cls, pred: Any) -> CachedDecoder | None:
        """A cached decoder for ``pred``, or None when its code differs from the code mirrored here."""
        dec = pred.model.sam_mask_decoder
        if dec.training or source_digest(pred) != SAM2_SOURCE_DIGEST:
            return None
        return cls(pred)

    @property
    def conv_layout(self) -> str:
        """How the upscaling convolutions run: ``channels-last (verified)``, ``nchw (channels-last differed)``
        or ``unchecked`` (before the first decode)."""
        ok = list(self.channels_last_ok.values())
        if not ok:
            return "unchecked"
        if all(ok) or not any(ok):
            return "channels-last (verified)" if ok[0] else "nchw (channels-last differed)"
        return f"channels-last for {sum(ok)} of {len(ok)} (conv, shape, threads), nchw where it differed"

    def _upconv(self, conv: Any, x: torch.Tensor) -> torch.Tensor:
        """``conv(x)`` as in ``_predict`` (x given NCHW-contiguous or channels-last; output contiguous NCHW),
        computed in channels-last where that was checked to give the same bits (see the module doc)."""
        key = (conv, x.shape, x.dtype, x.device, torch.get_num_threads())
        ok = self.channels_last_ok.get(key)
        if ok:
            return _conv_channels_last(conv, x)
        out = conv(_nchw(x))
        if ok is None:  # first use: both layouts on the real input and on a seeded random one
            probe = torch.randn(x.shape, generator=torch.Generator().manual_seed(0)).to(x)
            self.channels_last_ok[key] = (torch.equal(out, _conv_channels_last(conv, x))
                                          and torch.equal(conv(probe), _conv_channels_last(conv, probe)))
        return out

    def prepare(self, features: dict[str, Any], img_idx: int = -1) -> ImagePrep:
        """The prompt-independent tensors of the predictor's current image (call under its torch context)."""
        # as predict_masks and TwoWayTransformer.forward make them for one prompt row without mask input
        _, dense = self.prompt_encoder(points=None, boxes=None, masks=None)  # no_mask_embed, batch 1
        src = features["image_embed"][img_idx].unsqueeze(0) + dense
        pos_src = torch.repeat_interleave(self.prompt_encoder.get_dense_pe(), 1, dim=0)
        keys, key_pe = src.flatten(2).permute(0, 2, 1), pos_src.flatten(2).permute(0, 2, 1)
        if self.pe is None:
            self.pe = key_pe.contiguous()
        k = keys + key_pe
        layer0 = self.decoder.transformer.layers[0]
        t2i, i2t = layer0.cross_attn_token_to_image, layer0.cross_attn_image_to_token
        feat_s0, feat_s1 = (f[img_idx].unsqueeze(0) for f in features["high_res_feats"])
        return ImagePrep(keys, _heads(t2i, t2i.k_proj(k)), _heads(t2i, t2i.v_proj(keys)),
                         _heads(i2t, i2t.q_proj(k)), [feat_s0, feat_s1.contiguous()], tuple(src.shape[-2:]))

    def predict(self, prep: ImagePrep, point_coords: torch.Tensor | None, point_labels: torch.Tensor | None,
                boxes: torch.Tensor | None, orig_hw: tuple[int, int], return_logits: bool = False) -> torch.Tensor:
        """``_predict(..., multimask_output=False, return_logits)[0]`` for one prompt row: (1, 1, H, W)."""
        concat_points = (point_coords, point_labels) if point_coords is not None else None
        if boxes is not None:  # boxes go first, as two labelled corner points
            box_coords = boxes.reshape(-1, 2, 2)
            box_labels = torch.tensor([[2, 3]], dtype=torch.int, device=boxes.device).repeat(boxes.size(0), 1)
            if concat_points is not None:
                concat_points = (torch.cat([box_coords, concat_points[0]], dim=1),
                                 torch.cat([box_labels, concat_points[1]], dim=1))
            else:
                concat_points = (box_coords, box_labels)
        sparse, _ = self.prompt_encoder(points=concat_points, boxes=None, masks=None)
        assert sparse.size(0) == 1, "CachedDecoder decodes one prompt row at a time"
        low_res_masks = self._masks(prep, sparse)
        masks = self.pred._transforms.postprocess_masks(low_res_masks, orig_hw)
        return masks if return_logits else masks > self.pred.mask_threshold

    def _masks(self, prep: ImagePrep, sparse: torch.Tensor) -> torch.Tensor:
        """``MaskDecoder.forward(multimask_output=False)``'s low-res masks (1, 1, 256, 256)."""
        dec = self.decoder
        s = 1 if dec.pred_obj_scores else 0
        weights = [dec.obj_score_token.weight] if s else []
        output_tokens = torch.cat([*weights, dec.iou_token.weight, dec.mask_tokens.weight], dim=0)
        tokens = torch.cat((output_tokens.unsqueeze(0).expand(sparse.size(0), -1, -1), sparse), dim=1)

        hs, keys = self._transformer(prep, tokens)
        iou_token_out = hs[:, s, :]
        mask_tokens_out = hs[:, s + 1 : (s + 1 + dec.num_mask_tokens), :]

        b, c, (h, w) = keys.shape[0], keys.shape[2], prep.size
        src = keys.view(b, h, w, c).permute(0, 3, 1, 2)  # predict_masks' src, channels-last (its strides differ)
        if not dec.use_high_res_features:
            upscaled_embedding = dec.output_upscaling(_nchw(src))  # what conv_transpose2d's .contiguous() makes
        else:
            dc1, ln1, act1, dc2, act2 = dec.output_upscaling
            feat_s0, feat_s1 = prep.high_res
            upscaled_embedding = act1(_layer_norm_2d(ln1, self._upconv(dc1, src) + feat_s1))
            upscaled_embedding = act2(self._upconv(dc2, upscaled_embedding) + feat_s0)
        hyper_in = torch.stack(
            [dec.output_hypernetworks_mlps[i](mask_tokens_out[:, i, :]) for i in range(dec.num_mask_tokens)], dim=1
        )
        b, c, h, w = upscaled_embedding.shape
        masks = (hyper_in @ upscaled_embedding.view(b, c, h * w)).view(b, -1, h, w)
        # forward()'s selection for multimask_output=False: token 0, or the stability fallback
        if dec.dynamic_multimask_via_stability and not dec.training:
            masks, _ = dec._dynamic_multimask_via_stability(masks, dec.iou_prediction_head(iou_token_out))
            return masks
        return masks[:, 0:1, :, :]

    def _transformer(self, prep: ImagePrep, point_embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``TwoWayTransformer.forward`` with the first block's image-side work taken from ``prep``."""
        t = self.decoder.transformer
        queries, keys, pe = point_embedding, prep.keys, self.pe
        assert pe is not None, "prepare() comes first"
        for i, layer in enumerate(t.layers):
            queries, keys = _block(layer, queries, keys, point_embedding, pe, prep if i == 0 else None)
        q = queries + point_embedding
        k = keys + pe
        attn_out = t.final_attn_token_to_image(q=q, k=k, v=keys)
        return t.norm_final_attn(queries + attn_out), keys
