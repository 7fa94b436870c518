"""The prompter metadata a training run leaves: ``think2seg_prompter.json`` (image size, template, style)
in the output directory and in every ``checkpoint-N``, so ``hf:`` / ``tiny:`` / ``vllm:`` drive any of
them as trained (a 224 px run's ``checkpoint-200`` is not driven at 840 px).

    >>> from think2seg.training.meta import PrompterMetaCallback, write_prompter_meta
    >>> write_prompter_meta(t2s, "runs/x")        # the final model  # doctest: +SKIP
    >>> trainer.add_callback(PrompterMetaCallback(t2s))   # each checkpoint-N  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from think2seg.prompters.families import META_FILE


def write_prompter_meta(t2s: Any, out: str | Path) -> Path:
    """Write ``out/think2seg_prompter.json`` from the training options ``t2s``; returns its path."""
    meta = {"template": t2s.template, "style": t2s.style, "image_size": t2s.image_size}
    path = Path(out, META_FILE)
    path.write_text(json.dumps(meta, indent=2))
    return path


class PrompterMetaCallback(TrainerCallback):
    """After every checkpoint save, rank 0 writes the metadata into ``checkpoint-<global_step>``."""

    def __init__(self, t2s: Any) -> None:
        self.t2s = t2s

    def on_save(self, args, state, control, **kw):
        ckpt = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if state.is_world_process_zero and ckpt.is_dir():
            write_prompter_meta(self.t2s, ckpt)
        return control
