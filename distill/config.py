"""The distillation config: ``configs/distill/<size>.yaml``, validated here.

Four sections: ``model`` (the student's shape), ``data`` (which steps become samples),
``train`` (optimisation, checkpoints) and ``dagger`` (mirrored distillation rounds).
A wrong key or type is a one-line :class:`DistillConfigError` before anything runs.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from envs.crafter_env import DAY_LENGTH

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs" / "distill"
# The temperature a student samples its actions at when it plays, unless told otherwise
# (`agent.temperature`, `bench_distill.py --temperature`). 0.8, not 1: over twelve
# students of sessions 34-47, each on 200 held-out seeds against its own plays at 1, 0.8
# was better for ten, +1.45 on average for the last nine (95 % [+0.37, +2.49]);
# docs/distill-results.md, session 47. Scores logged before then were sampled at 1.
PLAY_TEMPERATURE = 0.8


class DistillConfigError(ValueError):
    """A configuration problem, phrased for the command line."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(_Section):
    d_model: int = Field(128, ge=8, description="width of the transformer")
    n_layers: int = Field(4, ge=1)
    n_heads: int = Field(4, ge=1)
    d_ff: int = Field(512, ge=8, description="hidden width of each MLP")
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    image_encoder: Literal["patch", "conv"] = Field(
        "patch", description="patch: one token per patch_size square (Crafter's 7-pixel cells); conv: a CNN pooled to a grid")
    frame_size: int = Field(64, ge=8, description="frames are frame_size x frame_size pixels")
    patch_size: int = Field(7, ge=1, description="patch: pixels per token side (64 // 7 = 9 tokens across)")
    image_grid: int = Field(6, ge=1, le=64, description="conv: image tokens per side (grid x grid tokens)")
    conv_channels: list[int] = Field([32, 64], description="conv: channels of the CNN stem before the grid")
    history: int = Field(8, ge=0, description="previous actions the student sees")
    max_task_len: int = Field(8, ge=1, description="task tokens (longer tasks are cut)")
    max_subgoal_len: int = Field(8, ge=2, description="subgoal tokens including BOS/EOS")
    vlm_path: str | None = Field(None, description="a local pretrained VLM folder instead (never downloaded)")
    memory: int = Field(0, ge=0, description="cells per side of the student's map of what it saw "
                        "(distill/visual_memory.py): odd, at least 9; 0: no map, the frame alone")
    memory_patch: int = Field(3, ge=1, description="map cells per memory token side (memory must be a multiple)")
    clock: int = Field(0, ge=0, description="steps in the env's day (Crafter: 300): the student reads the time of "
                       "day, the steps it has played mod clock, as one token; 0: no clock")
    clock_bin: int = Field(5, ge=1, description="steps per reading of the clock (one embedding each)")
    walk_target: bool = Field(False, description="a second head at the action position, trained to say where the "
                              "teacher's walk ends: one of the view's cells, or beyond it (Crafter; "
                              "distill/visual_memory.py walk_ends); weighted by train.walk_weight, not read in play")

    landmarks: int = Field(0, ge=0, description="cells per side of the map of what the student saw, read as the "
                           "nearest water, tree, stone, table, cow, pocket... (Crafter; distill/landmarks.py): one "
                           "token each; odd, at least 9; 0: none")
    landmark_view: bool = Field(False, description="with landmarks: each cell of the view as the class map has it "
                                "(its texture, and whether only remembered: in the dark the map still holds the "
                                "ground), added to the image token of that cell (patch encoder, 64-pixel frames)")
    walled: bool = Field(False, description="with landmarks: whether the player is walled in on the class map (the "
                         "open ground it can reach is at most 3 cells; distill/landmarks.py walled), added to the "
                         "pocket's token: the teacher sleeps only walled in")
    walls_needed: bool = Field(False, description="with landmarks: the fewest cells the player must wall up to be "
                               "walled in where it stands (0-4; distill/landmarks.py walls_needed), added "
                               "to the pocket's token: how far the walling is from done")
    plant_clock: bool = Field(False, description="with landmarks: the nearest sapling's growth (the steps since "
                              "it was first seen, in 25s, up to 300: ripe) and how many of its sides a cow or a "
                              "zombie could step on (distill/landmarks.py LandmarkMemory.plant), added to the "
                              "plant's token: when to come back to it, what is left to wall")
    plant_spot: bool = Field(False, description="with landmarks: one landmark token more, the grass cell near the "
                             "player the teacher would plant a sapling on, its sides mostly walls already "
                             "(distill/landmarks.py plant_spot): where a sapling ripens rather than being eaten")
    routes: bool = Field(False, description="with landmarks: the way to each landmark on the class map, the moves "
                         "that start a shortest walk there and its steps (distill/landmarks.py routes), added to "
                         "the landmark's token: the offsets say where a thing is, not the way around what is between")
    inventory: bool = Field(False, description="the counts Crafter draws below the world (health, food, drink, "
                            "energy, each item), read exactly off the frame (distill/inventory.py), one learned "
                            "vector per cell and count added to that cell's image token (patch encoder, 64-pixel "
                            "frames, 7-pixel patches)")

    @model_validator(mode="after")
    def _memory_shape(self) -> ModelConfig:
        if self.memory and (self.memory < 9 or self.memory % 2 == 0 or self.memory % self.memory_patch):
            raise ValueError(f"memory {self.memory} must be 0, or odd, at least 9 and a multiple of "
                             f"memory_patch {self.memory_patch}")
        if self.landmarks and (self.landmarks < 9 or self.landmarks % 2 == 0 or self.landmarks > 255):
            raise ValueError(f"landmarks {self.landmarks} must be 0, or odd, from 9 to 255")
        if self.landmark_view and not (self.landmarks and self.image_encoder == "patch" and not self.vlm_path
                                       and self.frame_size // self.patch_size == 9):
            raise ValueError("landmark_view needs model.landmarks, and the patch encoder with one token a cell "
                             "(frame_size 64, patch_size 7, no vlm_path)")
        if self.inventory and not (self.image_encoder == "patch" and not self.vlm_path and self.frame_size == 64
                                   and self.patch_size == 7):
            raise ValueError("inventory needs the patch encoder with one token a Crafter cell "
                             "(frame_size 64, patch_size 7, no vlm_path)")
        if self.walled and not self.landmarks:
            raise ValueError("walled is read on the landmarks' class map: it needs model.landmarks")
        if self.walls_needed and not self.landmarks:
            raise ValueError("walls_needed is read on the landmarks' class map: it needs model.landmarks")
        if self.plant_clock and not self.landmarks:
            raise ValueError("plant_clock is read on the landmarks' class map: it needs model.landmarks")
        if self.plant_spot and not self.landmarks:
            raise ValueError("plant_spot is read on the landmarks' class map: it needs model.landmarks")
        if self.routes and not self.landmarks:
            raise ValueError("routes are read on the landmarks' class map: they need model.landmarks")
        return self


class DataConfig(_Section):
    actors: list[Literal["teacher", "student", "expert-relabelled"]] = Field(
        ["teacher", "expert-relabelled"], description="keep steps taken by these actors")
    min_return: float | None = Field(None, description="keep episodes with at least this return")
    min_achievements: int = Field(0, ge=0, description="keep episodes that unlocked at least this many")
    success_only: bool = Field(False, description="keep only steps whose subgoal was reached")
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="episodes held out for validation")
    split_seed: int = Field(0, description="the train/validation split is a hash of (seed, episode id)")
    min_word_count: int = Field(1, ge=1, description="rarer words become <unk> in the tokenizer")
    relabelled_weight: int = Field(1, ge=1, description="an expert-relabelled (DAgger) step is drawn this "
                                   "many times as often as a teacher step")
    rare_action_weight: int = Field(1, ge=1, description="a step whose action is rarer than rare_action_below "
                                    "is drawn this many times as often (placing and crafting are one step each)")
    rare_action_below: float = Field(0.01, ge=0, le=1, description="the share of the training steps below "
                                     "which an action counts as rare")
    change_weight: int = Field(1, ge=1, description="a step whose action differs from the action before it "
                               "(a decision, not a repeat) is drawn this many times as often: a student that "
                               "reads its last actions otherwise learns to repeat them")
    subgoal_weights: dict[str, Annotated[int, Field(ge=1)]] = Field(
        {}, description="a step whose subgoal is named here is drawn this many times as often, e.g. "
        "{build shelter: 3}: the few steps that decide whether the player lives through a night")
    skip_asleep: bool = Field(True, description="drop the steps taken asleep (a 'sleep' carried out after a "
                              "'sleep'): Crafter ignores the action until the player wakes")
    relabelled_skip: list[str] = Field([], description="subgoals whose expert-relabelled (DAgger) steps are "
                                       "dropped, e.g. [build shelter]: on the student's states the teacher labels "
                                       "the first step of its walk to a pocket it remembers, seldom a wall")


