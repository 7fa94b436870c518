"""What produced a result: the git commit of the checkout and the versions of the libraries that matter.

Written next to every evaluation (``metrics.json``) and training run (``think2seg_train_config.json``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

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
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def provenance() -> dict[str, object]:
    return {"versions": versions(), "git_sha": git_sha()}
