"""Fingerprint of every value the imaging library measures, to prove a change leaves them identical.

Usage::

    .venv/bin/python bench/measure_fingerprint.py --write /tmp/before.json     # on the old code
    .venv/bin/python bench/measure_fingerprint.py --compare /tmp/before.json   # on the new code

Builds a fixed set of photos with the test kit (:mod:`imaging.testing.synthetic`, the astronaut portrait;
every builder is seeded) and records, per photo:

- ``analysis``: every value of :meth:`imaging.analysis.AnalysisResult.to_dict` of
  ``analyze(data, baseline=..., want_overlays=True)`` (metrics, regions, quality checks,
  geometry, registration, colour correction details; not ``timings_ms``), the SHA-256 of each
  overlay PNG, of the canonical face pixels and of each region mask;
- ``gate``: the upload quality gate (:func:`imaging.quality.quality_gate`) with the baseline's
  face geometry;
- ``patches``: the research region patches (:func:`imaging.patches.photo_region_patches`):
  box and SHA-256 of the pixels;
- ``sanitised``: SHA-256 of the stored bytes (:func:`imaging.sanitise.sanitise_photo`);

and of the baseline photo, the SHA-256 of its serialised :class:`imaging.analysis.BaselineReference`
(follow-ups are analysed against the reference read back from those bytes, as the backend does).

Photos (1512x2016 portraits at the validation study's exposure, JPEG as a phone stores them,
unless said otherwise): the reference (baseline); the same face rotated 4 degrees, rescaled 0.9x
and shifted, registered to the reference; three graded skin edits (more haemoglobin, more
melanin spots, more fine lines) registered to it; the reference as PNG; a ColorChecker photo
with a warm cast and -20 % exposure; a 1200x2016 photo (downscaling by non-integer factors); a
photo without a face; and three made bad (blurred and lit
from one side; head turned with glare; underexposed).

``--compare OLD.json`` prints the largest absolute difference of every value that differs
(grouped by its path without the photo name) and the overall maximum, and exits 1 when any
numeric value differs by more than ``--tolerance`` (default 1e-9) or any other value (hash,
code, string, missing key) differs at all; 0 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TOLERANCE = 1e-9
#: Photo size of every face photo (width, height): the validation study's.
PHOTO_SIZE = (1512, 2016)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _array_sha(array) -> str:
    import numpy as np

    array = np.ascontiguousarray(array)
    return _sha(f"{array.dtype}{array.shape}".encode() + array.tobytes())


def build_photos() -> dict[str, tuple[bytes, str | None]]:
    """Photo name -> (file bytes, name of its baseline photo or None)."""
    import numpy as np

    from imaging.testing import synthetic
    from imaging.testing.recapture_study import SkinChange, edited_photo

    def jpeg(photo) -> bytes:
        return synthetic.to_jpeg(photo.rgb)

    reference = edited_photo(SkinChange(0.04, 15, 10))
    rng = np.random.default_rng(5)
    wall = np.array([150.0, 132.0, 112.0]) + rng.normal(0.0, 6.0, (900, 1200, 3))
    no_face = np.clip(wall + 0.5, 0, 255).astype(np.uint8)
    # An aspect ratio whose downscaled copies have non-integer scale factors.
    odd_aspect = synthetic.exposure(synthetic.phone_photo((1200, 2016), iod_fraction=0.2), 0.7)
    moved = synthetic.shift(synthetic.rescale(synthetic.rotate(reference, 4.0), 0.9), 40.0, -25.0)
    return {
        "reference": (jpeg(reference), None),
        "followup_rotated_rescaled": (jpeg(moved), "reference"),
        "graded_haemoglobin": (jpeg(edited_photo(SkinChange(0.12, 15, 10))), "reference"),
        "graded_spots": (jpeg(edited_photo(SkinChange(0.04, 60, 10))), "reference"),
        "graded_lines": (jpeg(edited_photo(SkinChange(0.04, 15, 40))), "reference"),
        "reference_png": (synthetic.to_png(reference.rgb), None),
        "colorchecker_cast": (synthetic.colorchecker_photo((1.2, 1.0, 0.8), 0.8), None),
        "no_face": (synthetic.to_png(no_face), None),
        "odd_aspect_1200x2016": (jpeg(edited_photo(SkinChange(0.04, 15, 10), base=odd_aspect)), None),
        "bad_blurred_side_lit": (jpeg(synthetic.one_sided_light(synthetic.blur(reference, 0.01), 0.5)), "reference"),
        "bad_turned_glare": (jpeg(synthetic.glare_spots(synthetic.turn_head(reference, yaw_degrees=25.0))),
                             "reference"),
        "bad_underexposed": (jpeg(synthetic.exposure(reference, 0.15)), None),
    }


def fingerprint() -> dict:
    """Every recorded value, keyed by photo name (see the module docstring)."""
    from imaging.analysis import BaselineReference, analyze, baseline_reference_from
    from imaging.patches import photo_region_patches
    from imaging.quality import quality_gate
    from imaging.sanitise import sanitise_photo

    photos = build_photos()
    references: dict[str, BaselineReference] = {}
    out: dict[str, dict] = {}
    for name, (data, baseline_name) in photos.items():
        baseline = references.get(baseline_name) if baseline_name else None
        result = analyze(data, baseline=baseline, want_overlays=True)
        analysis = result.to_dict()
        analysis.pop("timings_ms")
        analysis["overlay_sha256"] = {k: _sha(v) for k, v in sorted(result.overlays.items())}
        if result.canonical is not None:
            analysis["canonical_sha256"] = _array_sha(result.canonical.rgb)
            analysis["mask_sha256"] = {k: _array_sha(v) for k, v in sorted(result.masks.items())}
        record = {"analysis": analysis}
        gate = quality_gate(data, None if baseline is None else baseline.geometry)
        record["gate"] = gate.to_dict()
        patches = photo_region_patches(data)
        record["patches"] = None if patches is None else {
            region: {"box": list(patch.box), "pixels_sha256": _decoded_png_sha(patch.png)}
            for region, patch in sorted(patches.items())}
        record["sanitised_sha256"] = _sha(sanitise_photo(data).data)
        if baseline_name is None and result.canonical is not None:
            stored = baseline_reference_from(result).to_bytes()
            record["baseline_reference_sha256"] = _sha(stored)
            references[name] = BaselineReference.from_bytes(stored)
        out[name] = record
    return out


def _decoded_png_sha(png: bytes) -> str:
    import io

    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return _array_sha(np.asarray(image))


def flatten(value, path: str = "") -> dict[str, object]:
    """Leaves of nested dicts/lists as ``{"a/b/0": leaf}``."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return {path: value}
    flat: dict[str, object] = {}
    for key, item in items:
        flat.update(flatten(item, f"{path}/{key}" if path else str(key)))
    return flat


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def difference(old, new) -> float:
    """Absolute difference of two leaves: numbers subtract; anything else is 0 if equal, else inf."""
    if _is_number(old) and _is_number(new):
        if math.isnan(old) and math.isnan(new):
            return 0.0
        return abs(float(new) - float(old))
    return 0.0 if old == new else math.inf


