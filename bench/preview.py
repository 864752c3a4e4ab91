"""Preview check speed: p50/p99 of ``POST /me/preview-check``'s work for 640x480 JPEG frames.

Each portrait of the real-face set (:mod:`imaging.testing.faces`) is cropped around its
annotated face box to a 640x480 frame in which the face is about 42 % of the frame height
(as a patient holding the phone at arm's length), encoded as JPEG (q 80, like the app's
frames); every frame is then checked ``--repeat`` times (decode + :func:`imaging.preview.preview_check`,
what the endpoint does besides HTTP). Prints wall-clock p50/p99 (what the phone waits for,
which a busy machine inflates), the process CPU time, and how many frames were
called ready.

    python -m bench.preview [--repeat 5]
"""

from __future__ import annotations

import argparse
import io
import os
import time

import numpy as np
from PIL import Image

from imaging.decode import decode_image
from imaging.preview import PREVIEW_LONG_SIDE, preview_check
from imaging.testing import faces

FRAME_SIZE = (640, 480)
FACE_HEIGHT_FRACTION = 0.42


def frame_of(entry: faces.FaceImage, size: tuple[int, int] = FRAME_SIZE, face_fraction: float = FACE_HEIGHT_FRACTION,
             quality: int = 80) -> bytes:
    """A camera-like frame of a real face: cropped around the face box, resized, JPEG."""
    image = Image.fromarray(faces.load(entry.id))
    x, y, w, _ = entry.face_box
    crop_h = w / face_fraction
    crop_w = crop_h * size[0] / size[1]
    cx, cy = x + w / 2, entry.face_box[1] + entry.face_box[3] / 2
    box = tuple(int(round(v)) for v in (cx - crop_w / 2, cy - crop_h / 2, cx + crop_w / 2, cy + crop_h / 2))
    buffer = io.BytesIO()
    image.crop(box).resize(size, Image.LANCZOS).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="checks per frame (default 5)")
    args = parser.parse_args(argv)
    faces.fetch()
    frames = [(entry.id, frame_of(entry)) for entry in faces.portraits()]
    for _, data in frames[:3]:  # warm up: cascade loading, first-call costs
        preview_check(decode_image(data, min_long_side=PREVIEW_LONG_SIDE).rgb)
    times, cpu, ready = [], [], 0
    for _, data in frames:
        for _ in range(args.repeat):
            started, started_cpu = time.perf_counter(), time.process_time()
            result = preview_check(decode_image(data, min_long_side=PREVIEW_LONG_SIDE).rgb)
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        ready += result.ready
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"preview check, {len(frames)} real faces x {args.repeat}, {FRAME_SIZE[0]}x{FRAME_SIZE[1]} JPEG "
          f"({os.cpu_count()} CPUs, load average {load:.1f}):")
    print(f"  p50 {np.percentile(times, 50):.1f} ms   p99 {np.percentile(times, 99):.1f} ms   "
          f"max {max(times):.1f} ms   ready {ready}/{len(frames)}")
    # CPU time of the process (all its threads): what the check costs when the machine is not shared.
    print(f"  CPU time: p50 {np.percentile(cpu, 50):.1f} ms   p99 {np.percentile(cpu, 99):.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
