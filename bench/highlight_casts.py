"""How neutral the brightest things stay under coloured light: the figures behind
``imaging.quality.NEUTRAL_HIGHLIGHT_SHARE``.

    .venv/bin/python -m bench.highlight_casts

Every portrait of the real-face set, as it is and as the recapture study's scene, under nine
casts (per-channel gains in linear light): of the photos whose highlights read coloured
(``highlight_chroma`` without the fallback above its limit), the largest share of neutral ones
among the brightest unclipped pixels; and that share on each photo without a cast whose
highlights read coloured (under white light: the fallback's cases). Needs the face set
(``make faces``).
"""

from __future__ import annotations

import argparse

import numpy as np

#: Casts: warm, cool, green, magenta and strong ones (gains R, G, B in linear light).
CASTS = ((1.0, 1.25, 0.7), (0.55, 1.0, 1.7), (1.0, 0.7, 0.35), (0.8, 1.3, 0.8), (1.6, 1.0, 0.5),
         (0.7, 1.0, 1.5), (1.3, 1.0, 0.7), (1.0, 1.0, 1.4), (1.2, 0.9, 1.2))


def neutral_share(rgb: np.ndarray) -> float:
    """Share of the brightest unclipped pixels that are neutral (NaN when too few are unclipped)."""
    from imaging.quality import brightest_unclipped, is_neutral

    highlights = brightest_unclipped(rgb)
    return float("nan") if highlights is None else float(is_neutral(highlights[0]).mean())


def main(argv=None) -> int:
    from imaging.quality import NEUTRAL_HIGHLIGHT_SHARE, THRESHOLDS, highlight_chroma
    from imaging.testing import faces, made_bad, recapture_study, synthetic

    argparse.ArgumentParser(prog="python -m bench.highlight_casts", description=__doc__.splitlines()[0]).parse_args(argv)
    faces.fetch()
    limit = THRESHOLDS["highlight_chroma_max"]
    coloured_under_casts: list[tuple[float, str]] = []
    coloured_without_cast: list[tuple[float, str]] = []
    for entry in faces.portraits():
        for kind, photo in (("photo", made_bad.face_photo(entry)), ("scene", recapture_study.scene(entry))):
            if highlight_chroma(photo.rgb) > limit:
                coloured_without_cast.append((neutral_share(photo.rgb), f"{entry.id} {kind}"))
            for gains in CASTS:
                cast = synthetic.white_balance(photo, gains).rgb
                if highlight_chroma(cast) > limit:
                    coloured_under_casts.append((neutral_share(cast), f"{entry.id} {kind} x{gains}"))
    worst = max(coloured_under_casts)
    print(f"{len(coloured_under_casts)} cast photos read coloured (> {limit:g}); largest neutral share "
          f"{worst[0]:.3f} ({worst[1]}); fallback from {NEUTRAL_HIGHLIGHT_SHARE:g}")
    print(f"{len(coloured_without_cast)} photos without a cast read coloured:")
    for share, name in sorted(coloured_without_cast, reverse=True):
        print(f"  {name:40s} neutral share {share:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
