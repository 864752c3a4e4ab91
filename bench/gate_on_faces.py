"""The quality gate on the real-face set and its made-bad versions: per photo kind, how many
passed, how many got the right code, and which got a wrong one.

    .venv/bin/python -m bench.gate_on_faces [--verbose]

Needs the face set (``make faces``). See :mod:`imaging.testing.made_bad` for the cases.
"""

from __future__ import annotations

import argparse
import time


def main(argv=None) -> int:
    from imaging.testing import faces, made_bad

    parser = argparse.ArgumentParser(prog="python -m bench.gate_on_faces", description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="print every case's codes and key checks")
    args = parser.parse_args(argv)
    faces.fetch()
    start = time.perf_counter()
    outcomes = made_bad.evaluate()
    seconds = time.perf_counter() - start
    if args.verbose:
        for o in outcomes:
            checks = o.report.checks
            keys = ("face_score", "blur_percent_of_face_width", "fine_texture", "skin_hue_deg", "skin_chroma", "highlight_chroma",
                    "skin_lightness_low", "yaw_deg", "pitch_deg", "roll_deg", "mouth_width_change", "mouth_open_change")
            values = " ".join(f"{k}={checks[k].value:.2f}" for k in keys if k in checks)
            print(f"{'  ' if o.right else 'XX'} {o.case.kind:15s} {o.case.image_id:26s} {'/'.join(o.codes):40s} {values}")
    print(made_bad.summary_table(outcomes), end="")
    print(f"\n{len(outcomes)} gate runs in {seconds:.1f} s ({1000 * seconds / len(outcomes):.0f} ms each, "
          "including JPEG encode/decode)")
    return 0 if all(o.right for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
