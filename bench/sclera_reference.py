"""The whites of the eyes (sclera) as an in-face white reference: does it make absolute skin colour
comparable across photos without a colour chart?

Usage::

    .venv/bin/python bench/sclera_reference.py [--faces ID,ID,...] [--jobs N]

On every portrait of the real-face set (``make faces``), the unchanged scene of the recapture
study (:mod:`imaging.testing.recapture_study`) is captured under each ordinary condition and
analysed as a follow-up of its reference capture. For each capture the mean colour of both cheeks
(CIELAB of the mean linear RGB over the cheek regions, the same skin by registration) is compared
with the reference capture's (CIEDE2000), three ways:

- ``raw``: the photo's own linear sRGB;
- ``pipeline``: after :func:`imaging.colour.estimate_colour_correction` (no chart here, so the
  neutral-background estimate, or none);
- ``sclera``: the photo's linear sRGB divided per channel by its sclera colour and set to a fixed
  level (a von Kries white and exposure normalisation): the sclera is sampled in the canonical frame in a box of
  0.44 x 0.11 IOD around each eye centre, as the brightest quarter of unclipped pixels and, of
  those, the least saturated half (iris, lids and lashes are darker or more coloured, catchlights
  are clipped).

It prints, per capture condition, the median and the worst CIEDE2000 over faces, and overall the
share within 2 (the issue's tolerance for region colour with a chart). The README states the
verdict (section "Absolute colour and in-face references").
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: Sclera sampling box around each canonical eye centre, in IODs (half width, half height).
SCLERA_BOX_IOD = (0.22, 0.055)
WAYS = ("raw", "pipeline", "sclera")
#: Linear level the sclera is normalised to (any fixed value: only differences between captures count).
SCLERA_LEVEL = 0.6


def sclera_rgb(linear: np.ndarray) -> np.ndarray | None:
    """Median linear RGB of the sclera of a canonical face (None when too few pixels qualify)."""
    from imaging.colour_space import linear_luminance
    from imaging.geometry import CANONICAL_EYES, CANONICAL_IOD_PX

    half_w, half_h = (round(f * CANONICAL_IOD_PX) for f in SCLERA_BOX_IOD)
    samples = []
    for cx, cy in CANONICAL_EYES:
        cx, cy = round(cx), round(cy)
        box = linear[cy - half_h: cy + half_h + 1, cx - half_w: cx + half_w + 1].reshape(-1, 3)
        high, low = box.max(axis=1), box.min(axis=1)
        unclipped = high < 0.95
        if unclipped.sum() < 20:
            continue
        luminance = linear_luminance(box)
        saturation = (high - low) / np.maximum(high, 1e-4)
        bright = unclipped & (luminance >= np.percentile(luminance[unclipped], 75))
        samples.append(box[bright & (saturation <= np.percentile(saturation[bright], 50))])
    pixels = np.concatenate(samples) if samples else np.zeros((0, 3), np.float32)
    if len(pixels) < 10:
        return None
    white = np.median(pixels, axis=0)
    return white if white.min() > 1e-3 else None  # a black channel is no white reference


def _cheek_lab(linear: np.ndarray, masks: dict) -> np.ndarray:
    from imaging.colour_space import linear_to_lab

    cheeks = masks["left_cheek"] | masks["right_cheek"]
    return linear_to_lab(linear[cheeks].mean(axis=0).astype(np.float32)[None, None, :])[0, 0]


def _colours(result) -> dict:
    from imaging.colour import apply_colour_correction
    from imaging.colour_space import srgb_to_linear

    linear = srgb_to_linear(result.canonical.rgb)
    white = sclera_rgb(linear)
    return {
        "raw": _cheek_lab(linear, result.masks),
        "pipeline": _cheek_lab(apply_colour_correction(result.canonical.rgb, result.colour_correction), result.masks),
        # Divided by the sclera and set to a fixed level: white balance and exposure both normalised.
        "sclera": None if white is None else _cheek_lab(linear / white * SCLERA_LEVEL, result.masks),
    }


def face_differences(face_id: str) -> dict:
    """{capture name: {way: CIEDE2000 against the reference capture (NaN when not measurable)}}."""
    import colour as colour_science

    from imaging.analysis import analyze, baseline_reference_from
    from imaging.testing import faces, recapture_study

    scene = recapture_study.scene(faces.get(face_id))
    reference = analyze(recapture_study.recapture(scene, recapture_study.REFERENCE))
    if reference.canonical is None:
        return {}
    baseline = baseline_reference_from(reference)
    truth = _colours(reference)
    out = {}
    for capture in recapture_study.CAPTURES[1:]:
        result = analyze(recapture_study.recapture(scene, capture), baseline=baseline)
        if result.canonical is None:
            continue
        colours = _colours(result)
        out[capture.name] = {way: (float(colour_science.delta_E(colours[way], truth[way], method="CIE 2000"))
                                   if colours[way] is not None and truth[way] is not None else float("nan"))
                             for way in WAYS}
    return out


def main(argv=None) -> int:
    from imaging.testing import faces, recapture_study

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", help="comma-separated face ids (default: every portrait)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    faces.fetch()
    ids = args.faces.split(",") if args.faces else [f.id for f in faces.portraits()]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        per_face = dict(zip(ids, pool.map(face_differences, ids), strict=True))
    print(f"CIEDE2000 of the cheeks' mean colour against the reference capture, {len(ids)} faces")
    print("| capture | " + " | ".join(f"{w}: median / worst" for w in WAYS) + " |")
    print("|---|" + "---|" * len(WAYS))
    everything = {w: [] for w in WAYS}
    for capture in recapture_study.CAPTURES[1:]:
        cells = []
        for way in WAYS:
            values = np.array([d[capture.name][way] for d in per_face.values() if capture.name in d])
            values = values[np.isfinite(values)]
            everything[way].extend(values)
            cells.append(f"{np.median(values):.1f} / {values.max():.1f}" if values.size else "-")
        print(f"| {capture.name} | " + " | ".join(cells) + " |")
    for way in WAYS:
        values = np.array(everything[way])
        if not values.size:
            print(f"{way}: no capture measured")
            continue
        print(f"{way}: median {np.median(values):.2f}, 90th percentile {np.percentile(values, 90):.2f}, "
              f"within 2: {100 * np.mean(values <= 2):.0f} % of {values.size} captures")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
