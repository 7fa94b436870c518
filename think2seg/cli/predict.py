"""``think2seg predict``: ask questions about your own image (GeoTIFF or any GDAL raster), any size."""

from __future__ import annotations

import argparse

from think2seg.cli.options import add_segmenter
from think2seg.core.errors import CLIError
from think2seg.predict import PredictConfig, load_questions, predict
from think2seg.predict.run import DEFAULT_STRATEGY, STRATEGIES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="ask questions about your own image: masks (GeoTIFF when georeferenced), overlays, JSON, GeoPackage + GeoJSON",
        description="Segment what a question asks for in IMAGE. Large scenes are tiled with overlap and merged "
        "across the seams; several questions share one read per tile and one segmenter embedding per tile. "
        "Writes OUT/qK.mask.tif (or .png when IMAGE has no geotransform), OUT/qK.overlay.png, "
        "OUT/predictions.json and, with --vector, OUT/qK.gpkg (the image's CRS, exact areas) and OUT/qK.geojson "
        "(RFC 7946: WGS 84 lon/lat; only when IMAGE has a CRS). See docs/predict.md.",
    )
    p.add_argument("image", help="the image: GeoTIFF or any raster GDAL reads (PNG, JPEG, ...)")
    p.add_argument("--question", action="append", default=None, help="a question (repeat for several)")
    p.add_argument("--questions", default=None, metavar="FILE", help="a file of questions, one a line")
    p.add_argument("--prompter", default="tiny", help="tiny | tiny:/path | hf:/path/or/hub-id | oracle (needs --truth)")
    add_segmenter(p)

    p.add_argument("--strategy", default=DEFAULT_STRATEGY, choices=STRATEGIES,
                   help="tiles: ask every tile (empty answers allowed); overview: ask the downsampled scene once; "
                   "refine: the overview picks the tiles to ask")
    p.add_argument("--tile", type=int, default=None, help="tile side in image pixels (default: the prompter's input, >= 256)")
    p.add_argument("--overlap", type=int, default=None, help="tile overlap in pixels (default: tile / 4)")
    p.add_argument("--bands", default=None, help="1-based R,G,B band numbers (or one band for grey), e.g. 4,3,2")
    p.add_argument("--vector", nargs="?", const="map", default=None, choices=["map", "pixel"],
                   help="also write polygons: map (default; needs a geotransform): OUT/qK.gpkg in the image's CRS and "
                   "OUT/qK.geojson in WGS 84; pixel: OUT/qK.gpkg in pixel coordinates")
    p.add_argument("--truth", default=None, metavar="MASK", help="a mask raster aligned with IMAGE (for the oracle prompter)")
    p.add_argument("--batch-tiles", type=int, default=8, help="tiles read and prompted together")
    p.add_argument("--overlay-side", type=int, default=1024, help="long side of the overlay PNG")
    p.add_argument("--out", required=True, help="output directory (created)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        questions = load_questions(args.question, args.questions)
        summary = predict(PredictConfig(
            image=args.image, questions=questions, out=args.out, prompter=args.prompter,
            segmenter=args.segmenter, strategy=args.strategy, tile=args.tile, overlap=args.overlap,
            bands=args.bands, vector=args.vector, truth=args.truth, batch_tiles=args.batch_tiles,
            overlay_side=args.overlay_side,
        ))
    except ValueError as e:
        raise CLIError(str(e)) from e
    for q in summary["questions"]:
        print(f"{q['question']!r}: {q['mask_pixels']} px -> {q['mask']}{vectors_text(q['vectors'])}")
    print(f"wrote {args.out}/predictions.json ({summary['tiles_asked']} of {summary['n_tiles']} tiles asked, "
          f"{summary['seconds']} s)")
    return 0


def vectors_text(vectors: dict | None) -> str:
    """``"; polygons: q1.gpkg (EPSG:32633), q1.geojson (RFC 7946, WGS 84 lon/lat)"`` or the reason for no GeoJSON."""
    if not vectors:
        return ""
    parts = [f"{vectors['gpkg']} ({vectors['space']})"]
    if vectors["geojson"]:
        parts.append(f"{vectors['geojson']} (RFC 7946, WGS 84 lon/lat)")
    return "; polygons: " + ", ".join(parts) + (f"; {vectors['note']}" if vectors["note"] else "")
