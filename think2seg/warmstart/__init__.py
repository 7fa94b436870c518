"""Warm start of the embedded tiny prompter: from nothing to a shipped checkpoint, offline, on a CPU.

    think2seg warmstart --config configs/warmstart.yaml --out think2seg/assets/tiny_prompter

    >>> from think2seg.warmstart import WarmstartConfig, warmstart, evaluate
    >>> report = warmstart(WarmstartConfig(out="/tmp/ws", sft_steps=200))  # doctest: +SKIP

Stages, one module each:

* :mod:`~think2seg.warmstart.config` — :class:`WarmstartConfig` (defaults = the shipped recipe), YAML, flags;
* :mod:`~think2seg.warmstart.scenes` — fresh procedural SynthEarth scenes rendered on the fly, val at model size;
* :mod:`~think2seg.warmstart.targets` — the SFT completion: ``<think>`` names the category, one box + 2 points;
* :mod:`~think2seg.warmstart.vision` — dense position/occupancy warm-up of the vision tower, ZCA whitening;
* :mod:`~think2seg.warmstart.llm` — tokenizer + model, question-side and answer-side LLM warm-ups;
* :mod:`~think2seg.warmstart.sft` — trl ``SFTTrainer`` on the scene stream;
* :mod:`~think2seg.warmstart.report` — explicit / shuffled-image / implicit / forced-``<think>`` rows;
* :mod:`~think2seg.warmstart.build` — the driver.

The output is a plain ``save_pretrained`` dir (fp16) + ``think2seg_prompter.json`` +
``warmstart_report.json``; load it with ``TinyPrompter(out)`` or the prompter spec ``tiny:<out>``.
The recipe's history and measurements: ``docs/warmstart.md``.
"""

from think2seg.warmstart.build import warmstart
from think2seg.warmstart.config import WarmstartConfig, add_arguments, load_config
from think2seg.warmstart.report import evaluate, evaluate_sampled

__all__ = ["WarmstartConfig", "add_arguments", "evaluate", "evaluate_sampled", "load_config", "warmstart"]
