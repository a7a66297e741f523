"""Recorded episodes read into a compact step table: what distillation learns from.

``load_steps`` reads run directories (the Parquet format of :mod:`envs.episodes`) into a
:class:`StepTable`: the kept steps column-wise in compact numpy arrays, each frame
compressed on its own (zstd, ~3 KB for a 12 KB Crafter frame) and decoded only when a
sample asks for it, so a million steps fit in a few GB. The filters (actor, return,
achievements, steps of subgoals that were reached) apply while reading; the action
history of a kept step stays exact even where the steps before it were dropped.
:mod:`distill.data` turns the table's rows into training samples.

Depends on ``envs``, numpy and pyarrow (and, for the Crafter-only map, landmarks and
walks, crafter's action names).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from distill.checks import reached_mask
from distill.config import DataConfig, ModelConfig
from distill.landmarks import Reads, episode_landmarks
from distill.visual_memory import NO_WALK, episode_memories, move_vectors, walk_ends
from envs.episodes import (
    ACTORS,
    INDEX_FILE,
    CorruptEpisodeError,
    EpisodeMeta,
    carried_out,
    decode_frames,
    episode_dir,
    part_files,
    read_run,
    read_steps,
)

# Crafter's action count: the size of the action head when no step of the data carries
# a teacher distribution to read it from (and the env's own list is not at hand here).
DEFAULT_N_ACTIONS = 17
FRAME_CODEC = "zstd"  # measured on Crafter frames: zstd(3) 3.1 KB, 40 us; lz4 4.2 KB, 10 us
FRAME_CODEC_LEVEL = 3
_OK_STATUS = ("complete", "recovered")


_CODEC: pa.Codec | None = None


def _codec() -> pa.Codec:
    global _CODEC
    if _CODEC is None:
        _CODEC = pa.Codec(FRAME_CODEC, compression_level=FRAME_CODEC_LEVEL)
    return _CODEC


@dataclass(frozen=True)
class EpisodeInfo:
    """One episode of a :class:`StepTable` (a row of its run's ``episodes.parquet``)."""

    episode_id: str
    run_dir: Path
    seed: int | None
    episode_return: float
    achievements: tuple[str, ...]
    length: int  # steps recorded, kept or not
    env: str
    agent: str
    status: str
    frame_shape: tuple[int, ...]
    config_hash: str = ""


@dataclass
class StepTable:
    """The kept steps of some episodes, column by column (row ``i`` is one step).

    ``pos[i]`` is the step's position in its episode as recorded (0 = first step), also
    for steps the filters dropped: ``episode_actions[action_offsets[e]:action_offsets[e+1]]``
    holds every action carried out in episode ``e``, so the action history of a kept step
    is exact even where the steps before it were filtered out. In DAgger's rollouts these
    are the mixed policy's actions (the episode's ``taken``), ``action`` the teacher's labels.
    """

    episodes: list[EpisodeInfo]
    episode: np.ndarray  # int32 [N] index into ``episodes``
    t: np.ndarray  # int32 [N] the env's step counter
    pos: np.ndarray  # int32 [N] position in the episode
    action: np.ndarray  # int16 [N]
    teacher_probs: np.ndarray  # float16 [N, n_actions], zeros where missing
    has_probs: np.ndarray  # bool [N]
    task: np.ndarray  # int32 [N] index into ``tasks``
    subgoal: np.ndarray  # int32 [N] index into ``subgoals``
    actor: np.ndarray  # int8 [N] index into ``envs.episodes.ACTORS``
    tasks: list[str]
    subgoals: list[str]
    frame_data: np.ndarray  # uint8, every kept frame compressed, end to end
    frame_offsets: np.ndarray  # int64 [N + 1]: frame i is frame_data[off[i]:off[i+1]]
    episode_actions: np.ndarray  # int16, every action of every episode
    action_offsets: np.ndarray  # int64 [E + 1]
    n_actions: int
    action_names: dict[int, str] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)  # what the filters dropped
    # uint8 [N, S, S, 4]: the student's map before each kept step (load_steps(memory=S),
    # see distill.visual_memory; ~2.9 KB a step at S = 27), or None
    memory: np.ndarray | None = None
    # int8 [N]: where the teacher's walk through each kept move ends, a cell of the view
    # or beyond it (load_steps(walks=True), see distill.visual_memory.walk_ends; NO_WALK
    # where the step is not the teacher's move), or None
    walk_end: np.ndarray | None = None
    # int8 [N, K, 2]: the offset (dx, dy) of the nearest remembered cell of each landmark
    # before each kept step (load_steps(landmarks=S), see distill.landmarks), or None;
    # [N, K + VIEW_CELLS, 2] with landmark_view: then each view cell's class and staleness;
    # one row more with each of walled, walls_needed, plant_clock and plant_spot, then K with routes
    # (distill.landmarks.Reads.rows)
    landmarks: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.action.shape[0])

    def frame(self, i: int) -> np.ndarray:
        """Step ``i``'s frame, decompressed: uint8 [H, W, C] (read-only)."""
        shape = self.episodes[int(self.episode[i])].frame_shape
        raw = _codec().decompress(self.frame_data[self.frame_offsets[i]:self.frame_offsets[i + 1]],
                                  decompressed_size=int(np.prod(shape)), asbytes=True)
        return np.frombuffer(raw, np.uint8).reshape(shape)

    def task_text(self, i: int) -> str:
        return self.tasks[int(self.task[i])]

    def subgoal_text(self, i: int) -> str:
        return self.subgoals[int(self.subgoal[i])]

    def history(self, i: int, length: int) -> np.ndarray:
        """The ``length`` actions before step ``i`` in its episode, oldest first, int64;
        ``n_actions`` (no action) where the episode had not started yet."""
        return self.histories(np.array([i]), length)[0]

    def histories(self, rows: np.ndarray, length: int) -> np.ndarray:
        """:meth:`history` of each of ``rows`` at once: int64 [len(rows), length]."""
        back = self.pos[rows].astype(np.int64)[:, None] - np.arange(length, 0, -1)  # [R, length]
        if not len(self.episode_actions):
            return np.full(back.shape, self.n_actions, np.int64)
        # Positions before the episode start read any valid index; np.where replaces them.
        where = np.minimum(self.action_offsets[self.episode[rows]][:, None] + np.maximum(back, 0),
                           len(self.episode_actions) - 1)
        return np.where(back >= 0, self.episode_actions[where], self.n_actions).astype(np.int64)


