"""A killed writer, a second embedded writer, foreign and corrupt directories, embedders."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time

import pytest
from typer.testing import CliRunner

from memory import ExperienceStore
from memory.errors import (CorruptStoreError, EmbedderMismatchError, ForeignStoreError, StoreLockedError,
                           StoreNotFoundError)
from steve.memory_cli import app

from .conftest import spawn_python

KILLED = """
import logging, sys
log = logging.getLogger("memory.store")
log.setLevel(logging.DEBUG)
log.addHandler(logging.StreamHandler(sys.stderr))
from memory import ExperienceStore
from memory.synthetic import Generator
exps = Generator(seed=3).experiences(30000)
print("generated", file=sys.stderr, flush=True)
with ExperienceStore.open(sys.argv[1], embedder="hashing", write_batch_size=1000) as s:
    s.add_experiences(exps)
"""

HOLDER = """
import sys
from memory import ExperienceStore
with ExperienceStore.open(sys.argv[1], embedder="hashing") as s:
    print("open", flush=True)
    sys.stdin.read()
"""


def test_killed_mid_batch_leaves_a_store_that_opens_and_checks(store_path):
    proc = spawn_python(KILLED, str(store_path), stderr=-1)
    written = 0
    while written < 3:
        line = proc.stderr.readline()
        assert line, "the writer ended before writing"
        written += line.startswith("wrote 1000 experiences")
    time.sleep(random.uniform(0.0, 0.4))  # somewhere inside a later chunk
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    result = CliRunner().invoke(app, ["--memory", str(store_path), "check"])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output
    with ExperienceStore.open(store_path, embedder="auto") as s:
        st = s.stats()
        assert 3000 <= st.experiences < 30000 and st.experiences % 1000 == 0  # whole chunks only
        assert st.recorded == st.experiences
        assert s.check().ok


def test_second_process_is_refused_clearly(store_path):
    holder = spawn_python(HOLDER, str(store_path), stdin=-1, stdout=-1)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreLockedError, match=f"pid {holder.pid}.*memory.url"):
            ExperienceStore.open(store_path, embedder="hashing")
        result = CliRunner().invoke(app, ["--memory", str(store_path), "stats"])
        assert result.exit_code == 2 and "open in another process" in result.output
        assert "Traceback" not in result.output
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    ExperienceStore.open(store_path, embedder="hashing").close()


def test_foreign_and_corrupt_directories(tmp_path):
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(ForeignStoreError, match="is not a memory store"):
        ExperienceStore.open(foreign, embedder="hashing")
    assert (foreign / "cat.jpg").exists() and not (foreign / "chroma.sqlite3").exists()

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "chroma.sqlite3").write_bytes(os.urandom(4096))
    with pytest.raises(CorruptStoreError, match="not an SQLite database"):
        ExperienceStore.open(corrupt, embedder="hashing")

    import chromadb
    from chromadb.config import Settings

    other = tmp_path / "other_app"
    client = chromadb.PersistentClient(str(other), settings=Settings(anonymized_telemetry=False))
    client.create_collection("documents", embedding_function=None)
    client.close()
    with pytest.raises(ForeignStoreError, match="Chroma database but not a memory store"):
        ExperienceStore.open(other, embedder="hashing")

    with pytest.raises(StoreNotFoundError, match="no memory store at"):
        ExperienceStore.open(tmp_path / "absent", create=False)


def test_truncated_database_is_reported(store_path, gen):
    with ExperienceStore.open(store_path, embedder="hashing") as s:
        s.add_experiences(gen.experiences(50))
    db = store_path / "chroma.sqlite3"
    db.write_bytes(db.read_bytes()[:8192])
    with pytest.raises((CorruptStoreError, sqlite3.DatabaseError)):
        ExperienceStore.open(store_path, embedder="hashing")
    result = CliRunner().invoke(app, ["--memory", str(store_path), "stats"])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_embedder_mismatch_is_refused(tmp_path):
    ExperienceStore.open(tmp_path / "m", embedder="minilm").close()  # records minilm; no model load
    with pytest.raises(EmbedderMismatchError, match="built with embedder 'minilm'.*not 'hashing'"):
        ExperienceStore.open(tmp_path / "m", embedder="hashing")
    ExperienceStore.open(tmp_path / "h", embedder="hashing").close()
    with pytest.raises(EmbedderMismatchError, match="built with embedder 'hashing'"):
        ExperienceStore.open(tmp_path / "h", embedder="minilm")
    result = CliRunner().invoke(app, ["--memory", str(tmp_path / "h"), "--embedder", "minilm", "stats"])
    assert result.exit_code == 2 and "use --embedder hashing" in result.output
