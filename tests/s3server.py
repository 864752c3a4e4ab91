"""Start a real S3-compatible server (localbucket) on loopback for tests.

localbucket stores buckets as folders and speaks the S3 REST API (path-style
URLs); it does not check credentials or signatures, so tests that need a
signature to be enforced assert on what we sign instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

READY_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class S3Server:
    """A running localbucket.

    Attributes
    ----------
    endpoint_url : str
        ``http://127.0.0.1:<port>``.
    data_root : pathlib.Path
        Directory the server stores buckets in.
    """

    endpoint_url: str
    data_root: Path


#: Ports tried in turn when the server exits at once (its port taken between choice and bind).
PORT_ATTEMPTS = 3


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Poll until something accepts TCP connections on ``port``.

    Raises
    ------
    RuntimeError
        If the process exits first or the deadline passes.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"S3 server exited early with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        # Connection refused returns at once; block on the process briefly instead of spinning.
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.05)
    raise RuntimeError(f"S3 server did not listen on port {port} within {timeout_s} s")


@contextlib.contextmanager
def running_s3_server(data_root: Path) -> Iterator[S3Server]:
    """Run localbucket on a free loopback port for the duration of the block."""
    executable = shutil.which("localbucket", path=os.path.dirname(sys.executable))
    command = [executable] if executable else [sys.executable, "-m", "localbucket"]
    for attempt in range(PORT_ATTEMPTS):
        port = free_port()
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port), str(data_root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port, process)
            break
        except RuntimeError:
            # Another process (a parallel test worker) may have taken the port meanwhile.
            process.kill()
            process.wait()
            if attempt == PORT_ATTEMPTS - 1:
                raise
    try:
        yield S3Server(endpoint_url=f"http://127.0.0.1:{port}", data_root=data_root)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
