"""Checkpoints: safetensors weights plus JSON, loaded without unpickling.

A checkpoint directory ``CKPT/ckpt-0001000/`` holds ``model.safetensors``,
``optimizer.safetensors`` (AdamW moments, flattened to tensors), ``meta.json``
(the distill config, the tokenizer, the step, the action names, schedule state, the
landmarks' version when the student reads them) and,
when training keeps one (``train.ema``), ``ema.safetensors``: the moving average of the
weights, which is then the student that plays.
It is written as a dot-directory and renamed, and ``CKPT/latest`` names the newest, so
a process killed while saving leaves the previous checkpoint whole. ``CKPT`` itself or
any ``ckpt-*`` inside it can be passed wherever a checkpoint is expected.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from distill import landmarks
from distill.config import DistillConfig, DistillConfigError, validate
from distill.errors import CheckpointError
from distill.model import Student
from distill.tokenizer import Tokenizer

FORMAT = "steve-student-1"
LATEST = "latest"
MODEL_FILE = "model.safetensors"
EMA_FILE = "ema.safetensors"
LANDMARKS_KEY = "landmarks_version"  # in ``extra``: distill.landmarks.VERSION when trained on them


@dataclass
class Checkpoint:
    path: Path
    config: DistillConfig
    tokenizer: Tokenizer
    n_actions: int
    action_names: list[str]
    step: int
    extra: dict[str, Any] = field(default_factory=dict)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    model = getattr(model, "module", model)  # DistributedDataParallel
    return getattr(model, "_orig_mod", model)  # torch.compile


def save(root: Path, model: torch.nn.Module, ckpt: Checkpoint, optimizer: torch.optim.Optimizer | None = None,
         keep: int = 2, averaged: torch.nn.Module | None = None) -> Path:
    """Write ``root/ckpt-<step>`` atomically, point ``root/latest`` at it, keep the newest ``keep``.
    ``averaged`` (the weights' moving average) goes to ``ema.safetensors``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    name = f"ckpt-{ckpt.step:07d}"
    tmp = root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_model(_unwrap(model), str(tmp / MODEL_FILE))
    if averaged is not None:
        save_model(averaged, str(tmp / EMA_FILE))
    meta = {"format": FORMAT, "config": ckpt.config.model_dump(mode="json"), "tokenizer": ckpt.tokenizer.to_dict(),
            "n_actions": ckpt.n_actions, "action_names": ckpt.action_names, "step": ckpt.step, "extra": ckpt.extra}
    if optimizer is not None:
        tensors, groups = _optimizer_tensors(optimizer)
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        meta["optimizer"] = groups
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    final = root / name
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    pointer = root / f".{LATEST}.tmp"
    pointer.write_text(name + "\n")
    os.replace(pointer, root / LATEST)
    for old in sorted(root.glob("ckpt-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def resolve(path: Path) -> Path:
    """``CKPT`` (its latest) or ``CKPT/ckpt-N`` -> the checkpoint directory."""
    path = Path(path)
    if (path / "meta.json").is_file():
        return path
    pointer = path / LATEST
    if pointer.is_file():
        target = path / pointer.read_text().strip()
        if (target / "meta.json").is_file():
            return target
    found = sorted(p for p in path.glob("ckpt-*") if (p / "meta.json").is_file())
    if found:
        return found[-1]
    raise CheckpointError(f"{path}: no checkpoint there (expected meta.json, or ckpt-* with a 'latest' file)")


def read(path: Path) -> Checkpoint:
    """The checkpoint's JSON part (no weights)."""
    path = resolve(path)
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path / 'meta.json'}: unreadable ({err})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a student checkpoint (format {meta.get('format')!r}, want {FORMAT!r})")
    try:
        ckpt = Checkpoint(path, validate(meta["config"]), Tokenizer.from_dict(meta["tokenizer"]),
                          int(meta["n_actions"]), list(meta["action_names"]), int(meta["step"]), meta.get("extra", {}))
    except DistillConfigError as err:  # e.g. a key this code does not know: a newer steve trained it
        raise CheckpointError(f"{path}: {err}; was it trained by another version of steve?") from None
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path / 'meta.json'}: incomplete ({type(err).__name__}: {err})") from None
    _check_landmarks(ckpt)
    return ckpt


def _check_landmarks(ckpt: Checkpoint) -> None:
    """Refuse a student whose landmark tokens meant something else in training: it would
    play, and read them wrong. One saved before the version was recorded (version 1 or
    older) is refused too."""
    if not ckpt.config.model.landmarks:
        return
    version = ckpt.extra.get(LANDMARKS_KEY)
    if version != landmarks.VERSION:
        trained = "before landmark versions were recorded" if version is None else f"on landmarks version {version}"
        raise CheckpointError(f"{ckpt.path}: trained {trained}, this code computes version {landmarks.VERSION}: "
                              "retrain it, or play it with the code it was trained with")


def load_student(path: Path, device: str | torch.device = "cpu", averaged: bool = True) -> tuple[Student, Checkpoint]:
    """The student in eval mode, and its checkpoint; weights through safetensors only.
    ``averaged``: the weights' moving average where the checkpoint has one (the student
    that plays), else the trained weights themselves."""
    ckpt = read(path)
    model = Student(ckpt.config.model, len(ckpt.tokenizer), ckpt.n_actions)
    weights = ckpt.path / EMA_FILE
    load_weights(model, weights if averaged and weights.is_file() else ckpt.path / MODEL_FILE)
    return model.to(device).eval(), ckpt


def load_weights(model: torch.nn.Module, file: Path) -> None:
    """``file``'s tensors into ``model``, all of them and no others."""
    try:
        missing, unexpected = load_model(model, str(file), strict=False)
    except (SafetensorError, OSError, RuntimeError) as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        if len(lines) > 1 and lines[0].startswith("Error(s) in loading state_dict"):  # torch's heading; then why
            more = f" and {len(lines) - 2} more" if len(lines) > 2 else ""
            raise CheckpointError(f"{file.parent}: weights do not fit this code's model ({lines[1].rstrip('.')}"
                                  f"{more}): saved by another version of distill/model.py?") from None
        raise CheckpointError(f"{file}: unreadable ({lines[0] if lines else type(err).__name__})") from None
    if missing or unexpected:
        raise CheckpointError(f"{file.parent}: weights do not fit the config (missing {missing[:3]}, unexpected {unexpected[:3]})")


def load_optimizer(path: Path, optimizer: torch.optim.Optimizer) -> None:
    ckpt = resolve(path)
    meta = json.loads((ckpt / "meta.json").read_text())
    if "optimizer" not in meta:
        raise CheckpointError(f"{ckpt}: no optimizer state saved")
    try:
        tensors = load_file(str(ckpt / "optimizer.safetensors"))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{ckpt / 'optimizer.safetensors'}: unreadable ({str(err).splitlines()[0]})") from None
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer"]})


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    sd = optimizer.state_dict()
    tensors = {f"state.{i}.{name}": (v if torch.is_tensor(v) else torch.tensor(v)).detach().cpu().contiguous()
               for i, entry in sd["state"].items() for name, v in entry.items()}
    return tensors, sd["param_groups"]