# -- loading ---------------------------------------------------------------------------

def _intern(strings: list[str], own: Sequence[str]) -> np.ndarray:
    """Where each of ``own`` is in ``strings``, as int32, appending those not there yet
    (``[0]`` for an empty ``own``, so indexing the result with no rows still works)."""
    at = {s: i for i, s in enumerate(strings)}
    for s in own:
        if s not in at:
            at[s] = len(strings)
            strings.append(s)
    return np.array([at[s] for s in own] or [0], np.int32)


def _codes(column: pa.ChunkedArray, strings: list[str]) -> np.ndarray:
    """Strings -> int32 indices into ``strings`` (grown as new strings appear)."""
    # Nulls get their own entry (read as ""), so every index is valid.
    enc = pc.dictionary_encode(column.combine_chunks(), null_encoding="encode")
    local = _intern(strings, [s or "" for s in enc.dictionary.to_pylist()])
    return local[enc.indices.to_numpy(zero_copy_only=False)]


def _probs(column: pa.ChunkedArray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Teacher distributions -> (float32 [n, A] with zero rows where missing, mask)."""
    arr = column.combine_chunks()
    lengths = pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False)
    has = lengths > 0
    if not has.any():
        return np.zeros((len(arr), 0), np.float32), has
    sizes = np.unique(lengths[has])
    if len(sizes) != 1:
        raise ValueError(f"{where}: teacher_probs of different lengths {sizes.tolist()}")
    values = arr.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    out = np.zeros((len(arr), int(sizes[0])), np.float32)
    out[has] = values.reshape(-1, int(sizes[0]))
    return out, has


def _crafter_actions() -> tuple[str, ...]:
    """Crafter's action names by id: the moves of actions no label in the episode names
    (a DAgger student's, say)."""
    import crafter

    return tuple(crafter.constants.actions)


def _asleep(carried: np.ndarray, sleep: int | None) -> np.ndarray:
    """Steps taken asleep: ``sleep`` carried out right after ``sleep``. Crafter carries out
    ``sleep`` whatever the action until the player is rested, so these labels teach
    nothing (a teacher sleeping through the night is ~40 % of its steps; a DAgger student
    sleeps too, and its rollouts record ``sleep`` as carried out there, see
    :class:`distill.rollouts.MirrorEnv`). Awake and rested in its shelter, the teacher
    waits with ``noop`` so that its wait is kept; teacher episodes recorded before that
    hold it as ``sleep`` and lose it here, as do a student's rested choices of ``sleep``.
    ``sleep`` None (an env without it): none."""
    if sleep is None:
        return np.zeros(len(carried), bool)
    slept = carried == sleep
    return slept & np.r_[False, slept[:-1]]


def _compress_frames(column: pa.ChunkedArray, keep: np.ndarray, size: int, where: str) -> list[bytes]:
    codec = _codec()
    out: list[bytes] = []
    row = 0
    for chunk in column.chunks:
        n = len(chunk)
        bufs = chunk.buffers()
        offsets = np.frombuffer(bufs[1], np.int32)[chunk.offset: chunk.offset + n + 1]
        data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
        if n and (np.diff(offsets) != size).any():
            raise CorruptEpisodeError(f"{where}: a frame is not {size} bytes (frame_shape of the index)")
        for j in np.flatnonzero(keep[row:row + n]).tolist():
            out.append(codec.compress(data[offsets[j]:offsets[j + 1]], asbytes=True))
        row += n
    return out


def _frame_shape(meta: EpisodeMeta, folder: Path) -> tuple[int, ...]:
    if meta.frame_shape:
        return tuple(int(x) for x in meta.frame_shape)
    files = part_files(folder)
    raw = (pq.read_schema(files[0]).metadata or {}).get(b"steve.frame_shape") if files else None
    if not raw:
        raise CorruptEpisodeError(f"{folder}: no frame_shape in the index or the files")
    return tuple(int(x) for x in json.loads(raw))


def _actor_codes(column: pa.ChunkedArray) -> np.ndarray:
    """Each step's actor as an index into ``ACTORS``, int8: -1 for an actor not known
    here (it matches no filter); a step without one was the teacher's (the default)."""
    strings: list[str] = []
    local = _codes(column, strings)
    known = {a: i for i, a in enumerate(ACTORS)}
    return np.array([known.get(a or "teacher", -1) for a in strings], np.int8)[local]


def _kept(steps: pa.Table, sub: np.ndarray, actor: np.ndarray, done: np.ndarray, sleep: int | None,
          cfg: DataConfig, stats: Counter, subgoals: list[str]) -> np.ndarray:
    """The steps of one episode that ``cfg``'s step filters keep (bool [n]), counting
    what each filter drops in ``stats``; ``done`` the actions carried out, ``sleep`` the
    env's id of sleep, ``subgoals`` the names ``sub`` indexes."""
    n = steps.num_rows
    keep = np.ones(n, bool)
    if cfg.success_only:
        keep &= reached_mask(steps, sub)
        stats["steps_subgoal_not_reached"] += int(n - keep.sum())
    if cfg.skip_asleep:
        asleep = _asleep(done, sleep)
        stats["steps_asleep"] += int((keep & asleep).sum())
        keep &= ~asleep
    if cfg.relabelled_skip:
        skipped = (actor == ACTORS.index("expert-relabelled")) & np.isin(
            sub, [i for i, name in enumerate(subgoals) if name in cfg.relabelled_skip])
        stats["steps_relabelled_skipped"] += int((keep & skipped).sum())
        keep &= ~skipped
    by_actor = np.isin(actor, [ACTORS.index(a) for a in cfg.actors])
    stats["steps_other_actors"] += int((keep & ~by_actor).sum())
    return keep & by_actor


def _crafter_cells(steps: pa.Table, shape: tuple[int, ...], actions: np.ndarray, done: np.ndarray,
                   actor: np.ndarray, memory: int, walks: bool, landmarks: Reads | None
                   ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """What the student reads of Crafter's cells at every step of one episode: its map
    (``memory`` cells per side), where the teacher's walks end, its landmarks' rows
    (:class:`distill.landmarks.Reads`); None for each one not asked for.
    Read over every step, the dropped ones too: the frames are what the player saw."""
    frames = decode_frames(steps.column("frame").to_pylist(), shape)
    moves = move_vectors(_crafter_actions(), int(max(actions.max(), done.max())) + 1)
    carried = done.astype(np.int64)
    mem = episode_memories(frames, carried, moves, memory) if memory else None
    ends = None
    if walks:
        ends = np.where(actor == ACTORS.index("teacher"), walk_ends(frames, done, moves), NO_WALK).astype(np.int8)
    marks = None
    if landmarks is not None:
        marks = episode_landmarks(frames, carried, moves, landmarks, steps.column("t").to_numpy())
    return mem, ends, marks


def _teacher_matrix(probs: list[np.ndarray], has_probs: list[np.ndarray], max_action: int
                    ) -> tuple[np.ndarray, int]:
    """The episodes' teacher distributions in one float16 [N, n_actions] array (zero rows
    where a step has none), and the action count: the width of the recorded
    distributions, or without any Crafter's 17 (never fewer than the actions seen)."""
    widths = {p.shape[1] for p, h in zip(probs, has_probs) if h.any()}
    if len(widths) > 1:
        raise ValueError(f"teacher_probs of different lengths across episodes: {sorted(widths)}")
    n_actions = widths.pop() if widths else max(DEFAULT_N_ACTIONS, max_action + 1)
    if max_action >= n_actions:
        raise ValueError(f"action {max_action} recorded, but teacher_probs have {n_actions} entries")
    teacher = np.zeros((sum(len(h) for h in has_probs), n_actions), np.float16)
    row = 0
    for p, h in zip(probs, has_probs):
        if p.shape[1]:
            teacher[row:row + len(h)] = p
        row += len(h)
    return teacher, n_actions


def _join_frames(blobs: list[bytes], frame_sizes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The episodes' compressed frames end to end, and where each one starts
    (``StepTable.frame_data``, ``frame_offsets``). Empties ``blobs`` as it goes, so
    each episode's blob is freed once copied."""
    offsets = np.zeros(sum(len(s) for s in frame_sizes) + 1, np.int64)
    np.cumsum(np.concatenate(frame_sizes), out=offsets[1:])
    frame_data = np.empty(int(offsets[-1]), np.uint8)
    at = 0
    blobs.reverse()
    while blobs:
        blob = blobs.pop()
        frame_data[at:at + len(blob)] = np.frombuffer(blob, np.uint8)
        at += len(blob)
    return frame_data, offsets


def load_steps_for(runs: Sequence[Path | str], data: DataConfig, model: ModelConfig) -> StepTable:
    """:func:`load_steps` with what ``model`` reads beyond the frame: its map, its
    landmarks, its walk head."""
    return load_steps(runs, data, memory=model.memory, walks=model.walk_target, landmarks=Reads.of(model) or 0)


def load_steps(runs: Sequence[Path | str], cfg: DataConfig, memory: int = 0, walks: bool = False,
               landmarks: Reads | int = 0) -> StepTable:
    """Every kept step of every finished episode of ``runs``; with ``memory`` (the model's
    ``memory``, cells per side) the student's map before each kept step as well; with
    ``walks`` (Crafter) where each of the teacher's walks ends (``StepTable.walk_end``);
    with ``landmarks`` (:class:`distill.landmarks.Reads`, or its cells per side alone) the
    nearest landmarks the student remembers before each kept step and the rows it reads
    after them (``StepTable.landmarks``, ``distill.landmarks.LandmarkMemory``).

    Filters: ``cfg.min_return`` and ``cfg.min_achievements`` drop whole episodes (from
    their index row); ``cfg.success_only`` keeps the steps of subgoal segments that
    reached their subgoal (see :func:`distill.checks.reached_mask`); ``cfg.relabelled_skip``
    drops the expert-relabelled steps under those subgoals; ``cfg.actors`` keeps the steps
    taken by those actors; ``cfg.skip_asleep`` drops the steps taken asleep (:func:`_asleep`;
    a DAgger student's where its rollout recorded them so, since session 53). A run
    directory that does not exist or holds no finished episode is a one-line
    ``ValueError``; an episode with a status other than complete/recovered, without step
    files, with fewer steps than its index row says, or with a corrupt file raises
    :class:`envs.episodes.CorruptEpisodeError` naming it.
    """
    runs = [Path(r) for r in runs]
    if not runs:
        raise ValueError("no run directories given")
    landmarks = Reads.given(landmarks) if landmarks else None
    sleep = _crafter_actions().index("sleep")  # of a Crafter episode's actions (see _asleep)
    tasks: list[str] = []
    subgoals: list[str] = []
    episodes: list[EpisodeInfo] = []
    cols: dict[str, list[np.ndarray]] = {k: [] for k in
                                         ("episode", "t", "pos", "action", "task", "subgoal", "actor")}
    probs: list[np.ndarray] = []
    has_probs: list[np.ndarray] = []
    blobs: list[bytes] = []
    frame_sizes: list[np.ndarray] = []
    all_actions: list[np.ndarray] = []
    memories: list[np.ndarray] = []
    walk_end: list[np.ndarray] = []
    marks: list[np.ndarray] = []
    action_names: dict[int, str] = {}
    stats = Counter()
    actors_seen: set[str] = set()  # to name in the error when no step is left

    for run in runs:
        for meta in read_run(run):
            stats["episodes_read"] += 1
            if meta.status not in _OK_STATUS:
                raise CorruptEpisodeError(f"{run / INDEX_FILE}: episode {meta.episode_id} has status "
                                          f"{meta.status!r} (expected complete or recovered)")
            if cfg.min_return is not None and meta.episode_return < cfg.min_return:
                stats["episodes_below_min_return"] += 1
                continue
            if len(meta.achievements) < cfg.min_achievements:
                stats["episodes_below_min_achievements"] += 1
                continue
            folder = episode_dir(run, meta.episode_id)
            if not part_files(folder):
                raise CorruptEpisodeError(f"{folder}: no step files for episode {meta.episode_id}")
            steps = read_steps(folder)
            n = steps.num_rows
            if meta.status == "complete" and n != meta.length:
                raise CorruptEpisodeError(f"{folder}: {n} steps on disk, the index says {meta.length}")
            if n == 0:
                continue
            stats["steps_read"] += n
            shape = _frame_shape(meta, folder)
            actions = steps.column("action").to_numpy().astype(np.int16, copy=False)  # the labels
            done = carried_out(steps)  # what the player did: its history, its moves
            sub = _codes(steps.column("subgoal"), subgoals)
            actor = _actor_codes(steps.column("actor"))
            actors_seen.update(str(x) for x in pc.unique(steps.column("actor")).to_pylist())
            keep = _kept(steps, sub, actor, done, sleep if meta.env == "crafter" else None, cfg, stats, subgoals)
            if not keep.any():
                continue
            e = len(episodes)
            episodes.append(EpisodeInfo(
                episode_id=meta.episode_id, run_dir=run, seed=meta.seed,
                episode_return=float(meta.episode_return), achievements=tuple(meta.achievements),
                length=n, env=meta.env, agent=meta.agent, status=meta.status, frame_shape=shape,
                config_hash=meta.config_hash))
            all_actions.append(done)
            p, h = _probs(steps.column("teacher_probs"), str(folder))
            probs.append(p[keep])
            has_probs.append(h[keep])
            cols["episode"].append(np.full(int(keep.sum()), e, np.int32))
            cols["t"].append(steps.column("t").to_numpy().astype(np.int32, copy=False)[keep])
            cols["pos"].append(np.flatnonzero(keep).astype(np.int32))
            cols["action"].append(actions[keep])
            cols["task"].append(_codes(steps.column("task"), tasks)[keep])
            cols["subgoal"].append(sub[keep])
            cols["actor"].append(actor[keep])
            local_names: list[str] = []
            names = _codes(steps.column("action_name"), local_names)
            named = {int(a): local_names[k] for a, k in set(zip(actions.tolist(), names.tolist())) if local_names[k]}
            for a, name in named.items():
                action_names.setdefault(a, name)
            if memory or walks or landmarks is not None:
                if meta.env != "crafter":
                    raise ValueError(f"{folder}: model.memory, model.landmarks and model.walk_target read "
                                     f"Crafter's cells, this episode is from {meta.env!r}")
                cells = _crafter_cells(steps, shape, actions, done, actor, memory, walks, landmarks)
                for out, column in zip((memories, walk_end, marks), cells):
                    if column is not None:
                        out.append(column[keep])
            frames = _compress_frames(steps.column("frame"), keep, int(np.prod(shape)), str(folder))
            frame_sizes.append(np.fromiter(map(len, frames), np.int64, len(frames)))
            blobs.append(b"".join(frames))

    if not episodes:
        named = ", ".join(map(str, runs[:3])) + (f" and {len(runs) - 3} more" if len(runs) > 3 else "")
        raise ValueError(f"no steps left after the filters in {named} "
                         f"(actors {sorted(cfg.actors)}, min_return {cfg.min_return}, "
                         f"min_achievements {cfg.min_achievements}, success_only {cfg.success_only}"
                         + (f"; the steps' actors: {sorted(actors_seen)})" if actors_seen else ")"))

    teacher, n_actions = _teacher_matrix(probs, has_probs, max(int(a.max()) for a in all_actions))
    frame_data, offsets = _join_frames(blobs, frame_sizes)
    action_offsets = np.zeros(len(all_actions) + 1, np.int64)
    np.cumsum([len(a) for a in all_actions], out=action_offsets[1:])

    return StepTable(
        episodes=episodes,
        episode=np.concatenate(cols["episode"]),
        t=np.concatenate(cols["t"]),
        pos=np.concatenate(cols["pos"]),
        action=np.concatenate(cols["action"]).astype(np.int16),
        teacher_probs=teacher,
        has_probs=np.concatenate(has_probs),
        task=np.concatenate(cols["task"]),
        subgoal=np.concatenate(cols["subgoal"]),
        actor=np.concatenate(cols["actor"]),
        tasks=tasks,
        subgoals=subgoals,
        frame_data=frame_data,
        frame_offsets=offsets,
        episode_actions=np.concatenate(all_actions).astype(np.int16),
        action_offsets=action_offsets,
        n_actions=int(n_actions),
        action_names=dict(sorted(action_names.items())),
        stats=dict(stats),
        memory=np.concatenate(memories) if memory else None,
        walk_end=np.concatenate(walk_end) if walks else None,
        landmarks=np.concatenate(marks) if landmarks is not None else None,
    )


def concat_tables(tables: Sequence[StepTable]) -> StepTable:
    """One table holding the rows of ``tables`` in order, as if ``load_steps`` had read
    all their runs at once (DAgger adds each round's rollouts to the table it has,
    instead of reading every run again). Tasks and subgoals are re-indexed; the action
    counts must agree."""
    if not tables:
        raise ValueError("no step tables to join")
    if len({t.n_actions for t in tables}) > 1:
        raise ValueError(f"step tables of different action counts: {sorted({t.n_actions for t in tables})}")
    maps = {None if t.memory is None else t.memory.shape[1:] for t in tables}
    if len(maps) > 1:
        raise ValueError(f"step tables with different maps (model.memory): {sorted(map(str, maps))}")
    if len({t.walk_end is None for t in tables}) > 1:
        raise ValueError("step tables with and without walk ends (model.walk_target)")
    if len({t.landmarks is None for t in tables}) > 1:
        raise ValueError("step tables with and without landmarks (model.landmarks)")
    tasks: list[str] = []
    subgoals: list[str] = []
    task_codes, subgoal_codes, episode_index = [], [], []
    frame_shift, action_shift, n_episodes = 0, 0, 0
    frame_offsets, action_offsets = [np.zeros(1, np.int64)], [np.zeros(1, np.int64)]
    names: dict[int, str] = {}
    stats: Counter[str] = Counter()
    for t in tables:
        task_codes.append(_intern(tasks, t.tasks)[t.task])
        subgoal_codes.append(_intern(subgoals, t.subgoals)[t.subgoal])
        episode_index.append(t.episode + n_episodes)
        frame_offsets.append(t.frame_offsets[1:] + frame_shift)
        action_offsets.append(t.action_offsets[1:] + action_shift)
        frame_shift += int(t.frame_offsets[-1])
        action_shift += int(t.action_offsets[-1])
        n_episodes += len(t.episodes)
        for a, n in t.action_names.items():
            names.setdefault(a, n)
        stats.update(t.stats)
    return StepTable(
        episodes=[ep for t in tables for ep in t.episodes],
        episode=np.concatenate(episode_index).astype(np.int32),
        t=np.concatenate([t.t for t in tables]),
        pos=np.concatenate([t.pos for t in tables]),
        action=np.concatenate([t.action for t in tables]),
        teacher_probs=np.concatenate([t.teacher_probs for t in tables]),
        has_probs=np.concatenate([t.has_probs for t in tables]),
        task=np.concatenate(task_codes),
        subgoal=np.concatenate(subgoal_codes),
        actor=np.concatenate([t.actor for t in tables]),
        tasks=tasks,
        subgoals=subgoals,
        frame_data=np.concatenate([t.frame_data for t in tables]),
        frame_offsets=np.concatenate(frame_offsets),
        episode_actions=np.concatenate([t.episode_actions for t in tables]),
        action_offsets=np.concatenate(action_offsets),
        n_actions=tables[0].n_actions,
        action_names=dict(sorted(names.items())),
        stats=dict(stats),
        memory=None if tables[0].memory is None else np.concatenate([t.memory for t in tables]),
        walk_end=None if tables[0].walk_end is None else np.concatenate([t.walk_end for t in tables]),
        landmarks=None if tables[0].landmarks is None else np.concatenate([t.landmarks for t in tables]),
    )
