"""Loss-variant presets: named sets of trl ``GRPOConfig`` loss fields (``configs/train/presets/<name>.yaml``).

    think2seg train --config configs/train/cpu_demo.yaml --preset dr_grpo

>>> sorted(PRESET_FIELDS)
['epsilon_high', 'loss_type', 'mask_truncated_completions', 'scale_rewards']

A preset changes only :data:`PRESET_FIELDS`. It wins over the ``--config`` YAML (choosing a preset is
deliberate) and loses to the same field given on the command line (``--preset dapo --epsilon_high 0.3``).
``--preset`` may also be a path to such a YAML file. The resolved config records the preset's name and
fields (``think2seg.preset``, ``think2seg.preset_fields``) beside the GRPOConfig values it produced.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from think2seg.core.errors import UserError

PRESET_FIELDS = ("loss_type", "scale_rewards", "mask_truncated_completions", "epsilon_high")
PRESET_DIR = Path(__file__).resolve().parents[2] / "configs" / "train" / "presets"


class PresetError(UserError, ValueError):
    """An unknown preset name, or a preset file that sets other fields than the loss variant's."""


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name: str) -> dict[str, Any]:
    """The fields of preset ``name`` (a name in ``configs/train/presets/`` or a YAML path)."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise PresetError(f"--preset {name}: no such preset ({path} not found); presets: {', '.join(preset_names())}")
    fields = yaml.safe_load(path.read_text()) or {}
    extra = sorted(set(fields) - set(PRESET_FIELDS))
    if not isinstance(fields, dict) or extra:
        raise PresetError(f"{path}: a preset sets only {', '.join(PRESET_FIELDS)}; it also sets {', '.join(extra)}")
    return fields


def given_on_command_line(argv: Sequence[str]) -> set[str]:
    """The option names given as ``--name value`` / ``--name=value`` in ``argv``."""
    return {a[2:].split("=", 1)[0] for a in argv if a.startswith("--")}


def apply_preset(name: str | None, cfg: Any, argv: Sequence[str]) -> dict[str, Any]:
    """Set preset ``name``'s fields on the parsed ``GRPOConfig`` ``cfg`` except those given in ``argv``;
    returns the fields set (``{}`` without a preset)."""
    if not name:
        return {}
    explicit = given_on_command_line(argv)
    applied = {}
    for key, value in load_preset(name).items():
        if key in explicit:
            continue
        if key == "scale_rewards":  # GRPOConfig.__post_init__ maps booleans to names; a preset may use either
            value = {True: "group", False: "none"}.get(value, value)
        setattr(cfg, key, value)
        applied[key] = value
    return applied
