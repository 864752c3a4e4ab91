"""The recapture study on real faces: per-face figures and the published reliability table.

Usage::

    .venv/bin/python bench/reliability.py [--faces ID,ID,...] [--jobs N] [--cache DIR] [--write]

Runs :func:`imaging.testing.recapture_study.run_face` on every portrait of the real-face set
(``imaging/testing/FACES.md``; ``make faces`` fetches it), or on the faces named: graded
redness, pigment spots and fine lines added to each face, each photo re-captured under 16
ordinary conditions and analysed as a follow-up of the face's baseline through
``imaging.analysis.analyze``. Prints, per face and per headline measure, the lowest Spearman
rho with the grade over captures, the SNR of a 4-grade change against the recapture SD, the
cross-talk and ICC(2,1) / MDC95; then the captures the pipeline itself left out as not
comparable and the reliability table.

With ``--write`` the table (ICC(2,1), SEM, MDC95 per measure: all skin, each region, and per
Fitzpatrick group) is saved to ``imaging/reliability_table.json``, which the backend's MDC flags
read (:func:`imaging.reliability.load_reliability_table`). ``--cache DIR`` keeps each face's
analysed values (pickle) so a second run only re-tabulates. Takes about 1.5 min per face per core.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import pickle
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

COMMAND = ".venv/bin/python bench/reliability.py --jobs 2 --write"


def _run(face_id: str, cache: str | None):
    from imaging.testing import faces, recapture_study

    path = None if cache is None else Path(cache) / f"{face_id}.pkl"
    if path is not None and path.exists():
        with path.open("rb") as handle:
            run = pickle.load(handle)
        if (getattr(run, "algorithm_version", None), getattr(run, "design_version", None)) == (
                _version(), recapture_study.DESIGN_VERSION):
            return run, 0.0
    start = time.perf_counter()
    run = recapture_study.run_face(faces.get(face_id))
    run.algorithm_version = _version()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            pickle.dump(run, handle)
    return run, time.perf_counter() - start


def _version() -> str:
    from imaging.version import ALGORITHM_VERSION

    return ALGORITHM_VERSION


def run_faces(face_ids, jobs: int = 1, cache: str | None = None) -> list:
    """FaceRun of every face (in the order given), analysed on ``jobs`` processes."""
    if jobs <= 1:
        return [_run(f, cache)[0] for f in face_ids]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return [run for run, _ in pool.map(_run, face_ids, [cache] * len(face_ids))]


def _reliability_entry(matrix):
    """ICC(2,1)/SEM/MDC95 of a subjects x captures matrix: subjects with no comparable capture are
    dropped, then captures missing for more than a fifth of the others, then subjects with any
    capture missing."""
    import numpy as np

    from imaging.reliability import reliability

    matrix = np.asarray(matrix, float)
    matrix = matrix[np.isfinite(matrix).any(axis=1)]  # faces the gate refused in every capture
    if matrix.size == 0:
        return None
    keep_cols = np.isfinite(matrix).mean(axis=0) >= 0.8
    matrix = matrix[:, keep_cols]
    matrix = matrix[np.isfinite(matrix).all(axis=1)]
    if matrix.shape[0] < 2 or matrix.shape[1] < 2:
        return None
    return reliability(matrix).to_dict()


def build_table(runs, rows=None, command: str | None = None) -> dict:
    """The reliability table of the study (layout read by imaging.reliability.load_reliability_table)."""
    from imaging.catalogue import FITZPATRICK_GROUPS, REGION_NAMES, STUDIED_MEASURES
    from imaging.testing import recapture_study as study

    def section(selected, region):
        out = {}
        for measure in STUDIED_MEASURES:
            entry = _reliability_entry(study.pooled_scores(selected, measure, region))
            if entry is not None:
                out[measure] = entry
        return out

    groups = {}
    for group in sorted(set(FITZPATRICK_GROUPS.values())):
        selected = [r for r in runs if FITZPATRICK_GROUPS.get(r.fitzpatrick) == group]
        if selected:
            groups[group] = {"all_skin": section(selected, "all_skin"),
                             **{region: section(selected, region) for region in REGION_NAMES}}
    return {
        "algorithm_version": _version(),
        "command": command or COMMAND,
        "generated_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "design": {
            "version": study.DESIGN_VERSION,
            "faces": [{"id": r.face_id, "fitzpatrick": r.fitzpatrick, **_sharpening_entry(r.sharpening)}
                      for r in runs],
            "captures": [c.name for c in study.CAPTURES],
            "grades": list(study.GRADES),
            "changes_per_grade": {"haemoglobin_od": study.HAEMOGLOBIN_PER_GRADE, "spots": study.SPOTS_PER_GRADE,
                                  "lines": study.LINES_PER_GRADE},
            "subjects": "every (face, grade of the measure's own change); captures as raters",
        },
        "per_face": [{k: ((round(v, 4) if math.isfinite(v) else None) if isinstance(v, float) else v)
                      for k, v in row.items()}
                     for row in (rows if rows is not None else per_face_rows(runs))],
        "measures": section(runs, "all_skin"),
        "regions": {region: section(runs, region) for region in REGION_NAMES},
        "fitzpatrick_groups": groups,
    }


def _sharpening_entry(sharpening) -> dict:
    """The gate's blur reading of a face's scene (% of the face width, None when no face was found)
    and the unsharp amount it got (``recapture_study.sharpen_scene``)."""
    if sharpening is None:
        return {}

    def reading(value: float) -> float | None:
        return round(value, 3) if math.isfinite(value) else None

    return {"scene_blur_percent": reading(sharpening.blur_before), "scene_sharpening": sharpening.amount,
            "scene_blur_percent_sharpened": reading(sharpening.blur_after)}


def per_face_rows(runs, measures=None) -> list[dict]:
    """One row per face and headline measure with the figures of recapture_study.face_statistics."""
    from imaging.catalogue import HEADLINE_MEASURES
    from imaging.testing import recapture_study as study

    rows = []
    for run in runs:
        for measure in measures or HEADLINE_MEASURES:
            stats = study.face_statistics(run, measure)
            rows.append({"face": run.face_id, "fitzpatrick": run.fitzpatrick, "measure": measure, **stats})
    return rows


def passes(row: dict) -> bool:
    """Whether a face x measure row meets the bar (rho, SNR, cross-talk)."""
    from imaging.testing import recapture_study as study

    return (row["rho"] >= study.BAR_MIN_RHO and row["snr"] >= study.BAR_MIN_SNR
            and row["cross_talk"] <= study.BAR_MAX_CROSS_TALK)


def print_report(runs, table: dict) -> None:
    from imaging.catalogue import HEADLINE_MEASURES
    from imaging.testing import recapture_study as study

    rows = per_face_rows(runs)
    print(f"Recapture study, algorithm {table['algorithm_version']}: {len(runs)} faces x "
          f"{len(table['design']['captures'])} captures x grades {table['design']['grades']}")
    print(f"bar: rho >= {study.BAR_MIN_RHO}, SNR >= {study.BAR_MIN_SNR}, "
          f"cross-talk <= {study.BAR_MAX_CROSS_TALK} (every face)")
    header = f"{'face':<26} {'F':>2} " + " ".join(f"| {m:<12} {'rho':>5} {'SNR':>6} {'xtalk':>5} {'ICC':>5} {'MDC95':>6}"
                                                  for m in HEADLINE_MEASURES)
    print(header)
    by_face = {}
    for row in rows:
        by_face.setdefault((row["face"], row["fitzpatrick"]), {})[row["measure"]] = row
    for (face, fitz), entries in by_face.items():
        cells = []
        for m in HEADLINE_MEASURES:
            r = entries[m]
            mark = " " if passes(r) else "*"
            cells.append(f"| {mark}{'':<11} {r['rho']:5.2f} {r['snr']:6.1f} {r['cross_talk']:5.2f} "
                         f"{r['icc']:5.2f} {r['mdc95']:6.2f}")
        print(f"{face:<26} {fitz:>2} " + " ".join(cells))
    print("(* = below the bar)")
    for m in HEADLINE_MEASURES:
        sel = [r for r in rows if r["measure"] == m]
        ok = sum(passes(r) for r in sel)
        snrs = sorted(r["snr"] for r in sel if math.isfinite(r["snr"]))
        print(f"{m:<13} faces meeting the bar: {ok}/{len(sel)}; SNR min {snrs[0]:.1f} median "
              f"{snrs[len(snrs) // 2]:.1f}; worst cross-talk {max(r['cross_talk'] for r in sel):.2f}; "
              f"lowest rho {min(r['rho'] for r in sel):.2f}")
    left = {}
    for r in rows:
        for capture in r["left_out"]:
            left[capture] = left.get(capture, 0) + 1
    print("captures left out as not comparable (face x headline count): "
          + (", ".join(f"{c} {n}" for c, n in sorted(left.items())) or "none"))
    print(f"{'MDC95 (ICC) all skin':<26} " + "  ".join(
        f"{m} {table['measures'][m]['mdc95']:.2f} ({table['measures'][m]['icc']:.2f})"
        for m in HEADLINE_MEASURES if m in table["measures"]))
    for group, sections in table["fitzpatrick_groups"].items():
        print(f"  Fitzpatrick {group:<12} " + "  ".join(
            f"{m} {sections['all_skin'][m]['mdc95']:.2f} ({sections['all_skin'][m]['icc']:.2f})"
            for m in HEADLINE_MEASURES if m in sections["all_skin"]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", help="comma-separated face ids (default: every portrait of the set)")
    parser.add_argument("--jobs", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--cache", help="folder keeping each face's analysed values")
    parser.add_argument("--write", action="store_true", help="save the table to imaging/reliability_table.json")
    args = parser.parse_args(argv)
    from imaging.testing import faces

    faces.fetch()
    ids = args.faces.split(",") if args.faces else [e.id for e in faces.portraits()]
    start = time.perf_counter()
    runs = run_faces(ids, args.jobs, args.cache)
    # The command as run, without the local cache folder (what someone else would type).
    shown = [f"--faces {','.join(ids)}"] if args.faces else []
    shown += [f"--jobs {args.jobs}"] + (["--write"] if args.write else [])
    table = build_table(runs, command=".venv/bin/python bench/reliability.py " + " ".join(shown))
    print_report(runs, table)
    print(f"study time {time.perf_counter() - start:.0f} s on {args.jobs} process(es)")
    if args.write:
        from imaging.reliability import RELIABILITY_TABLE_PATH

        RELIABILITY_TABLE_PATH.write_text(json.dumps(table, indent=2) + "\n")
        print(f"written: {RELIABILITY_TABLE_PATH.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
