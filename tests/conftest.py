from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_bench(name: str):
    """A script of ``bench/`` as a module (they are not a package), to test its parts."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_cli(*args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``steve ...`` in a subprocess, as a user would."""
    env = dict(os.environ, PYTHONHASHSEED="random", COLUMNS="200")
    proc = subprocess.run([sys.executable, "-m", "steve.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"steve {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def crafter_env():
    import envs

    env = envs.make("crafter", max_steps=10000)
    yield env
    env.close()
