"""How a player spends Crafter's nights, replayed from its recorded episodes.

Crafter's zombies spawn on grass in the dark and kill a player in the open; the
teacher survives by walling itself into a two-cell pocket at dusk and sleeping there.
Whether a student does the same is what decides its first night, and no score or
offline metric shows it. :func:`night_report` replays each episode from its seed and
the actions it carried out (the same env, the same steps; a DAgger rollout's ``taken``,
not its labels) and reads the player's view at every step:

- **enclosed**: the open ground the player can reach (grass, sand or path, and the
  creatures and saplings standing on it; four-neighbour steps inside the view) is at
  most ``limit`` cells, its own included, and does not touch the view's edge: nothing
  that walks can reach it from outside (zombies spawn six cells away or more). Water counts as a wall (zombies do not swim; arrows
  fly over it, which this measure ignores).
- per episode: the first enclosed step of day 0 from ``DUSK`` on, the stone carried at
  ``DUSK_CHECK``, and, for an episode that died on day 0, why: it died by then,
  was never enclosed (with or without the stone to wall itself in), left its pocket, or
  died enclosed.
- over all days: the share of the dark steps (``DARK`` of each day) spent enclosed, and
  asleep.
- for an episode that ended in death, what the view and the vitals show of why
  (:func:`death_cause`): a move onto lava, a zombie beside the player, a skeleton in
  bow range (or its arrow beside the player), a vital (food, drink, energy) at 0, or
  none of these.
- what the player said it was doing from ``DUSK`` to the end of day 0: the share of
  those steps under each recorded subgoal (the teacher's errands, ``build shelter``,
  ``sleep``...; a student's own predictions; a DAgger rollout's labels).

An episode that does not replay (its achievements or its end differ from the record) is
a one-line ``ValueError``: it was recorded by another version of the env, or its index
was edited.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import envs
from distill.landmarks import shut_in
from distill.visual_memory import MOVES
from envs.crafter_env import DAY_LENGTH, CrafterEnv
from envs.episodes import EpisodeMeta, carried_out, episode_dir, read_run, read_steps
from envs.observation import Observation

OPEN_GROUND = frozenset(("grass", "sand", "path"))
# what stands on open ground and moves off it, or is trampled (zombies destroy saplings)
ON_OPEN_GROUND = frozenset(("player", "zombie", "skeleton", "cow", "arrow", "plant", "ripe_plant"))
_OPEN_NAMES = sorted(OPEN_GROUND | ON_OPEN_GROUND)
DUSK = 120  # the teacher turns to its shelter from step 125 of each day
DUSK_CHECK = 150  # the stone carried then: two walls at least are needed in the open
DARK = (180, 285)  # the steps of each day when Crafter is dark enough for zombies to crowd
ENDINGS = ("by step 150", "never enclosed, under 2 stone at step 150", "never enclosed, 2+ stone at step 150",
           "left its pocket", "in its pocket")
DEATHS = ("lava", "zombie", "skeleton", "a vital at 0", "other")
ZOMBIE_REACH, BOW_REACH = 1, 5  # Crafter's zombies strike from one step (four-neighbour), skeletons shoot from five


def enclosed(view: np.ndarray, limit: int = 3) -> bool:
    """Whether the open ground reachable from the player (the view's centre) is at most
    ``limit`` cells, its own included, and stays inside the view."""
    return shut_in(np.isin(view, _OPEN_NAMES), limit)


@dataclass
class EpisodeNights:
    episode_id: str
    seed: int
    length: int
    first_enclosed: int | None  # day 0, from DUSK on
    stone_at_dusk: int | None  # at DUSK_CHECK; None if the episode ended before
    ending: str | None  # for an episode that died on day 0, one of ENDINGS
    dark_steps: int  # live steps in DARK over all days
    dark_enclosed: int
    dark_asleep: int
    death: str | None = None  # one of DEATHS when the episode ended in death


def death_cause(before: Observation, action: str, after: Observation) -> str:
    """Why the player died taking ``action`` from ``before`` to ``after``, as far as the
    view and the vitals tell: the first of :data:`DEATHS` that holds. A zombie counts
    within one step more than it strikes from (it may have moved since), an arrow beside
    the player (it is gone once it hits) stands for its skeleton."""
    view = before.local_view
    r, c = view.shape[0] // 2, view.shape[1] // 2
    dx, dy = MOVES.get(action, (0, 0))
    if (dx or dy) and view[r + dy, c + dx] == "lava":
        return "lava"
    view = after.local_view
    rows, cols = np.indices(view.shape)
    dist = np.abs(rows - r) + np.abs(cols - c)
    if (view[dist <= ZOMBIE_REACH + 1] == "zombie").any():
        return "zombie"
    if (view[dist <= BOW_REACH] == "skeleton").any() or (view[dist <= 2] == "arrow").any():
        return "skeleton"
    if any(after.vitals.get(k, 1) <= 0 for k in ("food", "drink", "energy")):
        return "a vital at 0"
    return "other"


def replayed(meta: EpisodeMeta, actions: Sequence[int], what: str
             ) -> Iterator[tuple[CrafterEnv, Observation, int, Observation, bool]]:
    """One recorded episode replayed from its seed, a step at a time: (the env, the
    observation the action was taken from, the action, the observation after it, whether
    the player died). What ``what`` names is read from it (in the errors): an episode
    that is not seeded Crafter, ends early or ends with other achievements than the
    record's is a one-line ``ValueError``."""
    if meta.seed is None or meta.env != "crafter":
        raise ValueError(f"episode {meta.episode_id}: {what} are read from seeded Crafter episodes "
                         f"(env {meta.env!r}, seed {meta.seed})")
    env = envs.make("crafter", max_steps=max(len(actions), 1))
    obs, _ = env.reset(seed=meta.seed)
    over = False
    for t, action in enumerate(actions):
        if over:
            raise ValueError(f"episode {meta.episode_id} ended at step {t} of {len(actions)} when replayed "
                             "from its seed: recorded by another env?")
        after, _, terminated, truncated, _ = env.step(int(action))
        yield env, obs, int(action), after, terminated
        obs, over = after, terminated or truncated
    if set(meta.achievements) != set(obs.achievements):
        raise ValueError(f"episode {meta.episode_id} does not replay from seed {meta.seed}: achievements "
                         f"{sorted(obs.achievements)} against the recorded {sorted(meta.achievements)}")


def replay_nights(meta: EpisodeMeta, actions: Sequence[int], limit: int = 3) -> EpisodeNights:
    """One recorded episode, replayed from its seed."""
    first = stone = None
    dark = dark_in = dark_asleep = 0
    terminated = False
    env = before = obs = None
    for env, before, _, obs, terminated in replayed(meta, actions, "nights"):
        now = enclosed(before.local_view, limit)
        if before.step == DUSK_CHECK:
            stone = before.inventory.get("stone", 0)
        if now and first is None and DUSK <= before.step < DAY_LENGTH:
            first = before.step
        if DARK[0] <= before.step % DAY_LENGTH < DARK[1]:
            dark += 1
            dark_in += now
            dark_asleep += bool(before.extras.get("sleeping"))
    ending = None
    if terminated and len(actions) < DAY_LENGTH:  # died on day 0
        if len(actions) <= DUSK_CHECK:
            ending = ENDINGS[0]
        elif first is None:
            ending = ENDINGS[1] if (stone or 0) < 2 else ENDINGS[2]
        else:
            ending = ENDINGS[4] if enclosed(obs.local_view, limit) else ENDINGS[3]
    death = death_cause(before, env.action_names[int(actions[-1])], obs) if terminated else None
    return EpisodeNights(meta.episode_id, meta.seed, len(actions), first, stone, ending, dark, dark_in, dark_asleep,
                         death)


def dusk_subgoals(subgoals: Sequence[str | None]) -> Counter[str]:
    """The subgoals of one episode's steps ``DUSK`` to the end of day 0, counted."""
    return Counter(s or "(none)" for s in subgoals[DUSK:DAY_LENGTH])


def night_report(run_dirs: Sequence[Path], limit: int = 3) -> dict[str, Any]:
    """Every episode of ``run_dirs`` replayed: the summary and the per-episode rows."""
    rows = []
    dusk: Counter[str] = Counter()
    for run in map(Path, run_dirs):
        for meta in read_run(run):
            steps = read_steps(episode_dir(run, meta.episode_id), ["action", "taken", "subgoal"])
            rows.append(replay_nights(meta, carried_out(steps).tolist(), limit))
            dusk.update(dusk_subgoals(steps.column("subgoal").to_pylist()))
    n = len(rows)
    firsts = [r.first_enclosed for r in rows if r.first_enclosed is not None]
    dark = sum(r.dark_steps for r in rows)
    endings = Counter(r.ending for r in rows if r.ending is not None)
    deaths = Counter(r.death for r in rows if r.death is not None)
    return {
        "episodes": n,
        "died_on_day_0": sum(r.ending is not None for r in rows),
        "enclosed_on_day_0": len(firsts) / n,
        "first_enclosed_median": float(np.median(firsts)) if firsts else None,
        "dark_steps": dark,
        "dark_enclosed": sum(r.dark_enclosed for r in rows) / dark if dark else None,
        "dark_asleep": sum(r.dark_asleep for r in rows) / dark if dark else None,
        "day_0_endings": {e: endings[e] for e in ENDINGS},
        "deaths": {d: deaths[d] for d in DEATHS},
        "dusk_subgoals": {k: round(v / dusk.total(), 3) for k, v in dusk.most_common()},
        "per_episode": [asdict(r) for r in rows],
    }
