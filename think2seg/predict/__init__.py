"""Ask your own image: GeoTIFF (or any raster GDAL reads) in, georeferenced masks, overlays, JSON and vectors out.

>>> from think2seg.predict import PredictConfig, predict
>>> predict(PredictConfig(image="scene.tif", questions=["where could a plane take off?"], out="out/"))  # doctest: +SKIP

Modules: :mod:`.raster` (windowed reads, ``--bands``, percentile stretch), :mod:`.tiling` (grid and the
seam rule), :mod:`.outputs` (mask rasters, overlays, map coordinates), :mod:`.vector` (valid polygons: GeoPackage + RFC 7946 GeoJSON),
:mod:`.run` (strategies and the :func:`predict` function), :mod:`.mosaic` (a SynthEarth mosaic with known
targets, to compare strategies). The command is ``think2seg predict``; docs/predict.md has the measurements.
"""

from think2seg.data.raster import SceneError, open_scene
from think2seg.predict.run import DEFAULT_STRATEGY, STRATEGIES, PredictConfig, load_questions, predict

__all__ = ["DEFAULT_STRATEGY", "STRATEGIES", "PredictConfig", "SceneError", "load_questions", "open_scene", "predict"]
