"""A local Chroma server (``chroma run``) on a loopback port: for tests, benchmarks, and
for sharing one store between processes on one machine (``memory.url``)."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _chroma_executable() -> str:
    beside = Path(sys.executable).parent / "chroma"
    found = str(beside) if beside.exists() else shutil.which("chroma")
    if not found:
        raise RuntimeError("the `chroma` command is missing: pip install chromadb")
    return found


class LocalChromaServer:
    """``chroma run --host 127.0.0.1 --port P --path DIR`` as a child process.

    >>> with LocalChromaServer(tmp_dir) as server:
    ...     store = ExperienceStore.open({"url": server.url, "embedder": "hashing"})
    """

    def __init__(self, path: str | Path, port: int | None = None, host: str = "127.0.0.1"):
        self.path, self.host = Path(path), host
        self.port = port or free_port(host)
        self.proc: subprocess.Popen | None = None
        self.log_path = self.path.with_name(self.path.name + ".server.log")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> LocalChromaServer:
        self.path.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, ANONYMIZED_TELEMETRY="False")
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [_chroma_executable(), "run", "--host", self.host, "--port", str(self.port), "--path", str(self.path)],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chroma run exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=1):
                    log.info("chroma server up at %s (data in %s)", self.url, self.path)
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"chroma run did not answer at {self.url} within {timeout:.0f}s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def __enter__(self) -> LocalChromaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
