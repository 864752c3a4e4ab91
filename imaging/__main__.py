"""Command line: ``python -m imaging {analyze,quality} PHOTO...`` (see ``--help``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from imaging.errors import ImageError

EXIT_OK = 0
EXIT_UNREADABLE_PHOTO = 1
EXIT_USAGE = 2

_DESCRIPTION = """\
skintrack imaging: measure redness, pigmentation and texture from face photos.

Commands:
  analyze   full analysis: quality gate, colour normalisation, face regions and measures
  quality   the quality gate only (fast: reduced-scale decode), as the phone app gets it

Each command prints ONE JSON OBJECT PER PHOTO PER LINE (JSON Lines) on stdout, in the order
the photos were given, with the photo's path under "photo". A photo that cannot be read or
decoded yields {"photo": ..., "error": {"code": ..., "message": ...}} and the exit status 1;
the other photos are still processed.

Codes of refused photos: empty_image, unsupported_format, truncated_image, corrupt_image,
too_many_pixels, animated_image, greyscale_image, unsupported_colour, and file_not_readable
for a path that cannot be read.
"""

_EPILOG = """\
exit status:
  0  every photo was decoded (even if its quality gate failed: see "quality"."ok")
  1  at least one photo could not be read or decoded (its line holds "error")
  2  usage error (unknown command or option, missing arguments)

examples:
  python -m imaging analyze visit1.jpg
  python -m imaging analyze week4.heic week8.jpg --baseline visit1.jpg --overlays out/
  python -m imaging quality selfie.jpg
