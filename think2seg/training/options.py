"""The project's own training options, read by trl's ``TrlParser`` beside ``GRPOConfig`` (``think2seg train
--help`` lists both). One field, one default, one help string each.

    >>> from think2seg.training.options import Think2SegArgs
    >>> Think2SegArgs(model="tiny", data="synthearth").segmenter
    'grabcut'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from think2seg.core.styles import DEFAULT_STYLE, STYLES
from think2seg.segmenters.spec import DEFAULT_SEGMENTER, SPEC_HELP


@dataclass
class Think2SegArgs:
    """The project's own training options (next to trl's GRPOConfig)."""

    model: str = field(
        default="tiny",
        metadata={"help": "tiny | tiny:/path | local dir or hub id of a Qwen2.5-VL/InternVL3/LLaVA"},
    )
    data: str = field(
        default="synthearth",
        metadata={"help": "FORMAT:DIR of the training data (synthearth: the default SynthEarth, made on first use)"},
    )
    train_split: str = field(default="train", metadata={"help": "dataset split to train on"})
    questions: str = field(
        default="random",
        metadata={"help": "first | random | all (per image; authors: one random question per image)"},
    )
    question_kind: str | None = field(
        default=None, metadata={"help": "implicit | explicit (SynthEarth only)"}
    )
    train_limit: int | None = field(default=None, metadata={"help": "use only the first N training samples"})
    image_size: int | None = field(
        default=None,
        metadata={"help": "model input size (default: 840 Qwen, 896 InternVL3, the tiny model's own)"},
    )
    style: str = field(
        default=DEFAULT_STYLE, metadata={"help": f"prompt combination of the answers: {' | '.join(sorted(STYLES))}"}
    )
    template: str | None = field(
        default=None, metadata={"help": "reference | compact (default: reference; the tiny model's own)"}
    )
    segmenter: str = field(default=DEFAULT_SEGMENTER, metadata={"help": SPEC_HELP})
    eval_segmenter: str | None = field(
        default=None,
        metadata={"help": "segmenter of the held-out evaluations (default: --segmenter); e.g. train on boxfill, "
                  "evaluate on grabcut"},
    )
    reward: str = field(
        default="think2seg", metadata={"help": "think2seg | segzero | visionreasoner | remotereasoner"}
    )
    empty_json_ok_on_target: bool = field(
        default=False,
        metadata={"help": "released quirk: [] earns the JSON-format reward on a present target"},
    )
    parse_policy: str = field(
        default="lenient",
        metadata={"help": "answer parsing of the think2seg reward: lenient | released-train | released-test"},
    )
    loss_tokens: str = field(
        default="completion",
        metadata={"help": "completion (every generated token, the paper) | think (only the <think> span "
                  "carries the policy loss; think2seg.training.loss_tokens)"},
    )
    freeze_vision: bool = field(default=False, metadata={"help": "freeze the vision tower"})
    lora_r: int = field(default=0, metadata={"help": "LoRA rank (0 = full fine-tuning)"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha"})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout"})
    lora_target_modules: str | None = field(
        default=None,
        metadata={"help": "comma-separated module names (default: the family's, prompters/families.py: attention "
                  "+ MLP projections; Qwen3.5 adds its linear-attention in_proj_qkv,in_proj_z,out_proj)"},
    )
    max_minutes: float | None = field(
        default=None, metadata={"help": "stop training (and save) after this many minutes of wall-clock time"}
    )
    eval_split: str | None = field(
        default=None, metadata={"help": "evaluate gIoU on this split during training (think2seg eval)"}
    )
    eval_every: int = field(
        default=0, metadata={"help": "evaluate every N optimizer steps (0 = only before and after)"}
    )
    eval_limit: int | None = field(default=None, metadata={"help": "samples per evaluation"})
    eval_question_kind: str | None = field(
        default=None, metadata={"help": "question kind of the evaluations"}
    )
    eval_max_new_tokens: int | None = field(
        default=None,
        metadata={"help": "cap on the evaluations' answers (default: the authors protocol's 2048, as think2seg "
                  "eval; a lower cap makes the curve differ from think2seg eval where answers are longer)"},
    )
    threads: int | None = field(
        default=None,
        metadata={"help": "torch CPU threads while training (None: torch's default); a wall-clock budget "
                  "(max_minutes) buys a number of steps that depends on it"},
    )
    preset: str | None = field(
        default=None,
        metadata={"help": "loss variant: grpo (the paper's) | dr_grpo | dapo | bnpo (configs/train/presets/); sets "
                  "only loss_type, scale_rewards, mask_truncated_completions, epsilon_high"},
    )
    stop_on_collapse: bool = field(
        default=False,
        metadata={"help": "stop (after saving a checkpoint) when a run-health rule fires "
                  "(think2seg.training.health: length / format collapse, zero-variance groups, IoU flat at 0)"},
    )
    health_window: int = field(default=5, metadata={"help": "run health: logged rows per moving window"})
    health_iou_flat_steps: int = field(
        default=50, metadata={"help": "run health: steps with the IoU reward at 0 before the rule fires"}
    )
