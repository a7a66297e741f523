"""What becomes of the saplings a player plants in Crafter, replayed from its recorded episodes.

Eating a plant is worth as much to the score as any achievement, and it is where the
students lose most (docs/distill-results.md, session 48): a sapling ripens after 300
updates (the game updates only what is within 18 cells of the player), and dies the
first update a cow, zombie or skeleton stands beside it. No score or offline metric
shows why a player's plants fail; :func:`plant_report` replays each episode from its
seed (:func:`distill.nights.replayed`) and follows every plant object in the game:

- **open sides** some steps after it was planted (:data:`SIDES_AFTER`): ground beside
  it with nothing on it, where a creature could step; walled, a sapling has none.
- its end: **lost** (gone before it ripened: a creature beside it), **ripened**, and
  of the ripened, **eaten** by the player while ripe; or still growing when the episode
  ended.
- per episode: planted at all, and whether it ate a plant.

``min_length`` keeps the episodes that lived at least so many steps: a plant needs 300
of them, so a short episode says little of how its player farms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from distill.nights import replayed
from envs.crafter_env import PLANT_RIPE
from envs.episodes import EpisodeMeta, carried_out, episode_dir, read_run, read_steps

SIDES_AFTER = 15  # the steps after planting at which the open sides are counted


@dataclass
class Plant:
    planted: int  # the step it appeared
    open_sides: int | None = None  # SIDES_AFTER steps later; None if it was gone by then
    ripened: int | None = None  # the step it was first ripe
    eaten: int | None = None  # the step the player first ate it, ripe
    lost: int | None = None  # the step it was gone, unripe


@dataclass
class EpisodePlants:
    episode_id: str
    seed: int
    length: int
    ate_plant: bool
    plants: list[Plant] = field(default_factory=list)


def follow_plants(meta: EpisodeMeta, actions: Sequence[int]) -> EpisodePlants:
    """One recorded episode, replayed from its seed, each plant followed."""
    alive: dict[int, Plant] = {}
    out = EpisodePlants(meta.episode_id, int(meta.seed or 0), len(actions), "eat_plant" in meta.achievements)
    for env, _, _, after, _ in replayed(meta, actions, "plants"):
        now = {key: (grown, sides) for key, _, grown, sides in env.plants()}
        for key, plant in list(alive.items()):
            if key not in now:
                if plant.ripened is None:
                    plant.lost = after.step
                del alive[key]
        for key, (grown, sides) in now.items():
            plant = alive.get(key)
            if plant is None:
                plant = alive[key] = Plant(planted=after.step)
                out.plants.append(plant)
            if after.step - plant.planted == SIDES_AFTER:
                plant.open_sides = sides
            if grown > PLANT_RIPE and plant.ripened is None:
                plant.ripened = after.step
            if plant.ripened is not None and plant.eaten is None and grown <= PLANT_RIPE:
                plant.eaten = after.step  # eaten ripe: the game sets it growing from 0 again
    return out


def plant_report(run_dirs: Sequence[Path], min_length: int = 0) -> dict[str, Any]:
    """Every episode of ``run_dirs`` that lived ``min_length`` steps, replayed: the summary
    and the per-episode rows."""
    rows = []
    for run in map(Path, run_dirs):
        for meta in read_run(run):
            if meta.length < min_length:
                continue
            steps = read_steps(episode_dir(run, meta.episode_id), ["action", "taken"])
            rows.append(follow_plants(meta, carried_out(steps).tolist()))
    plants = [p for r in rows for p in r.plants]
    sides = [p.open_sides for p in plants if p.open_sides is not None]
    ripened = [p for p in plants if p.ripened is not None]

    def share(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    return {
        "episodes": len(rows),
        "planted": share(sum(bool(r.plants) for r in rows), len(rows)),
        "ate_plant": share(sum(r.ate_plant for r in rows), len(rows)),
        "plants": len(plants),
        f"open_sides_after_{SIDES_AFTER}": sum(sides) / len(sides) if sides else None,
        "lost_unripe": share(sum(p.lost is not None for p in plants), len(plants)),
        "ripened": share(len(ripened), len(plants)),
        "eaten_of_ripened": share(sum(p.eaten is not None for p in ripened), len(ripened)),
        "per_episode": [asdict(r) for r in rows],
    }
