"""The student playing alone: frame and task in, one action out, nothing else.

``steve run --agent student --checkpoint CKPT`` plays it like any agent. Each decision
writes the student's own subgoal (greedy, see :meth:`distill.model.Student.decide`)
and then picks the action from the action head: the most likely one, or a sample at
``temperature`` (by default :data:`distill.config.PLAY_TEMPERATURE`, 0.8; under the
subgoals ``subgoal_temperature`` names, its own, 0 the most likely action) when ``sample``
is set (seeded per episode), leaving out the actions less than ``min_p`` times as likely
as the most likely one (min-p sampling; 0 keeps them all).
A sample breaks the loops a greedy student falls into; the cut is meant to keep it from
the rare draw into lava or onto a zombie, but on the seeds measured so far it made no
difference to the score (docs/distill-results.md, session 10). The subgoal goes into the
recorded steps (``actor`` "student") and the video captions, as the teacher's does.
Given a subgoal (``choose(obs, subgoal)``), the student acts on it instead of its own:
the teacher's, in ``steve distill play --plans teacher``, which asks how much of the
student's gap to the teacher lies in its plan level.
With ``history`` off the student never reads its last actions: it sees "no action"
there, as at an episode's start (for a student trained with ``train.history_dropout``).
A student trained with ``model.memory`` keeps its map of what it saw
(:class:`distill.visual_memory.VisualMemory`), updated from each frame and the move it
last made, whether or not it reads its history; one trained with ``model.landmarks``
keeps its class map the same way (:class:`distill.landmarks.LandmarkMemory`). A student
trained with ``model.clock`` reads the time of day from the observation's step counter
(the steps played since the reset), the counter the recorded episodes hold as ``t``.
With ``trace`` (the default) the model's passes are traced at the first decision and run
by the traces (:meth:`distill.model.Student.trace_for_play`): the same numbers, less time.
With ``avoid_lava`` (Crafter) the student never picks a move onto a cell it reads as lava
(on its class map, or in the frame when it keeps none): a rule of the game the teacher's
paths keep and the student's network, seeing lava beside it on ~0.7 % of its steps, may not.

Asleep, Crafter carries out ``sleep`` whatever the action until the player is rested, so
the history (and the map's move) records ``sleep`` for those steps: what the teacher's
episodes hold there, and what the game did. Otherwise a student waking in its shelter
reads the actions it chose in its sleep, a history it never saw in training.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from pathlib import Path

import torch

from distill.cells import CLASS, classify
from distill.checkpoint import load_student
from distill.config import PLAY_TEMPERATURE
from distill.landmarks import memory_for as landmark_memory_for
from distill.tokenizer import PAD, words
from distill.visual_memory import WORLD_COLS, WORLD_ROWS, VisualMemory, cell_colours, move_vectors
from envs import Env, Observation


class StudentAgent:
    """A trained student. ``choose`` decides without committing (DAgger swaps actions);
    ``observe`` records the action that was actually taken into the history (and the
    map). One ``choose`` per step: with a map, each reads a new frame into it."""

    name = "student"

    def __init__(self, env: Env | None = None, checkpoint: str | Path | None = None, task: str = "open",
                 sample: bool = True, temperature: float = PLAY_TEMPERATURE, min_p: float = 0.0, device: str = "cpu",
                 threads: int | None = 1, history: bool = True, trace: bool = True, keep_subgoal: float = 0.0,
                 avoid_lava: bool = False, subgoal_temperature: Mapping[str, float] | None = None):
        if checkpoint is None:
            raise ValueError("the student needs a checkpoint: --checkpoint CKPT_DIR")
        if threads:
            torch.set_num_threads(threads)
        self.model, self.ckpt = load_student(Path(checkpoint), device)
        self.env, self.device = env, device
        if not 0.0 <= min_p < 1.0:
            raise ValueError(f"min_p must be in [0, 1), got {min_p}")
        self.sample, self.temperature, self.min_p = sample, temperature, min_p
        if keep_subgoal and keep_subgoal <= 1.0:
            raise ValueError(f"keep_subgoal must be 0 (off) or above 1, got {keep_subgoal}")
        self.keep_subgoal = keep_subgoal
        self.avoid_lava = avoid_lava
        self.subgoal_temperature = self._temperatures(subgoal_temperature or {})
        self.read_history = history
        known = [(i, n) for i, n in enumerate(self.ckpt.action_names) if n]  # "": not in the training data
        if env is not None and (len(env.action_names) != self.ckpt.n_actions
                                or any(env.action_names[i] != n for i, n in known)):
            raise ValueError(f"{self.ckpt.path}: trained on actions {self.ckpt.action_names[:4]}..., "
                             f"this env has {list(env.action_names)[:4]}...")
        cfg = self.ckpt.config.model
        ids = self.ckpt.tokenizer.encode(task, max_len=cfg.max_task_len)
        self.task = torch.tensor([ids + [PAD] * (cfg.max_task_len - len(ids))], device=device)
        self.history: deque[int] = deque(maxlen=cfg.history)
        self.draft: torch.Tensor | None = None
        self.subgoal = ""
        self._given_ids: dict[str, torch.Tensor] = {}  # subgoals given to choose, encoded
        self.rng = torch.Generator().manual_seed(0)
        self.passes = 0
        self.trace = trace  # at the first decision (Student.trace_for_play); then done
        self.visual = VisualMemory(cfg.memory) if cfg.memory else None
        self.landmarks = landmark_memory_for(cfg)
        self.moves = move_vectors(self.ckpt.action_names, self.ckpt.n_actions)
        self.move = (0, 0)  # of the action observed last, not yet read into the map
        names = list(self.ckpt.action_names)
        self.sleep_action = names.index("sleep") if "sleep" in names else None
        self.asleep = False  # the game ignores the action chosen now (see the module doc)

    def reset(self, obs: Observation, seed: int) -> None:
        size = self.ckpt.config.model.frame_size
        if self.ckpt.config.model.image_encoder == "patch" and tuple(obs.frame.shape[:2]) != (size, size):
            raise ValueError(f"{self.ckpt.path}: trained on {size}x{size} frames, this env gives "
                             f"{obs.frame.shape[0]}x{obs.frame.shape[1]} (set env.crafter.size={size})")
        self.history.clear()
        self.history.extend([self.ckpt.n_actions] * self.history.maxlen)  # "no action yet"
        self.draft, self.subgoal = None, ""
        self.rng = torch.Generator().manual_seed(int(seed))
        if self.visual is not None:
            self.visual.reset()
        if self.landmarks is not None:
            self.landmarks.reset()
        self.move, self.asleep = (0, 0), False

    def choose(self, obs: Observation, subgoal: str | None = None) -> int:
        """The action for ``obs``, not yet committed (see :meth:`observe`). With ``subgoal``
        the student acts on that subgoal, another planner's (the teacher's, in
        ``steve distill play --plans teacher``), instead of writing its own."""
        self.asleep = obs.asleep
        frame = torch.tensor(obs.frame, device=self.device).permute(2, 0, 1)[None]  # a copy: frames may be read-only
        history = torch.tensor([list(self.history)], dtype=torch.long, device=self.device)
        memory = marks = None
        if self.visual is not None:
            memory = torch.from_numpy(self.visual.update(cell_colours(obs.frame), self.move))[None].to(self.device)
        if self.landmarks is not None:
            marks = torch.from_numpy(self.landmarks.update(obs.frame, self.move, obs.step))[None].to(self.device)
        self.move = (0, 0)
        clock = torch.tensor([obs.step], device=self.device) if self.ckpt.config.model.clock else None
        if self.trace:
            self.trace = False
            self.model.trace_for_play(frame, self.task, history, memory=memory, clock=clock, landmarks=marks)
        if subgoal is not None:
            sub = self._given(subgoal)
            logits, passes = self.model.act_on(frame, self.task, history, sub, memory=memory, clock=clock,
                                               landmarks=marks), 1
        else:
            sub, logits, passes = self.model.decide(frame, self.task, history, self.draft, memory=memory,
                                                    clock=clock, landmarks=marks, keep=self.keep_subgoal)
        self.passes += passes
        if self.draft is None or not torch.equal(sub, self.draft):
            self.subgoal = self.ckpt.tokenizer.decode(sub[0].tolist())
            if self.env is not None and hasattr(self.env, "annotate"):
                self.env.annotate(subgoal=self.subgoal, plan="", actor="student")
        self.draft = sub
        logits = logits[0].float()
        if self.avoid_lava:
            logits = logits.masked_fill(self._into_lava(obs), float("-inf"))
        temperature = self.subgoal_temperature.get(self.subgoal, self.temperature)
        if not self.sample or temperature == 0:
            return int(logits.argmax())
        probs = torch.softmax(logits / temperature, -1)
        if self.min_p:
            probs = torch.where(probs >= self.min_p * probs.max(), probs, 0.0)
        return int(torch.multinomial(probs, 1, generator=self.rng))

    def wrote(self, subgoal: str) -> bool:
        """Whether the last decision's subgoal is ``subgoal``, as the student would read it
        (cut and tokenized as its training data's): DAgger's teacher's, say."""
        return self.draft is not None and torch.equal(self.draft, self._given(subgoal))

    def _given(self, subgoal: str) -> torch.Tensor:
        """``subgoal`` as the action level reads it: [1, Ls] ids, BOS + words, PAD-padded, cut
        as the training data's were (a word the student never saw reads as unknown)."""
        ids = self._given_ids.get(subgoal)
        if ids is None:
            n = self.ckpt.config.model.max_subgoal_len
            said = self.ckpt.tokenizer.encode(subgoal, max_len=n, bos=True)
            ids = self._given_ids[subgoal] = torch.tensor([said + [PAD] * (n - len(said))], device=self.device)
        return ids

    def _temperatures(self, given: Mapping[str, float]) -> dict[str, float]:
        """``subgoal_temperature`` by the subgoals' text as the student decodes it; a name
        with a word it never saw (it could never say that subgoal), or a temperature below
        0, is a ValueError."""
        out = {}
        for name, temperature in given.items():
            said = words(name)
            unseen = [w for w in said if w not in self.ckpt.tokenizer.ids]
            if unseen or not said:
                raise ValueError(f"subgoal_temperature: {name!r} is not a subgoal this student can say "
                                 f"(words it never saw: {', '.join(unseen) or 'none given'})")
            if temperature < 0:
                raise ValueError(f"subgoal_temperature: {name!r} at {temperature}; a temperature is 0 (the "
                                 "most likely action) or above")
            out[" ".join(said)] = float(temperature)
        return out

    def _into_lava(self, obs: Observation) -> torch.Tensor:
        """bool [n_actions]: the moves onto a cell the student reads as lava, on its class
        map where it keeps one (which holds the ground it saw by day), else in this frame."""
        if self.landmarks is not None:
            classes, row, col = self.landmarks.classes, self.landmarks.size // 2, self.landmarks.size // 2
        else:
            classes, row, col = classify(obs.frame, obs.step), WORLD_ROWS // 2, WORLD_COLS // 2
        dx, dy = self.moves[:-1, 0].astype(int), self.moves[:-1, 1].astype(int)
        lava = (classes[row + dy, col + dx] == CLASS["lava"]) & ((dx != 0) | (dy != 0))
        return torch.from_numpy(lava).to(self.device)

    def observe(self, action: int) -> None:
        if self.asleep and self.sleep_action is not None:
            action = self.sleep_action
        self.move = tuple(self.moves[int(action)])
        if self.read_history:
            self.history.append(int(action))

    def act(self, obs: Observation) -> int:
        action = self.choose(obs)
        self.observe(action)
        return action

    def close(self) -> None:
        pass
