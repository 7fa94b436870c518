"""Where SAM2 checkpoints are looked for, under their official file names (no torch import here).

Search order for ``sam2:<size>`` without an explicit path: every folder in ``$THINK2SEG_SAM2_DIR``
(``os.pathsep``-separated), then ``./checkpoints`` (where sam2's own download script puts them).

    >>> find_sam2_checkpoints(["/nowhere"])                            # doctest: +NORMALIZE_WHITESPACE
    {'tiny': None, 'small': None, 'base+': None, 'large': None}
    >>> resolve_sam2_checkpoint("small", "/my/ckpts/")                 # doctest: +SKIP
    PosixPath('/my/ckpts/sam2.1_hiera_small.pt')

The official files are published at ``https://dl.fbaipublicfiles.com/segment_anything_2/092824/<file>``.
The shipped mini sizes (``sam2:mini-t``, ``sam2:mini-s``) resolve to ``think2seg/assets/sam2_mini/<size>.pt``:

    >>> shipped_sam2_config("mini-t").name
    'mini-t.yaml'
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from think2seg.core.errors import UserError
from think2seg.segmenters.spec import SAM2_SIZES, SHIPPED_SAM2

ENV_VAR = "THINK2SEG_SAM2_DIR"
OFFICIAL_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
DEFAULT_DIRS = ("checkpoints",)
MINI_DIR = Path(__file__).resolve().parents[1] / "assets" / "sam2_mini"
REBUILD = "think2seg sam2-train --config configs/sam2_mini/{size}.yaml --out runs/sam2-{size} --ship"


class CheckpointNotFoundError(UserError, FileNotFoundError):
    """A SAM2 checkpoint is missing; the message names the file expected and where to get it."""


def checkpoint_dirs() -> list[Path]:
    """The folders searched by default: ``$THINK2SEG_SAM2_DIR`` entries, then ``./checkpoints``."""
    dirs = [Path(d).expanduser() for d in os.environ.get(ENV_VAR, "").split(os.pathsep) if d.strip()]
    return dirs + [Path(d) for d in DEFAULT_DIRS]


def shipped_sam2_config(size: str) -> Path:
    """The hydra config file of a shipped mini size (``think2seg/assets/sam2_mini/<size>.yaml``)."""
    return MINI_DIR / SHIPPED_SAM2[size][0]


def shipped_sam2_checkpoints() -> dict[str, Path | None]:
    """``{size: float16 checkpoint or None}`` for the shipped mini sizes (None: not trained/shipped yet)."""
    out: dict[str, Path | None] = {}
    for size, (_, filename) in SHIPPED_SAM2.items():
        p = MINI_DIR / filename
        out[size] = p if p.is_file() else None
    return out


def official_url(size: str) -> str:
    return OFFICIAL_URL + SAM2_SIZES[size][1]


def find_sam2_checkpoints(dirs: Sequence[str | Path] | None = None) -> dict[str, Path | None]:
    """``{size: path or None}`` for every SAM2.1 size, first match in ``dirs`` (default: :func:`checkpoint_dirs`)."""
    search = [Path(d) for d in dirs] if dirs is not None else checkpoint_dirs()
    found: dict[str, Path | None] = {}
    for size, (_, filename) in SAM2_SIZES.items():
        found[size] = next((d / filename for d in search if (d / filename).is_file()), None)
    return found


def resolve_sam2_checkpoint(size: str, path: str | Path | None = None) -> Path:
    """The checkpoint file for ``size``: ``path`` (a file, or a folder with the official name) or a search.

    Raises :class:`CheckpointNotFoundError` saying which file is expected, where it was looked for, and
    where the official one is published (for a shipped mini size: the command that rebuilds it).
    """
    if size in SHIPPED_SAM2:
        return _resolve_shipped(size, path)
    filename = SAM2_SIZES[size][1]
    hint = (
        f"The official checkpoint is published at {official_url(size)} ; put it in a folder named by "
        f"${ENV_VAR} or pass it in the spec as 'sam2:{size}:/path/to/{filename}'. "
        f"('sam2:{size}:random' builds random weights: tests and benchmarks only.)"
    )
    if path is not None:
        p = Path(path).expanduser()
        if p.is_dir():
            p = p / filename
        if not p.is_file():
            raise CheckpointNotFoundError(f"SAM2 '{size}' checkpoint not found: {p} does not exist. {hint}")
        return p
    search = checkpoint_dirs()
    hit = find_sam2_checkpoints(search)[size]
    if hit is None:
        env = os.environ.get(ENV_VAR)
        where = ", ".join(str(d.resolve()) for d in search)
        raise CheckpointNotFoundError(
            f"SAM2 '{size}' checkpoint not found: expected a file named {filename} in {where} "
            f"(${ENV_VAR} is {'unset' if env is None else repr(env)}). {hint}"
        )
    return hit


def _resolve_shipped(size: str, path: str | Path | None) -> Path:
    filename = SHIPPED_SAM2[size][1]
    p = MINI_DIR / filename if path is None else Path(path).expanduser()
    if p.is_dir():
        p = p / filename
    if not p.is_file():
        raise CheckpointNotFoundError(
            f"SAM2 '{size}' checkpoint not found: {p} does not exist. It is built by "
            f"`{REBUILD.format(size=size)}` (docs/sam2.md)."
        )
    return p