"""

_ANALYZE_HELP = """\
Full analysis of each PHOTO. Output per photo (JSON keys):
  quality          {"ok", "problems": [{"code","message","value","threshold"}], "checks"}
  color_reference  "colorchecker" | "neutral-background" | "none": what colour was normalised to
  redness_reference  "forehead" | "chin" | null: the region redness is a contrast against
                   (the chin when the forehead is hidden; with --baseline, the baseline's)
  algorithm_version
  metrics          all measured skin: headline "redness", "pigmentation", "texture" (each rises
                   with more of its kind of change) and details (a_star, erythema_index,
                   haemoglobin_density, red_area_fraction, delta_a_star, l_star, b_star, ita_deg,
                   melanin_index, melanin_density, spot_count, spot_area_fraction,
                   melanin_spread, roughness, wrinkle_density_mm_per_cm2, pore_density_per_cm2,
                   glcm {IBSI features}); null when no face was found
  regions          the same per region: forehead, left_cheek, right_cheek, nose, chin
                   (subject's left/right)
  geometry         face box, eye centres, mouth (px of the upright photo), roll/yaw/pitch (deg)
  registration     with --baseline: ECC registration to the baseline (converged, correlation,
                   shift_px, rotation_deg); null otherwise
  timings_ms       wall time per pipeline stage
A photo that fails the quality gate is still measured when a face was found (quality.ok is
false: treat its values as unreliable). See README.md "Imaging measures" for every formula.
"""


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m imaging",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the measurement algorithm version and exit")
    commands = parser.add_subparsers(dest="command", metavar="{analyze,quality}")

    analyze = commands.add_parser(
        "analyze", help="full analysis of each photo", description=_ANALYZE_HELP,
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    analyze.add_argument("photos", nargs="+", metavar="PHOTO", help="JPEG, PNG, WebP or HEIC/HEIF file")
    analyze.add_argument("--baseline", metavar="PHOTO",
                         help="the patient's baseline photo: each PHOTO is registered to it so the same skin is "
                              "measured, and its pose/framing is compared with it")
    analyze.add_argument("--overlays", metavar="DIR", type=Path,
                         help="write PNG overlays to DIR as <photo name>.<overlay>.png (redness, pigment_spots, "
                              "wrinkles, regions; before_after with --baseline); created if missing")

    quality = commands.add_parser(
        "quality", help="quality gate only (fast)",
        description="Run only the quality gate on each PHOTO (reduced-scale decode, as at upload). "
                    'Output per photo: {"photo", "quality": {"ok", "problems", "checks"}}.',
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    quality.add_argument("photos", nargs="+", metavar="PHOTO", help="JPEG, PNG, WebP or HEIC/HEIF file")
    quality.add_argument("--baseline", metavar="PHOTO",
                         help="the patient's baseline photo: adds the pose and framing comparison checks")
    return parser


class _PhotoFailed(Exception):
    """A photo could not be read or decoded; carries the JSON error object."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.error = {"code": code, "message": message}


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise _PhotoFailed("file_not_readable", f"Cannot read the file: {exc.strerror or exc}.") from None


def _emit(record: dict) -> None:
    sys.stdout.write(json.dumps(record, allow_nan=False) + "\n")
    sys.stdout.flush()


def _run_each(paths: list[str], handle) -> int:
    """Call ``handle(path, data) -> dict`` per photo, print a line each, return the exit status."""
    status = EXIT_OK
    for path in paths:
        try:
            record = handle(path, _read(path))
        except (_PhotoFailed, ImageError) as exc:
            record, status = {"error": _error_of(exc)}, EXIT_UNREADABLE_PHOTO
        _emit({"photo": path, **record})
    return status


def _write_overlays(directory: Path, photo_path: str, overlays: dict[str, bytes]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    stem = Path(photo_path).name
    for name, png in overlays.items():
        (directory / f"{stem}.{name}.png").write_bytes(png)


def _error_of(exc: Exception) -> dict:
    """JSON error object of a photo that could not be used."""
    if isinstance(exc, _PhotoFailed):
        return exc.error
    if isinstance(exc, ImageError):
        return {"code": exc.code, "message": exc.message}
    # The only other refusal: a baseline without a face (nothing to register to).
    return {"code": "no_face", "message": str(exc)}


def _baseline_failure(path: str, exc: Exception) -> int:
    _emit({"photo": path, "role": "baseline", "error": _error_of(exc)})
    return EXIT_UNREADABLE_PHOTO


def _analyze(args) -> int:
    from imaging.analysis import analyze, baseline_reference_from

    baseline = None
    if args.baseline:
        try:
            baseline = baseline_reference_from(_read(args.baseline))
        except (ImageError, _PhotoFailed, ValueError) as exc:
            return _baseline_failure(args.baseline, exc)

    def handle(path: str, data: bytes) -> dict:
        result = analyze(data, baseline=baseline, want_overlays=args.overlays is not None)
        if args.overlays is not None:
            _write_overlays(args.overlays, path, result.overlays)
        return result.to_dict()

    return _run_each(args.photos, handle)


def _quality(args) -> int:
    from imaging.analysis import locate_face, quality_to_dict
    from imaging.decode import decode_image
    from imaging.quality import GATE_DECODE_LONG_SIDE, quality_gate

    baseline_geometry = None
    if args.baseline:
        try:
            decoded = decode_image(_read(args.baseline), min_long_side=GATE_DECODE_LONG_SIDE)
        except (ImageError, _PhotoFailed) as exc:
            return _baseline_failure(args.baseline, exc)
        baseline_geometry = locate_face(decoded.rgb)
        if baseline_geometry is None:
            return _baseline_failure(args.baseline, ValueError("no face was found in the baseline photo"))

    def handle(path: str, data: bytes) -> dict:
        return {"quality": quality_to_dict(quality_gate(data, baseline_geometry))}

    return _run_each(args.photos, handle)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (argparse exits with 2 on usage errors)."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from imaging.version import ALGORITHM_VERSION

        print(ALGORITHM_VERSION)
        return EXIT_OK
    if args.command == "analyze":
        return _analyze(args)
    if args.command == "quality":
        return _quality(args)
    parser.print_usage(sys.stderr)
    sys.stderr.write("python -m imaging: error: a command is required (analyze or quality)\n")
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