class TrainConfig(_Section):
    steps: int = Field(2000, ge=1, description="optimiser steps")
    batch_size: int = Field(64, ge=1, description="samples per optimiser step (over all accumulation micro-batches)")
    grad_accum: int = Field(1, ge=1)
    lr: float = Field(1e-3, gt=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="the cosine schedule ends at lr * this")
    warmup: int = Field(100, ge=0, description="linear warm-up steps")
    weight_decay: float = Field(0.01, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    action_loss: Literal["ce", "fkl", "rkl", "jsd", "skew_fkl", "skew_rkl", "taid"] = Field(
        "fkl", description="loss on the action head where teacher distributions exist (else CE)")
    beta: float = Field(0.5, ge=0, le=1, description="JSD(beta)")
    alpha: float = Field(0.1, ge=0, le=1, description="skew KL(alpha)")
    temperature: float = Field(1.0, gt=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    mirror: float = Field(0.0, ge=0, le=1, description="share of the training samples mirrored left to right "
                          "(Crafter only: the world view flipped, the inventory kept, move_left and move_right "
                          "swapped in the action, the history and the teacher's distribution)")
    subgoal_weight: float = Field(0.5, ge=0, description="weight of the plan-level (subgoal text) loss")
    walk_weight: float = Field(0.5, ge=0, description="weight of the walk head's loss (model.walk_target)")
    history_dropout: float = Field(0.0, ge=0, le=1, description="share of the training samples whose action "
                                   "history is hidden (all 'no action'), so that the frame, not the last "
                                   "actions, decides: a student trained on its teacher's histories copies them")
    eval_every: int = Field(500, ge=1)
    save_every: int = Field(500, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    log_every: int = Field(50, ge=1)
    workers: int = Field(0, ge=0, description="DataLoader worker processes")
    compile: bool = Field(False, description="torch.compile the model")
    ema: float = Field(0.0, ge=0, lt=1, description="decay of a moving average of the weights, saved with each "
                       "checkpoint and then the student that plays and is validated (0: none)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 0


class DaggerConfig(_Section):
    rounds: int = Field(2, ge=1, description="rounds of roll out, label, retrain (run again with more to go on)")
    episodes: int = Field(8, ge=1, description="rollouts per round (seeds seed .. seed+episodes-1)")
    seed: int = Field(0, ge=0, description="first seed: the teacher's own seeds mirror its worlds")
    max_steps: int = Field(10000, ge=1)
    beta: list[float] = Field([0.5, 0.0], description="teacher control per round; the last repeats")
    workers: int = Field(2, ge=1, description="parallel rollout processes")
    steps_per_round: int = Field(1000, ge=1, description="optimiser steps after each round")
    teacher_prior: Literal["full", "partial", "none"] = "full"
    teacher_farm_at_dusk: bool = Field(True, description="whether the labelling teacher plants or goes home at "
                                       "dusk: false for data from steve distill teacher --no-farm-at-dusk")
    teacher_memory: int | None = Field(None, ge=0, description="steps the labelling teacher's map keeps a cell "
                                       "out of view (null: the whole episode): the --memory of steve distill "
                                       "teacher that recorded the episodes")
    teacher_near_pocket: int | None = Field(None, ge=0, description="cells within which the labelling teacher "
                                            "shelters first (null: off): the --near-pocket of steve distill "
                                            "teacher that recorded the episodes")
    teacher_stop_when_sealed: bool = Field(False, description="the labelling teacher's night errands end once the "
                                           "player is sealed in, whoever walled it in: sealed in by the student, "
                                           "it labels sleep rather than the walk out to the pocket it chose")
    teacher_replan: bool = Field(False, description="the labelling teacher's night errands start over from where "
                                 "the player stands after each step the student played otherwise: each label is "
                                 "the teacher's first action from that state, not a step toward the pocket it "
                                 "chose (or gave up as failed) where it stood before")
    teacher_check: bool = Field(True, description="the labelling teacher must be the one that recorded the teacher "
                                "episodes (its options read from their config hash); false labels with another, "
                                "an experiment: the student then learns from two teachers at once")
    student_window: tuple[int, int] = Field((0, DAY_LENGTH), description="the steps of each 300-step Crafter day in "
                                            "which the student may take control ([start, end)); the teacher "
                                            "plays the rest. [120, 300]: the teacher plays the mornings, the "
                                            "student meets the nights its rollouts are relabelled on")

    @field_validator("student_window")
    @classmethod
    def _window(cls, w: tuple[int, int]) -> tuple[int, int]:
        if not 0 <= w[0] < w[1] <= DAY_LENGTH:
            raise ValueError(f"needs 0 <= start < end <= {DAY_LENGTH}, steps of a Crafter day")
        return w


class DistillConfig(_Section):
    size: str = "custom"
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    dagger: DaggerConfig = DaggerConfig()

    @model_validator(mode="after")
    def _mirrored_view(self) -> DistillConfig:
        if self.train.mirror and self.model.landmark_view:
            raise ValueError("train.mirror does not mirror model.landmark_view's cells: use one or the other")
        if self.train.mirror and self.model.routes:
            raise ValueError("train.mirror does not mirror model.routes' moves: use one or the other")
        if self.train.mirror and self.model.plant_spot:
            raise ValueError("train.mirror does not mirror model.plant_spot (its ties go to the left): use one or "
                             "the other")
        return self

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:12]


# YAML layering, shared with ``steve.config`` (which may import this module; the
# reverse would tie distill to the command line). ``error`` is the caller's error class.
def read_yaml(path: Path, error: type[Exception] = DistillConfigError) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise error(f"config file not found: {path}") from None
    except yaml.YAMLError as err:
        raise error(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping at the top level")
    return data


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` laid on ``base``, mappings merged key by key; neither is changed."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def parse_override(text: str, error: type[Exception] = DistillConfigError,
                   example: str = "train.steps=100") -> dict[str, Any]:
    """``a.b=c`` -> ``{"a": {"b": c}}`` with ``c`` read as YAML (numbers, bools, lists)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise error(f"--set {text!r}: expected KEY=VALUE, e.g. {example}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    out: dict[str, Any] = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def validate(data: dict[str, Any]) -> DistillConfig:
    try:
        return DistillConfig.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        if first["type"] == "extra_forbidden":
            raise DistillConfigError(f"distill config: unknown key {loc!r}") from None
        got = first.get("input")
        got_txt = f" (got {got!r})" if not isinstance(got, dict) else ""
        raise DistillConfigError(f"distill config: {loc}: {first['msg']}{got_txt}") from None


def _config_path(config: str | Path, folder: Path | None = None) -> Path:
    """A shipped config's name (``fast``: ``configs/distill/fast.yaml``) or a YAML path, read
    from ``folder`` when relative (the folder of the file that names it)."""
    path = Path(config)
    if not path.suffix and not (folder or Path()).joinpath(path).exists():
        return CONFIG_DIR / f"{config}.yaml"
    return path if folder is None or path.is_absolute() else folder / path


def _read_layers(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The file's mapping laid on the one it ``extends`` (a shipped name or a path), recursively."""
    data = read_yaml(path)
    base = data.pop("extends", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base.strip():
        raise DistillConfigError(f"{path}: extends: expected a config name or a YAML path (got {base!r})")
    base_path = _config_path(base, path.parent)
    if base_path.resolve() in {*seen, path.resolve()}:
        raise DistillConfigError(f"{path}: extends {base!r}, which extends it back")
    return merge(_read_layers(base_path, (*seen, path.resolve())), data)


def load(config: str | Path = "small", overrides: list[str] | None = None) -> DistillConfig:
    """A shipped config's name (``tiny``, ``fast``, ``small``, ``base``, ``crafter``) or a YAML
    path, then ``--set`` overrides. A file may start from another: ``extends: fast`` (a name,
    or a path relative to the file), its own keys laid over that one's."""
    path = _config_path(config)
    data = _read_layers(path)
    data.setdefault("size", path.stem)
    for text in overrides or []:
        data = merge(data, parse_override(text))
    return validate(data)
