"""Reward functions with trl's GRPOTrainer contract, ``f(completions, **dataset_columns) -> list[float | None]``,
and the registry of reward schemes.

>>> funcs, weights = build_reward_funcs("think2seg", segmenter="grabcut", policy="released-train")  # doctest: +SKIP
>>> GRPOTrainer(..., reward_funcs=funcs, args=GRPOConfig(reward_weights=weights, ...))  # doctest: +SKIP

Schemes: ``think2seg`` (the paper's mask-only reward, :func:`think2seg_rewards`) and the peers'
box/point rewards ``segzero``, ``visionreasoner``, ``remotereasoner`` (:mod:`think2seg.rewards.peers`).

The paper's reward (Eq. 3) is ``λ1·R_format + λ2·R_IoU`` with λ1 = 1, λ2 = 2; as released the format part
is two 0/1 terms (max total 4), which trl logs separately: :func:`~think2seg.rewards.format.think_format_reward`,
:class:`~think2seg.rewards.format.JsonFormatReward` and :class:`~think2seg.rewards.mask_iou.MaskIoUReward`,
weighted by :data:`REWARD_WEIGHTS`. With ``compat="released"`` (parse policy ``released-train``) the total
equals, completion by completion, the released training reward; see ``docs/parse_policies.md``.

Modules: :mod:`~think2seg.rewards.columns` (trl's arguments), :mod:`~think2seg.rewards.format`,
:mod:`~think2seg.rewards.mask_iou`, :mod:`~think2seg.rewards.pseudo_gt` (peer pseudo ground truth),
:mod:`~think2seg.rewards.peers`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from think2seg.core.parsing import DEFAULT_POLICY, check_policy
from think2seg.core.styles import DEFAULT_STYLE, PromptStyle
from think2seg.rewards.columns import BatchParser, completion_text, image_sizes, load_gt_mask
from think2seg.rewards.format import JsonFormatReward, think_format_reward
from think2seg.rewards.mask_iou import MaskIoUReward
from think2seg.rewards.peers import (
    PEERS,
    PeerScheme,
    PeerTerm,
    RemoteReasonerScheme,
    SegZeroScheme,
    VisionReasonerScheme,
    box_l1,
    matched_point_distance,
    non_repeat_reward,
)
from think2seg.rewards.pseudo_gt import component_boxes, dbscan_instances, segzero_pseudo_gt
from think2seg.segmenters.spec import DEFAULT_SEGMENTER

REWARD_WEIGHTS = [1.0, 1.0, 2.0]  # think format, JSON format (λ1 = 1 each, as released), mask IoU (λ2 = 2)
SCHEMES = ("think2seg", *PEERS)
USES_SEGMENTER = {"think2seg": True, **{name: False for name in PEERS}}  # does the scheme's reward run it?
COMPAT = {"released": "released-train"}  # compat name -> the parse policy it implies

__all__ = [
    "COMPAT",
    "PEERS",
    "REWARD_WEIGHTS",
    "SCHEMES",
    "USES_SEGMENTER",
    "BatchParser",
    "JsonFormatReward",
    "MaskIoUReward",
    "PeerScheme",
    "PeerTerm",
    "RemoteReasonerScheme",
    "SegZeroScheme",
    "VisionReasonerScheme",
    "box_l1",
    "build_reward_funcs",
    "completion_text",
    "component_boxes",
    "dbscan_instances",
    "image_sizes",
    "load_gt_mask",
    "matched_point_distance",
    "needs_segmenter",
    "non_repeat_reward",
    "segzero_pseudo_gt",
    "think2seg_rewards",
    "think_format_reward",
]


def think2seg_rewards(
    segmenter: Any = DEFAULT_SEGMENTER,
    style: str | PromptStyle = DEFAULT_STYLE,
    empty_json_ok_on_target: bool = False,
    *,
    policy: str = DEFAULT_POLICY,
    compat: str | None = None,
) -> list[Any]:
    """The paper's reward as three trl reward functions (tag format, JSON format, mask IoU), to be weighted
    by :data:`REWARD_WEIGHTS`; the JSON and IoU terms share one :class:`BatchParser` (one parse per batch).

    ``policy`` is the parse policy (``lenient``, ``released-train``, ``released-test``); ``compat="released"``
    is ``policy="released-train"``, under which the weighted total is the released training reward."""
    if compat is not None:
        if compat not in COMPAT:
            raise ValueError(f"unknown compat {compat!r}; choose one of {list(COMPAT)} or None")
        policy = COMPAT[compat]
    parser = BatchParser(style, check_policy(policy))
    return [
        think_format_reward,
        JsonFormatReward(style, empty_json_ok_on_target=empty_json_ok_on_target, parser=parser),
        MaskIoUReward(segmenter, style, parser=parser),
    ]


def needs_segmenter(scheme: str) -> bool:
    """Whether the reward of ``scheme`` runs a segmenter (the peers' rewards score boxes and points only)."""
    key = str(scheme).strip().lower()
    if key not in USES_SEGMENTER:
        raise ValueError(f"unknown reward scheme {scheme!r}; choose one of {list(SCHEMES)}")
    return USES_SEGMENTER[key]


def build_reward_funcs(
    scheme: str,
    *,
    segmenter: Any = DEFAULT_SEGMENTER,
    style: str | PromptStyle = DEFAULT_STYLE,
    empty_json_ok_on_target: bool = False,
    policy: str = DEFAULT_POLICY,
    **options: Any,
) -> tuple[list[Callable[..., list[float | None]]], list[float]]:
    """trl ``reward_funcs`` and matching ``reward_weights`` for a reward scheme.

    ``think2seg`` -> the mask-only reward (think format 1, JSON format 1, mask IoU 2) under the parse
    ``policy``; the peers -> format terms and their accuracy terms, weight 1 each, parsed ``lenient``
    (the released parse policies are Think2Seg-RS's, not the peers'). ``segmenter`` is used by
    ``think2seg`` only. ``options`` go to the peer scheme's constructor (e.g. ``point_thr=30`` for
    ``segzero``, ``eps_frac`` / ``min_samples`` for ``visionreasoner``, ``min_area`` for ``remotereasoner``).
    """
    key = str(scheme).strip().lower()
    check_policy(policy)
    if key == "think2seg":
        if options:
            raise ValueError(f"the think2seg scheme takes no options, got {sorted(options)}")
        funcs = think2seg_rewards(
            segmenter, style, empty_json_ok_on_target=empty_json_ok_on_target, policy=policy
        )
        return funcs, list(REWARD_WEIGHTS)
    if key not in PEERS:
        raise ValueError(f"unknown reward scheme {scheme!r}; choose one of {list(SCHEMES)}")
    if policy != DEFAULT_POLICY:
        raise ValueError(
            f"parse policy {policy!r} applies to the think2seg scheme only; the {key} scheme parses lenient"
        )
    peer = PEERS[key](style, empty_json_ok_on_target=empty_json_ok_on_target, **options)
    return peer.reward_funcs(), peer.reward_weights
