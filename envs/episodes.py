"""The episode file format: one Parquet dataset per run, readable without this project.

Layout of a run directory::

    RUN/episodes/<episode_id>/part-00000.parquet   steps, in parts of ``flush_every``
    RUN/episodes.parquet                           one row per finished episode

``pandas.read_parquet("RUN/episodes")`` gives every step of every episode,
``pandas.read_parquet("RUN/episodes.parquet")`` the episodes. A frame is raw uint8
bytes of shape ``frame_shape`` (in the episode row and in each file's metadata):
``np.frombuffer(row.frame, np.uint8).reshape(shape)``.

Parts are written to a dot-file and renamed, so a reader never sees half a part; a
killed process loses at most the steps not yet flushed. Pages carry CRC checksums, and
every read here checks them: a truncated or corrupt file raises
:class:`CorruptEpisodeError` naming it instead of being read.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 2  # 2 added ``taken``; version-1 files read with it null
ACTORS = ("teacher", "student", "expert-relabelled")
STEPS_DIR = "episodes"
INDEX_FILE = "episodes.parquet"

STEP_SCHEMA = pa.schema([
    ("episode_id", pa.string()),
    ("t", pa.int32()),
    ("frame", pa.binary()),
    ("task", pa.string()),
    ("subgoal", pa.string()),
    ("plan", pa.string()),
    ("action", pa.int16()),
    ("action_name", pa.string()),
    ("teacher_probs", pa.list_(pa.float32())),
    ("reward", pa.float32()),
    ("terminated", pa.bool_()),
    ("truncated", pa.bool_()),
    ("inventory", pa.string()),  # JSON object name -> count: readable everywhere
    ("achievements", pa.list_(pa.string())),  # unlocked before this step's action
    ("actor", pa.string()),
    # The action the env carried out, where a wrapper below the recorder said so (its
    # ``info["taken"]``): DAgger's rollouts record the teacher's label as ``action`` and
    # the action carried out, often the student's, here. Null: ``action`` was carried out.
    ("taken", pa.int16()),
])
STEP_COLUMNS = tuple(STEP_SCHEMA.names)
_LIST_COLUMNS = tuple(n for n in STEP_COLUMNS if n != "frame")


class CorruptEpisodeError(RuntimeError):
    """A truncated, corrupt or foreign episode file; the message names it."""


class EpisodeMeta(BaseModel):
    """One finished (or recovered) episode: a row of ``episodes.parquet``."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    episode_id: str
    seed: int | None
    env: str
    agent: str
    config_hash: str
    length: int = 0
    episode_return: float = Field(0.0, alias="return")
    achievements: list[str] = []
    frame_shape: list[int] = []
    status: str = "complete"  # complete | recovered (the process died mid-episode)
    started_at: float = 0.0
    finished_at: float = 0.0

    def row(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)


def episode_dir(run_dir: Path, episode_id: str) -> Path:
    return Path(run_dir) / STEPS_DIR / episode_id


def _atomic_write_table(table: pa.Table, path: Path) -> None:
    # Write then rename: a killed process leaves the old file or the new one, never half
    # of one. No fsync: that guards against power loss, not process death, and costs
    # more than the recording budget (measured ~70 ms per part). No dictionaries and no
    # statistics: nothing reads them back, and an agent writes a part per subgoal (often
    # a few rows), where they were a quarter of the time of a write.
    tmp = path.with_name("." + path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd", compression_level=1, write_page_checksum=True,
                   use_dictionary=False, write_statistics=False)
    os.replace(tmp, path)


