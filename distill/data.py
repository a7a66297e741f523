"""Samples for STEVE-2 distillation, from the step table of :mod:`distill.steps`.

``split`` holds out whole episodes, ``weighted_indices`` says how often each training
step is drawn, ``build_tokenizer`` makes the word vocabulary of tasks and subgoals, and
:class:`DistillDataset` turns a step into one training sample.

One sample trains both levels of the hierarchy at once, as one token sequence (the
order :mod:`distill.model` lays it out)::

    <bos> task words | previous actions | frame tokens | <bos> subgoal words ... | ACT
    plan level:   frame + task + history -> subgoal text (the subgoal positions)
    action level: frame + subgoal + history -> action (the ACT position)

- plan level: from the frame, the task and the recent actions the student writes the
  current subgoal word by word, with teacher forcing (``subgoal_in`` = BOS + words,
  ``subgoal_out`` = words + EOS, so position j predicts ``subgoal_out[j]`` from
  ``subgoal_in[:j+1]``; padding of ``subgoal_out`` is -100, ignored by the loss);
- action level: conditioned on that same (teacher) subgoal it predicts the action,
  against the teacher's distribution where one was recorded (``has_probs``), else
  against the recorded action.

Depends on ``envs``, numpy, pyarrow and torch only.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from distill.config import DataConfig, ModelConfig
from distill.landmarks import Reads
from distill.steps import StepTable
from distill.tokenizer import PAD, SPECIALS, Tokenizer, words
from envs.episodes import ACTORS

IGNORE_INDEX = -100  # padding of ``subgoal_out``: what torch's cross-entropy skips


# -- split, tokenizer, summary ---------------------------------------------------------

def _unit_hash(seed: int, episode_id: str) -> float:
    digest = hashlib.sha256(f"{seed}:{episode_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split(table: StepTable, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) row indices, by episode: an episode is held out iff
    sha256(f"{seed}:{episode_id}") read as a number in [0, 1) is below ``val_fraction``.

    The same data, fraction and seed always give the same split, whatever the order of
    the runs. With ``val_fraction > 0`` and at least two distinct episode ids, neither side
    is empty: if no episode fell below the line the one with the smallest hash is held
    out, if all did the one with the largest stays in training. Episodes sharing an id
    (the same seed and config in two runs) go to the same side.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    ids = sorted({ep.episode_id for ep in table.episodes})
    u = {eid: _unit_hash(seed, eid) for eid in ids}
    val = {eid for eid in ids if u[eid] < val_fraction}
    if val_fraction > 0 and len(ids) >= 2:
        if not val:
            val = {min(ids, key=lambda eid: (u[eid], eid))}
        elif len(val) == len(ids):
            val.discard(max(ids, key=lambda eid: (u[eid], eid)))
    is_val = np.array([ep.episode_id in val for ep in table.episodes], bool)
    rows = is_val[table.episode]
    return np.flatnonzero(~rows).astype(np.int64), np.flatnonzero(rows).astype(np.int64)


def weighted_indices(table: StepTable, indices: np.ndarray, data: DataConfig) -> np.ndarray:
    """``indices`` with each step repeated by its weight: ``data.relabelled_weight`` for an
    expert-relabelled step (DAgger's few new states would otherwise be a sliver of every
    batch), times ``data.rare_action_weight`` for a step whose action is under
    ``data.rare_action_below`` of ``indices`` (placing a table or making a pickaxe is one
    step in a thousand, and each opens the next tier), times ``data.change_weight`` for a step
    whose action is not the one before it in its episode (the moments the teacher decided
    something new, which a student that reads its own last actions otherwise learns to
    skip: behavioural cloning's copycat problem), times ``data.subgoal_weights[name]`` for a
    step under a subgoal named there."""
    weight = np.ones(len(indices), np.int64)
    if data.relabelled_weight > 1:
        weight[table.actor[indices] == ACTORS.index("expert-relabelled")] *= data.relabelled_weight
    if data.rare_action_weight > 1 and len(indices):
        actions = table.action[indices].astype(np.int64)
        share = np.bincount(actions, minlength=table.n_actions) / len(indices)
        weight[share[actions] < data.rare_action_below] *= data.rare_action_weight
    if data.change_weight > 1 and len(indices):
        weight[table.action[indices] != table.histories(indices, 1)[:, 0]] *= data.change_weight
    if data.subgoal_weights and len(indices):
        weight *= _subgoal_weights(table, data.subgoal_weights)[table.subgoal[indices]]
    return indices if (weight == 1).all() else np.repeat(indices, weight)


def _subgoal_weights(table: StepTable, weights: dict[str, int]) -> np.ndarray:
    """Each of ``table.subgoals``' weight (1 where ``weights`` does not name it); a name
    no step of the data has is an error, not a weight that silently does nothing."""
    code = {name: i for i, name in enumerate(table.subgoals)}
    unknown = [name for name in weights if name not in code]
    if unknown:
        common = [table.subgoals[i] for i in np.argsort(-np.bincount(table.subgoal), kind="stable")
                  if table.subgoals[i]][:6]
        raise ValueError(f"data.subgoal_weights: no step of the data has subgoal {unknown[0]!r} "
                         f"(the most common: {', '.join(map(repr, common))})")
    out = np.ones(len(table.subgoals), np.int64)
    for name, w in weights.items():
        out[code[name]] = w
    return out


def build_tokenizer(table: StepTable, min_count: int = 1, indices: np.ndarray | None = None) -> Tokenizer:
    """The word vocabulary of the tasks and subgoals of ``table`` (of rows ``indices``
    when given, e.g. the training split). Words are counted once per step they occur in,
    exactly as ``Tokenizer.build`` over every step's task and subgoal would."""
    rows = slice(None) if indices is None else np.asarray(indices, np.int64)
    counts: Counter[str] = Counter()
    for codes, strings in ((table.task[rows], table.tasks), (table.subgoal[rows], table.subgoals)):
        per_string = np.bincount(codes, minlength=len(strings))
        for s, c in zip(strings, per_string.tolist()):
            if c:
                for w in words(s):
                    counts[w] += c
    kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return Tokenizer([*SPECIALS, *(w for w in kept if w not in SPECIALS)])


def describe(table: StepTable) -> dict[str, Any]:
    """Counts for the command line: episodes, steps, steps per actor, teacher coverage."""
    n = len(table)
    per_actor = np.bincount(table.actor[table.actor >= 0].astype(np.int64), minlength=len(ACTORS))
    return {
        "runs": len({ep.run_dir for ep in table.episodes}),
        "episodes": len(table.episodes),
        "steps": n,
        "actors": {a: int(c) for a, c in zip(ACTORS, per_actor.tolist()) if c},
        "with_probs": float(table.has_probs.mean()) if n else 0.0,
        "tasks": len(set(table.task.tolist())),
        "subgoals": len(set(table.subgoal.tolist())),
        "n_actions": table.n_actions,
        "frame_mb": round(table.frame_data.nbytes / 2**20, 1),
        "dropped": dict(table.stats),
    }


# -- samples ---------------------------------------------------------------------------

def _pad(ids: list[int], length: int, value: int) -> list[int]:
    return ids[:length] + [value] * (length - len(ids[:length]))


class DistillDataset(Dataset):
    """Rows ``indices`` of ``table`` as samples for both levels (see the module docstring).

    Each item is a dict of tensors: ``frame`` uint8 [C, H, W]; ``task`` long
    [max_task_len] (no BOS/EOS, PAD-padded); ``history`` long [history] (oldest first,
    ``n_actions`` before the episode start); ``subgoal_in`` long [max_subgoal_len]
    (BOS + words, PAD-padded); ``subgoal_out`` long [max_subgoal_len] (words + EOS,
    -100-padded); ``action`` long []; ``teacher_probs`` float32 [n_actions] (zeros when
    missing); ``has_probs`` bool []; with ``model_cfg.memory`` also ``memory`` uint8
    [S, S, 4], the student's map (the table must be loaded with ``memory=S``); with
    ``model_cfg.clock`` also ``clock`` long [], the env's step counter (the steps played);
    with ``model_cfg.landmarks`` also ``landmarks`` int8 [R, 2], the nearest landmarks'
    offsets and the rows read after them (R: ``distill.landmarks.Reads.rows``);
    with ``model_cfg.walk_target`` also ``walk_end`` long [], where the teacher's walk ends
    (``distill.visual_memory.NO_WALK`` where the step is not one of its moves).
    """

    def __init__(self, table: StepTable, indices: Sequence[int] | np.ndarray, tokenizer: Tokenizer,
                 model_cfg: ModelConfig):
        self.table = table
        self.indices = np.asarray(indices, np.int64)
        if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= len(table)):
            raise IndexError(f"indices out of range for a table of {len(table)} steps")
        self.tokenizer = tokenizer
        self.history = int(model_cfg.history)
        self.memory = int(model_cfg.memory)
        self.clock = bool(model_cfg.clock)
        self.walks = bool(model_cfg.walk_target)
        self.landmarks = int(model_cfg.landmarks)
        if self.landmarks and table.landmarks is None:
            raise ValueError(f"model.landmarks is {self.landmarks}, the step table has none "
                             f"(load_steps(..., landmarks={self.landmarks}))")
        reads = Reads.of(model_cfg)
        if reads is not None and table.landmarks.shape[1] != reads.rows:
            raise ValueError(f"the model reads {reads.options()}: {reads.rows} landmark rows, the step table's "
                             f"landmarks have {table.landmarks.shape[1]} (load_steps(..., landmarks={reads}))")
        if self.walks and table.walk_end is None:
            raise ValueError("model.walk_target is on, the step table has no walk ends (load_steps(..., walks=True))")
        if self.memory and (table.memory is None or table.memory.shape[1] != self.memory):
            have = "no maps" if table.memory is None else f"maps of {table.memory.shape[1]} cells"
            raise ValueError(f"model.memory is {self.memory}, the step table has {have} "
                             f"(load_steps(..., memory={self.memory}))")
        self.n_actions = table.n_actions
        lt, ls = int(model_cfg.max_task_len), int(model_cfg.max_subgoal_len)
        # Every distinct string is tokenized once, here.
        self._task = torch.tensor([_pad(tokenizer.encode(s, max_len=lt), lt, PAD) for s in table.tasks]
                                  or [[PAD] * lt], dtype=torch.long)
        self._sub_in = torch.tensor(
            [_pad(tokenizer.encode(s, max_len=ls, bos=True), ls, PAD) for s in table.subgoals]
            or [[PAD] * ls], dtype=torch.long)
        self._sub_out = torch.tensor(
            [_pad(tokenizer.encode(s, max_len=ls, eos=True), ls, IGNORE_INDEX) for s in table.subgoals]
            or [[IGNORE_INDEX] * ls], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int | Sequence[int]) -> dict[str, torch.Tensor]:
        """Sample ``k``; for a sequence of positions, those samples as one batch (each
        tensor stacked), built column by column: ~4x faster than one sample at a time.
        The trainer's loader asks for whole batches (``batch_size=None``)."""
        if isinstance(k, (int, np.integer)):
            return {key: value[0] for key, value in self[[k]].items()}
        t = self.table
        rows = self.indices[np.asarray(k, np.int64)]
        frames = np.stack([t.frame(i) for i in rows])
        sub = torch.from_numpy(t.subgoal[rows].astype(np.int64))
        extra = {"memory": torch.from_numpy(t.memory[rows])} if self.memory else {}
        if self.clock:
            extra["clock"] = torch.from_numpy(t.t[rows].astype(np.int64))
        if self.landmarks:
            extra["landmarks"] = torch.from_numpy(t.landmarks[rows])
        if self.walks:
            extra["walk_end"] = torch.from_numpy(t.walk_end[rows].astype(np.int64))
        return {
            **extra,
            "frame": torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2))),
            "task": self._task[torch.from_numpy(t.task[rows].astype(np.int64))],
            "history": torch.from_numpy(t.histories(rows, self.history)),
            "subgoal_in": self._sub_in[sub],
            "subgoal_out": self._sub_out[sub],
            "action": torch.from_numpy(t.action[rows].astype(np.int64)),
            "teacher_probs": torch.from_numpy(t.teacher_probs[rows].astype(np.float32)),
            "has_probs": torch.from_numpy(t.has_probs[rows].astype(bool)),
        }
