"""The figures published in the Think2Seg-RS paper (Tables 1-6), for the paper profile's side-by-side rows.

>>> from think2seg.reports.published import TABLE1
>>> TABLE1["Think2Seg-RS (Qwen2.5-VL-3B + SAM2-S)"]["test gIoU"]
71.09

Keys follow the measured tables' column names (``<split> <metric>``, ``<dataset> <metric>``); a value the
paper leaves out is absent. These are the paper's numbers under its own evaluation code (the
``authors`` protocol for its own rows; peers as the paper reports them), not re-measurements.
"""

from __future__ import annotations


def _split_rows(rows: dict[str, tuple[float, ...]], metrics: tuple[str, ...] = ("gIoU", "cIoU"),
                splits: tuple[str, ...] = ("val", "test")) -> dict[str, dict[str, float]]:
    keys = [f"{s} {m}" for s in splits for m in metrics]
    return {name: dict(zip(keys, vals, strict=True)) for name, vals in rows.items()}


TABLE1 = _split_rows({
    "LISA (CLIP-L + Vicuna-7B)": (61.04, 57.39, 60.88, 59.10),
    "PixelLM (CLIP-L + Vicuna-7B)": (57.94, 57.79, 60.01, 59.22),
    "PSALM (Swin-B + Phi-1.5)": (66.61, 62.03, 68.30, 64.61),
    "SegEarth-R1 (Swin-B + Phi-1.5)": (68.60, 64.13, 70.75, 68.25),
    "Seg-Zero (Qwen2.5-VL-7B + SAM2-L)": (63.00, 61.93, 63.16, 62.76),
    "VisionReasoner (Qwen2.5-VL-7B + SAM2-L)": (66.50, 67.98, 67.17, 65.29),
    "RemoteReasoner (Qwen2.5-VL-7B + SAM2)": (69.02, 67.80, 70.96, 69.13),
    "Think2Seg-RS (Qwen2.5-VL-3B + SAM2-S)": (69.30, 71.28, 71.09, 74.13),
    "Think2Seg-RS (Qwen2.5-VL-7B + SAM2-S)": (72.46, 73.62, 73.73, 75.83),
})

TABLE2 = _split_rows({  # empty-target samples: val 20, test 39
    "SegEarth-R1": (6, 14, 30.0, 20, 9, 30, 23.1, 39),
    "Think2Seg-RS-3B": (9, 11, 45.0, 20, 19, 20, 48.7, 39),
    "Think2Seg-RS-7B": (12, 8, 60.0, 20, 24, 15, 61.5, 39),
}, metrics=("TRUE", "FALSE", "TRUE %", "cases"))

TABLE3 = _split_rows({
    "Qwen2.5-VL-3B + SAM2": (14.87, 15.86, 12.94, 15.85, 12.80, 15.58, 4.18, 6.23, 0.74),
    "Qwen2.5-VL-7B + SAM2": (28.14, 30.45, 37.06, 26.30, 25.76, 31.15, 5.16, 8.29, 3.09),
    "SegEarth-R1": (26.34, 26.80, 25.05, 15.82, 16.04, 13.65, 1.92, 3.93, 0.28),
    "Seg-Zero": (43.70, 47.68, 45.83, 41.25, 37.36, 41.56, 10.08, 12.59, 3.69),
    "VisionReasoner": (49.39, 54.99, 53.69, 51.62, 46.98, 54.87, 11.15, 12.32, 4.46),
    "Think2Seg-RS-3B": (43.42, 48.66, 45.10, 40.04, 36.49, 39.37, 14.91, 16.46, 6.60),
    "Think2Seg-RS-7B": (47.97, 54.30, 51.66, 47.72, 44.18, 50.00, 15.53, 17.75, 7.43),
}, metrics=("gIoU", "cIoU", "P@0.5"), splits=("RRSIS-D", "RISBench", "RefSegRS"))
TABLE3["RemoteReasoner"] = {"RRSIS-D gIoU": 50.97, "RRSIS-D P@0.5": 54.29}

TABLE4 = _split_rows({  # LVLM prompter, SAM2-S
    "LLaVA-1.5-7B": (38.60, 35.84, 39.26, 36.94),
    "InternVL3-2B": (64.59, 64.53, 66.03, 66.96),
    "InternVL3-8B": (72.16, 71.91, 73.24, 73.13),
    "Qwen2.5-VL-3B": (69.30, 71.28, 71.09, 74.13),
    "Qwen2.5-VL-7B": (72.46, 73.62, 73.73, 75.83),
})

TABLE5 = _split_rows({  # SAM2 size, Qwen2.5-VL-3B prompter
    "tiny": (69.36, 71.24, 70.62, 73.94),
    "small": (69.30, 71.28, 71.09, 74.13),
    "base+": (69.50, 70.38, 70.78, 72.84),
    "large": (68.04, 69.45, 70.43, 72.39),
})
TABLE5_PARAMS_M = {"tiny": 38.9, "small": 46.0, "base+": 88.8, "large": 224.4}

TABLE6 = _split_rows({  # prompt combination, Qwen2.5-VL-3B + SAM2-S
    "bbox": (67.61, 69.68, 68.27, 70.95),
    "2pos": (56.15, 53.63, 56.01, 53.78),
    "bbox+2pos": (69.30, 71.28, 71.09, 74.13),
    "bbox+4pos": (67.31, 69.54, 69.18, 72.45),
    "bbox+2pos+2neg": (66.36, 68.91, 68.21, 72.16),
})
