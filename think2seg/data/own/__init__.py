"""Your own imagery as a dataset: GeoTIFFs + vector labels + a questions file -> EarthReason's layout.

>>> from think2seg.data.own import BuildConfig, build_dataset
>>> summary = build_dataset(BuildConfig(images=["A.tif"], labels="labels.gpkg", class_field="class",
...                                     questions="configs/questions/synthearth.yaml", out="data/mine"))  # doctest: +SKIP

Modules: :mod:`.tiles` (images, tile grid, nodata), :mod:`.labels` (reading, repair, reprojection,
rasterizing), :mod:`.questions` (the questions file and the seeded draw), :mod:`.splits` (blocks or images
to splits, the leakage buffer, the split map), :mod:`.plan` (everything decided before reading pixels),
:mod:`.build` (the writing pass, resume, provenance). The command is ``think2seg dataset build``;
docs/datasets.md ("Your own data") walks through build -> stats -> eval -> train -> predict.
"""

from think2seg.data.own.build import DATASET_FILE, SPLIT_MAP_FILE, build_dataset
from think2seg.data.own.plan import BuildConfig

__all__ = ["DATASET_FILE", "SPLIT_MAP_FILE", "BuildConfig", "build_dataset"]
