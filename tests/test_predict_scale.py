"""think2seg predict on a 4096 x 4096 GeoTIFF: peak memory does not grow with the scene (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

# the command in a fresh interpreter that prints its own peak RSS (VmHWM, KiB) when it ends. Not ru_maxrss:
# that survives fork + exec, so it would start at the size of this pytest process
MEASURED = ("import re, sys; from think2seg.cli import main; rc = main(sys.argv[1:]); "
            "print('MAXRSS', re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read()).group(1)); sys.exit(rc)")


def _scene(path, truth_path, side):
    """``side`` x ``side`` RGB GeoTIFF with a disc every 1024 px, written block row by block row."""
    import cv2
    from affine import Affine
    from rasterio.windows import Window

    prof = {"driver": "GTiff", "width": side, "height": side, "crs": "EPSG:32631", "dtype": "uint8",
            "transform": Affine(1.0, 0.0, 400000.0, 0.0, -1.0, 5000000.0), "tiled": True, "blockxsize": 256,
            "blockysize": 256, "compress": "deflate"}
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", count=3, **prof) as img, rasterio.open(truth_path, "w", count=1, **prof) as tr:
        for r in range(0, side, 256):
            t = np.zeros((256, side), np.uint8)
            for c in range(512, side, 1024):
                if r % 1024 == 256:  # disc centres at y = 384, 1408, ...; x = 512, 1536, ...
                    cv2.circle(t, (c, 128), 40, 1, -1)
            rgb = np.where(t[None] > 0, 210, 70).astype(np.int16) + rng.integers(-8, 9, (3, 256, side))
            img.write(rgb.clip(0, 255).astype(np.uint8), window=Window(0, r, side, 256))
            tr.write(t, 1, window=Window(0, r, side, 256))


@pytest.mark.slow
def test_peak_memory_is_bounded_by_the_tile_not_the_scene(tmp_path):
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs Linux /proc to read the peak RSS")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    peaks, runs = [], []
    for side in (2048, 4096):
        image, truth = tmp_path / f"s{side}.tif", tmp_path / f"t{side}.tif"
        _scene(image, truth, side)
        out = tmp_path / f"o{side}"
        done = subprocess.run([sys.executable, "-c", MEASURED, "predict", str(image), "--question", "the discs",
                               "--prompter", "oracle", "--truth", str(truth), "--out", str(out)], check=True, env=env,
                              capture_output=True, text=True)
        peaks.append(int(done.stdout.split("MAXRSS")[-1]) * 1024)
        runs.append(json.loads((out / "predictions.json").read_text()))
    assert runs[1]["n_tiles"] == 49 and runs[1]["questions"][0]["mask_pixels"] > 16 * 4000  # 16 discs of ~5000 px found
    scene_rgb = 4096 * 4096 * 3
    print(f"peak RSS 2048 px: {peaks[0] / 2**20:.0f} MiB, 4096 px: {peaks[1] / 2**20:.0f} MiB")
    assert peaks[1] - peaks[0] < scene_rgb // 2  # 4x the pixels, less than half a whole-scene read more
