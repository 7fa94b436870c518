"""Where SAM2 checkpoints are looked for, under their official file names (no torch import here).

Search order for ``sam2:<size>`` without an explicit path: every folder in ``$THINK2SEG_SAM2_DIR``
(``os.pathsep``-separated), then ``./checkpoints`` (where sam2's own download script puts them).

    >>> find_sam2_checkpoints(["/nowhere"])                            # doctest: +NORMALIZE_WHITESPACE
    {'tiny': None, 'small': None, 'base+': None, 'large': None}
    >>> resolve_sam2_checkpoint("small", "/my/ckpts/")                 # doctest: +SKIP
    PosixPath('/my/ckpts/sam2.1_hiera_small.pt')

The official files are published at ``https://dl.fbaipublicfiles.com/segment_anything_2/092824/<file>``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from think2seg.core.errors import UserError
from think2seg.segmenters.spec import SAM2_SIZES

ENV_VAR = "THINK2SEG_SAM2_DIR"
OFFICIAL_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
DEFAULT_DIRS = ("checkpoints",)


class CheckpointNotFoundError(UserError, FileNotFoundError):
    """A SAM2 checkpoint is missing; the message names the file expected and where to get it."""


def checkpoint_dirs() -> list[Path]:
    """The folders searched by default: ``$THINK2SEG_SAM2_DIR`` entries, then ``./checkpoints``."""
    dirs = [Path(d).expanduser() for d in os.environ.get(ENV_VAR, "").split(os.pathsep) if d.strip()]
    return dirs + [Path(d) for d in DEFAULT_DIRS]


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
    where the official one is published.
    """
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