class EpisodeWriter:
    """Buffers the steps of one episode and writes them as Parquet parts."""

    def __init__(self, run_dir: Path, meta: EpisodeMeta, flush_every: int = 500,
                 frame_buffer: np.ndarray | None = None):
        self.run_dir = Path(run_dir)
        self.meta = meta
        self.flush_every = flush_every
        self.dir = episode_dir(self.run_dir, meta.episode_id)
        if self.dir.exists() and any(self.dir.glob("part-*.parquet")):
            raise FileExistsError(f"{self.dir} already holds an episode; use a new run directory")
        self.dir.mkdir(parents=True, exist_ok=True)
        self._cols: dict[str, list[Any]] = {name: [] for name in _LIST_COLUMNS}
        # Frames go straight into one array: building an Arrow column from a list of
        # Python bytes costs ~100 us a frame, from one buffer almost nothing. A caller
        # that writes many episodes passes the same buffer each time.
        shape = (flush_every, *meta.frame_shape)
        if frame_buffer is None or frame_buffer.shape != shape:
            frame_buffer = np.empty(shape, np.uint8)
        self._frames = frame_buffer
        self._parts = 0
        self.length = 0  # steps appended, flushed or not
        self.meta.started_at = time.time()

    @classmethod
    def reopen(cls, run_dir: Path, meta: EpisodeMeta, keep: int, flush_every: int = 500,
               frame_buffer: np.ndarray | None = None) -> tuple[EpisodeWriter, pa.Table]:
        """Continue an episode a killed process left open, from its first ``keep`` steps.

        Steps on disk beyond ``keep`` are cut (a part that straddles it is rewritten);
        returns the writer and the kept steps, whose actions replay the env to step
        ``keep``.
        """
        folder = episode_dir(run_dir, meta.episode_id)
        kept: list[pa.Table] = []
        total = 0
        for path in part_files(folder):
            table = _read_part(path)
            if total >= keep:
                path.unlink()
                continue
            if total + table.num_rows > keep:
                table = table.slice(0, keep - total)
                _atomic_write_table(table, path)
            kept.append(table)
            total += table.num_rows
        if total < keep:
            raise CorruptEpisodeError(f"{folder}: {total} steps on disk, {keep} needed to resume")
        steps = pa.concat_tables([t.replace_schema_metadata(None) for t in kept]) if kept \
            else STEP_SCHEMA.empty_table()
        for leftover in folder.glob(".*.tmp"):
            leftover.unlink()
        writer = cls.__new__(cls)
        writer.run_dir, writer.meta, writer.flush_every, writer.dir = Path(run_dir), meta, flush_every, folder
        writer._cols = {name: [] for name in _LIST_COLUMNS}
        shape = (flush_every, *meta.frame_shape)
        writer._frames = frame_buffer if frame_buffer is not None and frame_buffer.shape == shape \
            else np.empty(shape, np.uint8)
        writer._parts = len(kept)
        writer.length = total
        meta.started_at = meta.started_at or time.time()
        return writer, steps

    @property
    def frame_buffer(self) -> np.ndarray:
        return self._frames

    def append(self, frame: np.ndarray, **row: Any) -> None:
        """One step: ``frame`` as an array, the other columns of STEP_SCHEMA by name."""
        cols = self._cols
        self._frames[len(cols["t"])] = frame
        for name in _LIST_COLUMNS:
            cols[name].append(row.get(name))
        self.length += 1
        if len(cols["t"]) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        n = len(self._cols["t"])
        if not n:
            return
        frames = np.ascontiguousarray(self._frames[:n])
        size = frames[0].nbytes
        offsets = pa.py_buffer(np.arange(n + 1, dtype=np.int32) * size)
        frame_col = pa.Array.from_buffers(pa.binary(), n, [None, offsets, pa.py_buffer(frames)])
        arrays = {name: pa.array(self._cols[name], type=STEP_SCHEMA.field(name).type)
                  for name in _LIST_COLUMNS}
        arrays["frame"] = frame_col
        table = pa.Table.from_arrays([arrays[name] for name in STEP_COLUMNS], schema=STEP_SCHEMA)
        table = table.replace_schema_metadata({
            "steve.schema_version": str(SCHEMA_VERSION),
            "steve.frame_shape": json.dumps(self.meta.frame_shape),
            "steve.episode_id": self.meta.episode_id,
        })
        _atomic_write_table(table, self.dir / f"part-{self._parts:05d}.parquet")
        self._parts += 1
        self._cols = {name: [] for name in _LIST_COLUMNS}

    def finish(self) -> EpisodeMeta:
        """Flush the rest; the caller adds the episode to the index (:func:`write_index`)."""
        self.flush()
        self.meta.finished_at = time.time()
        return self.meta


def write_index(run_dir: Path, metas: Iterable[EpisodeMeta]) -> None:
    """Write ``episodes.parquet`` with these episodes (atomic; one small file)."""
    table = pa.Table.from_pylist([m.row() for m in metas])
    _atomic_write_table(table, Path(run_dir) / INDEX_FILE)


def read_index(run_dir: Path) -> list[EpisodeMeta]:
    path = Path(run_dir) / INDEX_FILE
    if not path.exists():
        return []
    return [EpisodeMeta.model_validate(row) for row in _read_file(path).to_pylist()]


def _read_file(path: Path, columns: list[str] | None = None) -> pa.Table:
    return _checked(path, lambda: pq.read_table(path, columns=columns, page_checksum_verification=True))


def _checked(path: Path, read: Any) -> Any:
    """``read()``, a Parquet read of ``path``; a bad file raises one line naming it."""
    try:
        return read()
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CorruptEpisodeError(f"{path}: truncated or corrupt Parquet file ({first})") from None


