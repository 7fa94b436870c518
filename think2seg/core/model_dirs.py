"""Model directories: the one rule that tells a local model folder from a hub id, and what it must hold.

>>> looks_local("Qwen/Qwen2.5-VL-3B-Instruct"), looks_local("./runs/ckpt"), looks_local("/models/qwen")
(False, True, True)
>>> check_model_dir("/nonexistent", "--model")          # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
ModelNotFoundError: --model /nonexistent: no such model directory

A folder is a model directory when it holds a ``config.json`` (what ``save_pretrained`` writes);
``think2seg doctor`` lists those found with :func:`find_model_dirs`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from think2seg.core.errors import ModelNotFoundError

CONFIG = "config.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def looks_local(spec: str | Path) -> bool:
    """True for a path (existing, or written like one: ``/``, ``.``, ``~``, more than one ``/``); hub ids
    are ``name`` or ``org/name``."""
    s = str(spec)
    return (
        Path(s).expanduser().exists()
        or s.startswith(("/", ".", "~"))
        or s.count("/") > 1
        or "\\" in s
        or os.path.isabs(s)
    )


def check_model_dir(
    path: str | Path, what: str, files: Sequence[str] = (CONFIG,), weights: bool = False, hint: str = ""
) -> Path:
    """``path`` (user-expanded) if it is a folder holding ``files`` (and a weight file when ``weights``);
    otherwise :class:`ModelNotFoundError` whose one-line message starts with ``what`` (the option or
    spec at fault) and the path, and ends with ``hint``."""
    p = Path(path).expanduser()
    tail = f" ({hint})" if hint else ""
    if not p.is_dir():
        raise ModelNotFoundError(f"{what} {path}: no such model directory{tail}")
    for name in files:
        if not (p / name).is_file():
            raise ModelNotFoundError(
                f"{what} {path}: no {name}; expected a save_pretrained directory of a model and its processor{tail}"
            )
    if weights and not any(f.suffix in WEIGHT_SUFFIXES for f in p.iterdir()):
        raise ModelNotFoundError(f"{what} {path}: no model weights (*.safetensors){tail}")
    return p


def read_model_type(path: str | Path) -> str | None:
    """``model_type`` of the folder's ``config.json`` (None when absent); a ValueError names a broken file."""
    f = Path(path) / CONFIG
    try:
        return json.loads(f.read_text(encoding="utf-8")).get("model_type")
    except json.JSONDecodeError as e:
        raise ValueError(f"{f} is not valid JSON: {e}") from e


def find_model_dirs(dirs: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Model directories directly in, or one level under, ``dirs``: ``[{"path", "model_type"}, ...]``
    (``{"path", "error"}`` for a folder that does not exist)."""
    found: list[dict[str, Any]] = []
    for d in dirs:
        d = Path(d).expanduser()
        if not d.is_dir():
            found.append({"path": str(d), "error": "not a directory"})
            continue
        for cand in [d, *sorted(p for p in d.iterdir() if p.is_dir())]:
            if (cand / CONFIG).is_file():
                try:
                    model_type = read_model_type(cand)
                except (OSError, ValueError) as e:
                    model_type = f"unreadable {CONFIG} ({e})"
                found.append({"path": str(cand), "model_type": model_type})
    return found


def hf_weights_missing(source: str) -> str | None:
    """Why a transformers model ``source`` (a local folder or a hub id) is not usable here, or None: a folder
    without ``config.json``, or a hub id absent from the local hub cache (nothing is downloaded)."""
    if source == "random":
        return None
    if looks_local(source):
        p = Path(source).expanduser()
        return None if (p / CONFIG).is_file() else f"{source}: no model folder with {CONFIG}"
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(source, CONFIG)
    return None if isinstance(cached, str) else f"{source}: not in the local hub cache"