def compare(old: dict, new: dict, tolerance: float = TOLERANCE) -> tuple[int, float, dict[str, float]]:
    """Compare two fingerprints.

    Returns
    -------
    (int, float, dict)
        Number of values compared, the largest difference, and per group (path without the photo
        name) the largest difference of the groups where any value differs (``inf`` for a
        non-numeric or missing value).
    """
    flat_old, flat_new = flatten(old), flatten(new)
    missing = object()
    groups: dict[str, float] = defaultdict(float)
    largest = 0.0
    for path in sorted(set(flat_old) | set(flat_new)):
        a, b = flat_old.get(path, missing), flat_new.get(path, missing)
        diff = math.inf if a is missing or b is missing else difference(a, b)
        largest = max(largest, diff)
        if diff > 0:
            group = path.split("/", 1)[1] if "/" in path else path
            groups[group] = max(groups[group], diff)
    return len(set(flat_old) | set(flat_new)), largest, dict(groups)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", metavar="PATH", help="save the fingerprint as JSON")
    parser.add_argument("--compare", metavar="OLD", help="compare with a saved fingerprint; exit 1 if any differs")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE,
                        help=f"largest accepted absolute difference of a number (default {TOLERANCE:g})")
    args = parser.parse_args(argv)
    if not args.write and not args.compare:
        parser.error("give --write PATH, --compare OLD or both")
    start = time.perf_counter()
    current = fingerprint()
    print(f"fingerprint of {len(current)} photos in {time.perf_counter() - start:.0f} s")
    if args.write:
        Path(args.write).write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
        print(f"written: {args.write}")
    if not args.compare:
        return 0
    old = json.loads(Path(args.compare).read_text())
    # A JSON round trip, so both sides hold the same types (tuples become lists).
    count, largest, groups = compare(old, json.loads(json.dumps(current)), args.tolerance)
    for group, diff in sorted(groups.items()):
        print(f"  {group}: max abs difference {diff:.3g}")
    verdict = "identical within" if largest <= args.tolerance else "DIFFERENT beyond"
    print(f"{count} values compared with {args.compare}: max abs difference {largest:.3g}; "
          f"{verdict} {args.tolerance:g}")
    return 0 if largest <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
