"""``python -m imaging``: JSON Lines output, exit codes, overlays, help text (run as a real process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from imaging.testing import synthetic
from imaging.version import ALGORITHM_VERSION

REPO = Path(__file__).resolve().parents[2]
SIZE = (1134, 1512)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imaging", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("photos")
    photo = synthetic.sharp_phone_photo(SIZE)
    files = {
        "baseline": synthetic.to_jpeg(photo.rgb),
        "follow": synthetic.to_png(synthetic.shift(photo, 25, -15).rgb),
        "broken": synthetic.to_jpeg(photo.rgb)[:2000],
        "text": b"these are not the pixels you are looking for",
    }
    paths = {}
    for name, data in files.items():
        paths[name] = folder / f"{name}.img"
        paths[name].write_bytes(data)
    return paths


def test_analyze_prints_one_contract_object_per_photo(photos, tmp_path):
    overlays = tmp_path / "overlays"
    done = run_cli("analyze", str(photos["follow"]), str(photos["baseline"]), "--baseline", str(photos["baseline"]),
                   "--overlays", str(overlays))
    assert done.returncode == 0, done.stderr
    lines = json_lines(done.stdout)
    assert [line["photo"] for line in lines] == [str(photos["follow"]), str(photos["baseline"])]
    for line in lines:
        assert line["algorithm_version"] == ALGORITHM_VERSION
        assert isinstance(line["quality"]["ok"], bool)
        assert line["color_reference"] in ("colorchecker", "neutral-background", "none")
        assert {"redness", "pigmentation", "texture"} <= set(line["metrics"])
        assert set(line["regions"]) == {"forehead", "left_cheek", "right_cheek", "nose", "chin"}
        assert line["registration"]["converged"] is True
    written = sorted(p.name for p in overlays.iterdir())
    expected = {f"{photos['follow'].name}.{name}.png" for name in
                ("redness", "pigment_spots", "wrinkles", "regions", "before_after")}
    assert expected <= set(written)
    assert (overlays / f"{photos['follow'].name}.regions.png").read_bytes().startswith(b"\x89PNG")


def test_undecodable_photo_gives_error_line_and_exit_1(photos):
    done = run_cli("quality", str(photos["broken"]), str(photos["baseline"]), str(photos["text"]),
                   str(photos["baseline"].with_name("absent.jpg")))
    assert done.returncode == 1
    lines = json_lines(done.stdout)
    assert len(lines) == 4
    assert lines[0]["error"]["code"] == "truncated_image"
    assert lines[1]["quality"]["ok"] is True and "error" not in lines[1]
    assert lines[2]["error"]["code"] == "unsupported_format"
    assert lines[3]["error"]["code"] == "file_not_readable"


def test_quality_with_baseline_adds_baseline_checks(photos):
    done = run_cli("quality", str(photos["follow"]), "--baseline", str(photos["baseline"]))
    assert done.returncode == 0, done.stderr
    (line,) = json_lines(done.stdout)
    assert {"pose_change_deg", "framing_scale_change", "framing_offset"} <= set(line["quality"]["checks"])
    for problem in line["quality"]["problems"]:
        assert set(problem) == {"code", "message", "value", "threshold"}


def test_unusable_baseline_is_reported(photos):
    done = run_cli("analyze", str(photos["follow"]), "--baseline", str(photos["text"]))
    assert done.returncode == 1
    (line,) = json_lines(done.stdout)
    assert line["role"] == "baseline" and line["error"]["code"] == "unsupported_format"


@pytest.mark.parametrize("args", [(), ("analyze",), ("measure", "x.jpg"), ("analyze", "x.jpg", "--bogus")])
def test_usage_errors_exit_2(args):
    done = run_cli(*args)
    assert done.returncode == 2
    assert "usage:" in done.stderr
    assert done.stdout == ""


def test_help_documents_commands_output_and_exit_codes():
    top = run_cli("--help")
    assert top.returncode == 0
    for text in ("analyze", "quality", "JSON", "exit status", "--baseline", "--overlays"):
        assert text in top.stdout + run_cli("analyze", "--help").stdout
    analyze_help = run_cli("analyze", "--help").stdout
    for key in ("color_reference", "redness", "pigmentation", "texture", "forehead", "registration"):
        assert key in analyze_help
    assert run_cli("--version").stdout.strip() == ALGORITHM_VERSION
