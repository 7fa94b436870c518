"""Reading images and masks with errors that name the file, and writing them in the datasets' formats.

>>> read_image("does/not/exist.png")  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
DataError: does/not/exist.png: file not found

Every loader reports bad input through :class:`DataError`, whose message starts with the offending path;
``err.path``, ``err.problem`` and ``err.code`` (``missing``, ``unreadable``, ``size_mismatch``,
``bad_json``, ``bad_qa``, ``no_qa``, ``bad_annotation``...) let ``on_error="skip"`` record and count it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from think2seg.core.errors import UserError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")


class DataError(UserError, ValueError):
    """Bad dataset input; the message always starts with the offending path."""

    def __init__(
        self, message: str, *, path: str | Path | None = None, problem: str | None = None, code: str = "error"
    ):
        super().__init__(message)
        self.path = str(path) if path is not None else None
        self.problem = problem if problem is not None else message
        self.code = code


def data_error(path: str | Path, problem: str, code: str = "error") -> DataError:
    """``DataError(f"{path}: {problem}")`` with the parts kept as attributes."""
    return DataError(f"{path}: {problem}", path=path, problem=problem, code=code)


def _open(path: Path) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise data_error(path, "file not found", "missing")
    try:
        img = Image.open(path)
        img.load()  # force decoding now so truncated files fail here, not later
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise data_error(path, f"unreadable or truncated image ({e})", "unreadable") from e
    return img


def image_size(path: str | Path, verify: bool = True) -> tuple[int, int]:
    """``(W, H)`` of an image file; ``verify`` decodes it fully so truncated files raise :class:`DataError`."""
    path = Path(path)
    if verify:
        return _open(path).size
    if not path.is_file():
        raise data_error(path, "file not found", "missing")
    try:
        with Image.open(path) as img:
            return img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise data_error(path, f"unreadable image ({e})", "unreadable") from e


def read_image(path: str | Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB from any format PIL reads (jpg, png, tif...)."""
    img = _open(Path(path))
    if img.mode not in ("RGB", "L", "RGBA", "P", "I;16", "I", "F"):
        img = img.convert("RGB")
    if img.mode == "P":
        img = img.convert("RGB")
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.shape[2] > 3:
        arr = arr[..., :3]
    if arr.dtype != np.uint8:  # 16-bit or float remote-sensing tiles: stretch to 8 bit
        a = arr.astype(np.float64)
        lo, hi = np.nanmin(a), np.nanmax(a)
        arr = ((a - lo) / (hi - lo if hi > lo else 1.0) * 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def read_mask(path: str | Path) -> np.ndarray:
    """(H, W) bool: channel 0 > 0 (EarthReason labels, RefSegRS/RISBench masks)."""
    arr = np.asarray(_open(Path(path)))
    if arr.ndim == 3:
        arr = arr[..., 0]
    return arr > 0


def read_json(path: str | Path) -> Any:
    """Parsed JSON; a missing file or invalid JSON raises :class:`DataError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise data_error(path, "file not found", "missing")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise data_error(path, f"not valid JSON ({e})", "bad_json") from e


def find_image(folder: Path, stem: str) -> Path | None:
    """``folder/stem.<ext>`` for the first image extension that exists (either case), else None."""
    for ext in IMAGE_EXTS:
        for e in (ext, ext.upper()):
            p = folder / f"{stem}{e}"
            if p.is_file():
                return p
    return None


def write_rgb(path: str | Path, rgb: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 RGB image; the suffix picks the codec (``.jpg`` at quality 92, ``.tif``
    through PIL, anything else through OpenCV). ``OSError`` naming the file when it cannot be written."""
    path = Path(path)
    if path.suffix in (".jpg", ".jpeg"):
        ok = cv2.imwrite(str(path), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
    elif path.suffix in (".tif", ".tiff"):
        Image.fromarray(rgb).save(path)
        ok = True
    else:
        ok = cv2.imwrite(str(path), rgb[..., ::-1])
    if not ok:
        raise OSError(f"{path}: could not write image")


def write_mask(path: str | Path, mask: np.ndarray) -> None:
    """Write an (H, W) bool mask as 0/255 uint8 (``.png`` or ``.tif``), as :func:`read_mask` reads it."""
    path = Path(path)
    m = mask.astype(np.uint8) * 255
    if path.suffix in (".tif", ".tiff"):
        Image.fromarray(m).save(path)
    elif not cv2.imwrite(str(path), m):
        raise OSError(f"{path}: could not write mask")
