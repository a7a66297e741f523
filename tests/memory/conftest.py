"""Fixtures of the memory tests: small stores (hashing embedder), a Chroma server on a
free loopback port for the whole session, and a runner for child Python processes."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from memory.synthetic import Generator

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def gen() -> Generator:
    return Generator(seed=7)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "memory"


@pytest.fixture
def store(store_path: Path):
    from memory import ExperienceStore

    s = ExperienceStore.open(store_path, embedder="hashing")
    yield s
    s.close()


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """``chroma run --host 127.0.0.1 --port P --path TMP``, stopped at the end of the session."""
    from memory.server import LocalChromaServer

    server = LocalChromaServer(tmp_path_factory.mktemp("chroma") / "data").start()
    yield server
    server.stop()


@pytest.fixture
def server_cfg(chroma_server) -> dict:
    """A fresh store on the shared server: its own namespace."""
    return {"url": chroma_server.url, "embedder": "hashing", "namespace": "t" + uuid.uuid4().hex[:10]}


def run_python(code: str, *args: str, timeout: float = 120, **popen) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), ANONYMIZED_TELEMETRY="False")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env, **popen)


def spawn_python(code: str, *args: str, **popen) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), ANONYMIZED_TELEMETRY="False")
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=env, text=True, **popen)