def _read_part(path: Path, columns: list[str] | None = None) -> pa.Table:
    """One step file; a version-1 file (no ``taken``) reads with ``taken`` null."""
    if columns is not None and "taken" in columns and "taken" not in _checked(path, lambda: pq.read_schema(path)).names:
        table = _read_file(path, [c for c in columns if c != "taken"])
    else:
        table = _read_file(path, columns)
    if (columns is None or "taken" in columns) and "taken" not in table.column_names:
        table = table.append_column(STEP_SCHEMA.field("taken"), pa.nulls(table.num_rows, pa.int16()))
    return table if columns is None else table.select(columns)


def part_files(path: Path) -> list[Path]:
    """The step files under a run directory, its ``episodes/`` or one episode's directory."""
    path = Path(path)
    if (path / STEPS_DIR).is_dir():
        path = path / STEPS_DIR
    return sorted(p for p in path.rglob("part-*.parquet") if not p.name.startswith("."))


def read_steps(path: Path, columns: list[str] | None = None) -> pa.Table:
    """Every step under ``path``, each file checked; raises on the first bad file."""
    files = part_files(path)
    if not files:
        return STEP_SCHEMA.empty_table() if columns is None else STEP_SCHEMA.empty_table().select(columns)
    tables = []
    for f in files:
        table = _read_part(f, columns)
        if columns is None and not table.schema.equals(STEP_SCHEMA, check_metadata=False):
            raise CorruptEpisodeError(f"{f}: not a steve episode file (unexpected columns)")
        tables.append(table.replace_schema_metadata(None))
    return pa.concat_tables(tables)


def carried_out(steps: pa.Table) -> np.ndarray:
    """The actions the env carried out (``taken``, else ``action``): what replays an
    episode from its seed, and the player's own history. int16 [steps]."""
    return pc.coalesce(steps.column("taken"), steps.column("action")).to_numpy().astype(np.int16, copy=False)


def iter_episodes(
    run_dirs: Iterable[Path], columns: list[str] | None = None
) -> Iterator[tuple[EpisodeMeta, pa.Table]]:
    """(meta, steps) for every finished episode of every run directory, in index order."""
    for run_dir in run_dirs:
        for meta in read_index(run_dir):
            yield meta, read_steps(episode_dir(run_dir, meta.episode_id), columns)


def read_run(run: Path) -> list[EpisodeMeta]:
    """The finished episodes of one run directory; a one-line ``ValueError`` when there is
    no such directory or it holds none."""
    if not Path(run).is_dir():
        raise ValueError(f"run directory not found: {run}")
    metas = read_index(run)
    if not metas:
        raise ValueError(f"{run}: no finished episodes (no {INDEX_FILE} or an empty one)")
    return metas


def find_runs(paths: Sequence[Path | str]) -> list[Path]:
    """Run directories named, or found below the folders named (to two levels): a run
    directory is one with an ``episodes.parquet`` index."""
    found: list[Path] = []
    for path in map(Path, paths):
        if (path / INDEX_FILE).is_file() or not path.is_dir():
            found.append(path)  # a missing path is reported by its reader
            continue
        below = sorted({p.parent for pattern in (f"*/{INDEX_FILE}", f"*/*/{INDEX_FILE}") for p in path.glob(pattern)})
        found.extend(below or [path])
    return found


def decode_frames(column: Iterable[bytes], shape: list[int] | tuple[int, ...]) -> np.ndarray:
    """Raw frame bytes -> uint8 array of shape (n, *shape)."""
    data = list(column)
    flat = np.frombuffer(b"".join(data), np.uint8)
    return flat.reshape((len(data), *shape))


def verify_run(run_dir: Path) -> dict[str, list[str]]:
    """Check every file of a run: ``{"corrupt": [...], "incomplete": [...], "ok": [...]}``.

    ``incomplete`` lists episode directories with steps on disk but no index row: the
    process died during them (their flushed steps are intact and readable).
    """
    run_dir = Path(run_dir)
    report: dict[str, list[str]] = {"corrupt": [], "incomplete": [], "ok": []}
    try:
        finished = {m.episode_id for m in read_index(run_dir)}
    except CorruptEpisodeError as err:
        report["corrupt"].append(str(err))
        finished = set()
    for f in part_files(run_dir):
        try:
            _read_file(f)
            report["ok"].append(str(f))
        except CorruptEpisodeError as err:
            report["corrupt"].append(str(err))
    steps_root = run_dir / STEPS_DIR
    if steps_root.is_dir():
        for d in sorted(p for p in steps_root.iterdir() if p.is_dir()):
            if d.name not in finished and any(d.glob("part-*.parquet")):
                report["incomplete"].append(str(d))
    return report
