"""``think2seg dataset build``: your GeoTIFFs + vector labels + questions -> an EarthReason-format dataset.

    think2seg dataset build --images A.tif B.tif --labels labels.gpkg --class-field class \\
        --questions configs/questions/synthearth.yaml --out data/mine
    think2seg data-stats earthreason:data/mine

docs/datasets.md ("Your own data") has the whole path: build -> stats -> eval -> train -> predict.
"""

from __future__ import annotations

import argparse

from think2seg.data.formats import SPLITS
from think2seg.data.own import BuildConfig, build_dataset
from think2seg.data.own.splits import SPLIT_BY


def register(sub) -> None:
    p = sub.add_parser("dataset", help="build a dataset from your own imagery (dataset build)",
                       description="Datasets from your own imagery.")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    b = actions.add_parser(
        "build",
        help="GeoTIFFs + vector labels + a questions file -> EarthReason's on-disk layout",
        description="Tile GeoTIFFs, rasterize vector labels (any CRS, reprojected to the images'; invalid "
        "polygons repaired) into one mask per category per tile, draw questions per category with a seed "
        "(empty-target questions at --empty-ratio), split by spatial blocks or whole images without "
        "leakage (tiles of different splits never overlap or touch), and write EarthReason's layout with "
        "dataset.json (provenance) and split_map.geojson. Resumes when rerun after an interruption.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="lengths (--tile, --overlap, --block) are pixels (512) or metres (300m).\n"
        "example: think2seg dataset build --images A.tif --labels labels.gpkg --class-field class "
        "--questions configs/questions/synthearth.yaml --out data/mine",
    )
    b.add_argument("--images", nargs="+", required=True, metavar="TIF", help="GeoTIFFs in one CRS")
    b.add_argument("--labels", required=True, help="polygon labels: .gpkg, .geojson, .shp (anything OGR reads)")
    b.add_argument("--class-field", required=True, help="the labels' field holding the category")
    b.add_argument("--questions", required=True,
                   help="YAML: category -> {explicit: [...], implicit: [...]} (configs/questions/synthearth.yaml)")
    b.add_argument("--out", required=True, help="output folder (created when complete)")
    b.add_argument("--tile", default="512", help="tile side, pixels or metres (default 512)")
    b.add_argument("--overlap", default="0", help="overlap between neighbouring tiles, pixels or metres (default 0)")
    b.add_argument("--bands", default=None, help="1-based bands as R,G,B (or one for grey), as in predict")
    b.add_argument("--split-by", choices=SPLIT_BY, default="blocks",
                   help="blocks (default): square spatial blocks; image: whole images")
    b.add_argument("--block", default=None, help="block side, pixels or metres (default: 4 tiles)")
    b.add_argument("--ratios", default="0.8,0.1,0.1", help=f"{','.join(SPLITS)} shares (default 0.8,0.1,0.1)")
    b.add_argument("--empty-ratio", type=float, default=0.025,
                   help="share of entries that ask about an absent category (default 0.025)")
    b.add_argument("--explicit", type=int, default=1, help="explicit questions per entry (default 1)")
    b.add_argument("--implicit", type=int, default=2, help="implicit questions per entry (default 2)")
    b.add_argument("--max-nodata", type=float, default=0.5,
                   help="skip tiles with more than this share of nodata pixels (default 0.5)")
    b.add_argument("--min-area", type=int, default=16,
                   help="a category covering fewer pixels of a tile is not asked about there (default 16)")
    b.add_argument("--seed", type=int, default=0, help="random seed for splits and questions (default 0)")
    b.set_defaults(func=run_build)
    p.set_defaults(func=lambda args: p.print_help() or 1)


def run_build(args) -> int:
    cfg = BuildConfig(images=args.images, labels=args.labels, class_field=args.class_field,
                      questions=args.questions, out=args.out, tile=args.tile, overlap=args.overlap, bands=args.bands,
                      split_by=args.split_by, block=args.block, ratios=args.ratios, empty_ratio=args.empty_ratio,
                      explicit=args.explicit, implicit=args.implicit, max_nodata=args.max_nodata,
                      min_area=args.min_area, seed=args.seed)
    s = build_dataset(cfg)
    if s.get("already_built"):
        print(f"{args.out}: already holds this dataset (same inputs and options); nothing to do")
    for split, c in s["counts"].items():
        print(f"{split:<6} tiles {c['tiles']:>6}  images {c['images']:>6}  questions {c['questions']:>6}  "
              f"empty {c['empty']:>5}")
    for split, e in s.get("empty_targets", {}).items():
        if e.get("written", 0) < e.get("wanted", 0):
            print(f"{split}: {e['written']} empty-target entries of the {e['wanted']} wanted (--empty-ratio): only "
                  f"{e.get('candidates', 0)} (tile, absent category) pairs away from other splits")
    sk = s["skipped"]["counts"]
    lab = s["labels"]
    print("skipped tiles: " + (", ".join(f"{k} {v}" for k, v in sk.items()) or "none"))
    print(f"labels: {lab['kept']} of {lab['features']} used ({lab['repaired']} repaired, "
          f"{lab['outside_every_image']} outside every image, {lab['dropped_no_class'] + lab['dropped_empty'] + lab['dropped_not_polygon']} dropped)")
    print(f"wrote {args.out} ({s['crs']}); next: think2seg data-stats earthreason:{args.out}")
    return 0
