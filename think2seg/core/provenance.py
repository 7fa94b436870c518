"""What produced a result: the git commit of the checkout and the versions of the libraries that matter.

Written next to every evaluation (``metrics.json``) and training run (``think2seg_train_config.json``).
"""

from __future__ import annotations

import hashlib
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from think2seg.core.model_dirs import CONFIG, WEIGHT_SUFFIXES

PACKAGES = ("think2seg", "torch", "transformers", "trl", "sam2", "opencv-python-headless")


def git_sha() -> str | None:
    """``HEAD`` of the checkout this package is imported from, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed distribution versions (None when a package is not installed)."""

    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def provenance() -> dict[str, object]:
    return {"versions": versions(), "git_sha": git_sha()}


def weights_fingerprint(path: str | Path, chunk: int = 1 << 22) -> str | None:
    """A cheap content fingerprint of a local model directory (or file): sha256 over every weight file's
    name, size, first and last ``chunk`` bytes (safetensors headers hold every tensor's offsets), plus
    ``config.json``. Retrained or replaced weights under the same path change it, so a resumed
    evaluation cannot silently mix records of two models. None for hub ids and missing paths."""

    p = Path(path).expanduser()
    if not p.exists():
        return None
    files = [p] if p.is_file() else sorted(f for f in p.iterdir() if f.suffix in WEIGHT_SUFFIXES or f.name == CONFIG)
    if not files:
        return None
    h = hashlib.sha256()
    for f in files:
        size = f.stat().st_size
        h.update(f"{f.name}:{size}".encode())
        with f.open("rb") as fh:
            h.update(fh.read(chunk))
            if size > chunk:
                fh.seek(max(chunk, size - chunk))
                h.update(fh.read(chunk))
    return h.hexdigest()[:16]
