"""Test-retest reliability of every measure on the synthetic recapture study.

Usage::

    .venv/bin/python bench/reliability.py [--write]

Runs :func:`imaging.testing.recapture_study.run_study` (6 subjects with different graded skin changes
x 6 recapture conditions: exposure +/-30 %, white-balance shifts, JPEG q70, rescaling 0.7-1.4x,
rotation +/-6 degrees, sensor noise; every photo through ``imaging.analysis.analyze``) and
prints ICC(2,1), SEM and MDC95 per measure, of all skin and of each face region
(:mod:`imaging.reliability`). With ``--write`` the
table is saved to ``imaging/reliability_table.json``, which the backend reads for its MDC flags
(:func:`imaging.reliability.load_reliability_table`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

COMMAND = ".venv/bin/python bench/reliability.py --write"


def build_table() -> dict:
    from imaging.reliability import reliability
    from imaging.testing.recapture_study import CAPTURES, SUBJECTS, run_study
    from imaging.version import ALGORITHM_VERSION

    study = run_study()
    measures = {name: reliability(scores).to_dict() for name, scores in study["scores"].items()}
    # Per region too: a region has fewer pixels than all skin and its own noise, so the progress
    # flags of a region use that region's MDC95.
    regions = {region: {name: reliability(scores).to_dict() for name, scores in by_measure.items()}
               for region, by_measure in study["region_scores"].items()}
    return {
        "algorithm_version": ALGORITHM_VERSION,
        "command": COMMAND,
        "generated_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "design": {
            "subjects": [vars(s) for s in SUBJECTS],
            "captures": [c.name for c in CAPTURES],
            "photos_failing_quality_gate": int((~study["quality_ok"]).sum()),
            "color_references": sorted({r for row in study["color_reference"] for r in row}),
        },
        "measures": measures,
        "regions": regions,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="save the table to imaging/reliability_table.json")
    args = parser.parse_args(argv)
    table = build_table()
    print(f"ICC(2,1) absolute agreement, {len(table['design']['subjects'])} subjects x "
          f"{len(table['design']['captures'])} captures, algorithm {table['algorithm_version']}")
    print(f"{'measure':<30} {'ICC':>6} {'band':>10} {'SD':>9} {'SEM':>9} {'MDC95':>9}")
    for name, r in table["measures"].items():
        print(f"{name:<30} {r['icc']:6.3f} {r['band']:>10} {r['sd']:9.4f} {r['sem']:9.4f} {r['mdc95']:9.4f}")
    from imaging.catalogue import HEADLINE_MEASURES as headline

    print(f"per region, MDC95 (ICC) of {', '.join(headline)}:")
    for region, by_measure in table["regions"].items():
        print(f"  {region:<12} " + "  ".join(
            f"{by_measure[m]['mdc95']:8.4f} ({by_measure[m]['icc']:.3f})" for m in headline))
    print(f"photos failing the quality gate: {table['design']['photos_failing_quality_gate']}; "
          f"colour references: {', '.join(table['design']['color_references'])}")
    if args.write:
        from imaging.reliability import RELIABILITY_TABLE_PATH

        RELIABILITY_TABLE_PATH.write_text(json.dumps(table, indent=2) + "\n")
        print(f"written: {RELIABILITY_TABLE_PATH.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
