r"""The student: one small multimodal causal transformer over image, text and history tokens.

One sequence per decision, both levels of the teacher in it::

    [BOS] task words | previous actions | clock | map | landmarks | image grid | BOS subgoal words ... | [ACT]
     \__________________ what the student is given __________________/     \_ plan level: text _/   action level

The subgoal positions are a language model (position j predicts subgoal word j+1, the
text head); the last position reads everything before it, the subgoal included, and
the action head predicts the action there. Attention is causal and ignores padding.
Playing, the student first writes its subgoal (greedy, :meth:`Student.plan`), then
acts on it, both in :meth:`Student.decide`. The image encoder gives one token per
7-pixel square, which in Crafter is one cell of the world or the inventory (``patch``),
or a small CNN pooled to a grid (``conv``); with ``vlm_path`` the features come from a
pretrained vision model in a local folder instead (see :func:`_local_vision`). With
``memory`` the student also reads its map of what it saw (:mod:`distill.visual_memory`),
one token per ``memory_patch`` x ``memory_patch`` cells (:class:`_MapEncoder`). With
``landmarks`` it reads where the nearest water, tree, stone, table, cow, pocket... it saw
are (:mod:`distill.landmarks`), one token each (:class:`_LandmarkEncoder`); with
``landmark_view`` also each cell of the view as that class map has it, added to the cell's
image token (:class:`_ViewEncoder`: in the dark, the ground it remembers); with
``walled`` whether it is walled in on that map, one learned vector added to the pocket's
token (the teacher sleeps only walled in), and with ``walls_needed`` another, for the fewest
cells it must wall up to be walled in; with ``plant_clock`` the nearest sapling's growth
(steps since first seen) and its open sides, added to the plant's token; with
``plant_spot`` one landmark token more, where the teacher would plant; with ``routes``
the way to each landmark on that map (the moves that start a shortest walk there, its
steps), added to the landmark's token.
With ``inventory`` it reads the counts Crafter
draws below the world (health, food, drink, energy, each item) exactly, as
:mod:`distill.inventory` matches them, one learned vector per cell and count added to that
cell's image token (:class:`_InventoryEncoder`). With
``clock`` it reads the time of day: the steps it has played, mod the day's length, in
readings of ``clock_bin`` steps, one learned embedding each (one token). Crafter's frame
is as bright at step 0 as at step 120 (the teacher walls itself in from 125), so without
it morning and evening look alike. With ``walk_target`` a second head at the action
position says where the teacher's walk ends (a cell of the view, or beyond it): trained
beside the action, an aid to learning which way to walk; play does not read it.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distill import inventory as inv
from distill.cells import PLAYER
from distill.config import ModelConfig
from distill.landmarks import LANDMARKS, PLANT_GROWN, ROUTE_FAR, ROUTE_THERE, VIEW_CELLS, WALLS_MOST
from distill.landmarks import NONE as LANDMARK_NONE
from distill.tokenizer import BOS, EOS, PAD
from distill.visual_memory import WALK_CLASSES

log = logging.getLogger(__name__)


@dataclass
class StudentOutput:
    action_logits: Tensor  # [B, A]
    subgoal_logits: Tensor  # [B, Ls, V]: position j predicts subgoal_out[j]
    walk_logits: Tensor | None = None  # [B, WALK_CLASSES] with model.walk_target: where the walk ends


class _Block(nn.Module):
    def __init__(self, d: int, heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, d_ff), nn.GELU(), nn.Linear(d_ff, d))
        self.dropout = dropout

    def forward(self, x: Tensor, mask: Tensor, start: int = 0, kv: list[tuple[Tensor, Tensor]] | None = None,
                past: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """``x`` [B,T,d] -> [B,T-start,d]: every position is a key, only ``start:`` query
        (the last block computes only the positions the heads read). ``kv`` collects this
        block's keys and values; ``past`` are keys and values of positions before ``x``."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if kv is not None:
            kv.append((k, v))
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        if start:
            q, mask, x = q[:, :, start:], mask[:, :, start:], x[:, start:]
        drop = self.dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        x = x + F.dropout(self.proj(a.transpose(1, 2).reshape(b, x.shape[1], d)), drop, self.training)
        return x + F.dropout(self.mlp(self.norm2(x)), drop, self.training)


class _FullPass(nn.Module):
    """:meth:`Student.forward` as a function of tensors alone, the keys and values it
    collects returned after the heads' logits: what ``torch.jit.trace`` can record.
    ``present`` says which of memory, clock and landmarks follow the four inputs."""

    def __init__(self, student: Student, present: tuple[bool, bool, bool]):
        super().__init__()
        self.student, self.present = student, present

    def forward(self, frame: Tensor, task: Tensor, history: Tensor, subgoal_in: Tensor,
                *seen: Tensor) -> tuple[Tensor, ...]:
        given = iter(seen)
        memory, clock, landmarks = (next(given) if p else None for p in self.present)
        kv: list[tuple[Tensor, Tensor]] = []
        out = self.student(frame, task, history, subgoal_in, kv=kv, memory=memory, clock=clock, landmarks=landmarks)
        return (out.action_logits, out.subgoal_logits, *_flat(kv))


class _SubgoalPass(nn.Module):
    """:meth:`Student._new_subgoal` with the keys and values as tensors: ``torch.jit.trace``
    records it, as :class:`_FullPass` the full pass."""

    def __init__(self, student: Student):
        super().__init__()
        self.student = student

    def forward(self, task: Tensor, subgoal_in: Tensor, *keys_values: Tensor) -> tuple[Tensor, Tensor]:
        out = self.student._new_subgoal(_pairs(keys_values), task, subgoal_in)
        return out.action_logits, out.subgoal_logits


class _Traces(NamedTuple):
    """What :meth:`Student.trace_for_play` made: the input shapes it holds for, and the two
    traced passes. A tuple, so that the traces are neither submodules nor in the state dict."""

    shapes: tuple[tuple[int, ...] | None, ...]
    full: torch.jit.ScriptModule
    subgoal: torch.jit.ScriptModule


def _flat(kv: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, ...]:
    return tuple(t for pair in kv for t in pair)


def _pairs(flat: tuple[Tensor, ...] | list[Tensor]) -> list[tuple[Tensor, Tensor]]:
    return list(zip(flat[::2], flat[1::2]))


def _targets(sub: Tensor) -> Tensor:
    """[B, Ls - 1]: the word each subgoal position of ``sub`` should predict: its next word,
    then EOS, then -1 (past the end)."""
    pos = torch.arange(sub.shape[1] - 1, device=sub.device)
    k = (sub != PAD).sum(1, keepdim=True) - 1  # words in each row
    return torch.where(pos < k, sub[:, 1:], torch.where(pos == k, EOS, -1))


def _log_prob(logits: Tensor, sub: Tensor, never: Tensor) -> Tensor:
    """[B]: the log-probability of each row's subgoal (its words and its end) under the
    subgoal logits of a pass on it; PAD and BOS are never words."""
    want = _targets(sub)
    lp = logits.index_fill(-1, never, float("-inf"))[:, : sub.shape[1] - 1].log_softmax(-1)
    return lp.gather(-1, want.clamp(min=0)[..., None])[..., 0].masked_fill(want < 0, 0.0).sum(1)


def _shapes(tensors: tuple[Tensor | None, ...]) -> tuple[tuple[int, ...] | None, ...]:
    return tuple(None if t is None else tuple(t.shape) for t in tensors)


class _ConvEncoder(nn.Module):
    """64x64 RGB -> grid x grid tokens: strided convolutions, then average pooling."""

    def __init__(self, channels: list[int], d: int, grid: int):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.GELU()]
            c_in = c
        self.convs = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.out = nn.Linear(c_in, d)

    def forward(self, frames: Tensor) -> Tensor:
        x = self.pool(self.convs(frames))  # [B, C, g, g]
        return self.out(x.flatten(2).transpose(1, 2))  # [B, g*g, d]


class _PatchEncoder(nn.Module):
    """One token per ``patch x patch`` square: Crafter draws its world in 7-pixel cells,
    so at 64 pixels and patch 7 each of the 9 x 9 tokens is exactly one cell (the last
    pixel row and column are border)."""

    def __init__(self, patch: int, d: int):
        super().__init__()
        self.patch = patch
        self.embed = nn.Conv2d(3, d, patch, stride=patch)

    def forward(self, frames: Tensor) -> Tensor:
        # The convolution as one matrix product over cut-out patches: the same numbers,
        # ~40 % less time than Conv2d at batch 1 on CPU.
        x = _patches(frames, self.patch)
        return F.linear(x, self.embed.weight.reshape(self.embed.out_channels, -1), self.embed.bias)


def _patches(frames: Tensor, p: int) -> Tensor:
    """[B, C, H, W] -> [B, (H // p) * (W // p), C * p * p]: the p x p squares, row by row,
    each flattened channel, row, column (Conv2d's weight order)."""
    b, c, h, w = frames.shape
    rows, cols = h // p, w // p
    x = frames[:, :, : rows * p, : cols * p].reshape(b, c, rows, p, cols, p)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(b, rows * cols, c * p * p)


class _MapEncoder(nn.Module):
    """The student's map, uint8 [B, S, S, 4] (colour and age of each cell), -> one token
    per ``patch x patch`` cells: (S / patch)^2 tokens."""

    def __init__(self, size: int, patch: int, d: int):
        super().__init__()
        self.patch, self.side = patch, size // patch
        self.embed = nn.Linear(patch * patch * 4, d)

    def forward(self, memory: Tensor) -> Tensor:
        b, n, p = memory.shape[0], self.side, self.patch
        x = (memory.float() / 255.0).reshape(b, n, p, n, p, 4).permute(0, 1, 3, 2, 4, 5)
        return self.embed(x.reshape(b, n * n, p * p * 4))


class _LandmarkEncoder(nn.Module):
    """The nearest landmarks, int8 [B, K, 2] offsets (``distill.landmarks.NONE`` where
    none is known), -> K tokens: the landmark's embedding plus one for its column offset
    and one for its row offset (or one for "none known")."""

    def __init__(self, size: int, d: int, kinds: int = len(LANDMARKS)):
        super().__init__()
        self.reach = size // 2
        self.kind = nn.Embedding(kinds, d)
        self.dx = nn.Embedding(2 * self.reach + 2, d)  # offsets -reach..reach, then "none known"
        self.dy = nn.Embedding(2 * self.reach + 2, d)

    def forward(self, marks: Tensor) -> Tensor:
        off = marks.long()
        idx = torch.where(off == LANDMARK_NONE, 2 * self.reach + 1, off.clamp(-self.reach, self.reach) + self.reach)
        return self.kind.weight + self.dx(idx[..., 0]) + self.dy(idx[..., 1])


class _ViewEncoder(nn.Module):
    """The view's cells as the class map has them, int8 [B, VIEW_CELLS, 2] (class, 1 when
    only remembered), -> one vector per image token: an embedding per class and staleness
    for each world cell, nothing for the inventory's tokens below the view."""

    def __init__(self, n_image: int, d: int):
        super().__init__()
        self.classes = PLAYER + 1  # unknown, each texture, the player
        self.embed = nn.Embedding(2 * self.classes, d)
        self.rest = n_image - VIEW_CELLS

    def forward(self, cells: Tensor) -> Tensor:
        c = cells.long()
        x = self.embed(c[..., 0] + self.classes * c[..., 1])
        return F.pad(x, (0, 0, 0, self.rest))


class _InventoryEncoder(nn.Module):
    """The inventory's cells of frames [B, 3, 64, 64] scaled to [0, 1], matched exactly
    against the images Crafter draws for each count (:func:`distill.inventory.templates`,
    scaled alike and held as a buffer), -> one vector per inventory cell: a learned
    embedding per cell and count (or "unread", where a cell matches none), for the image
    tokens of the last two rows."""

    def __init__(self, d: int):
        super().__init__()
        t = torch.from_numpy(inv.templates()).permute(0, 1, 4, 2, 3)  # as _patches flattens: channel, row, col
        self.register_buffer("templates", t.reshape(inv.SLOTS, inv.UNREAD, -1).float() / 255.0, persistent=False)
        self.embed = nn.Embedding(inv.SLOTS * inv.CLASSES, d)
        self.register_buffer("first", torch.arange(inv.SLOTS) * inv.CLASSES, persistent=False)

    def forward(self, pixels: Tensor) -> Tensor:
        x = _patches(pixels, inv.UNIT)[:, -inv.SLOTS:, None]  # [B, SLOTS, 1, 3 * 7 * 7]
        off, count = (x - self.templates).abs().sum(-1).min(-1)  # [B, SLOTS]: the nearest image and how far
        count = torch.where(off == 0, count, inv.UNREAD)
        return self.embed(self.first + count)


class _LocalVision(nn.Module):
    """A pretrained vision tower from a local folder (``transformers``, never downloaded)."""

    def __init__(self, path: str, d: int, grid: int):
        super().__init__()
        self.model = _local_vision(path)
        hidden = self.model.config.hidden_size
        self.size = getattr(self.model.config, "image_size", 224)
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.out = nn.Linear(hidden, d)

    def forward(self, frames: Tensor) -> Tensor:
        x = F.interpolate(frames, size=(self.size, self.size), mode="bilinear", align_corners=False)
        h = self.model(pixel_values=x * 2 - 1).last_hidden_state  # [B, 1 + n*n or n*n, hidden]
        n = int(math.isqrt(h.shape[1]))
        h = h[:, h.shape[1] - n * n:]  # drop a class token
        h = h.transpose(1, 2).reshape(h.shape[0], -1, n, n)
        return self.out(self.pool(h).flatten(2).transpose(1, 2))


def _local_vision(path: str) -> nn.Module:
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"model.vlm_path {path!r}: no config.json there (a local model folder is needed)")
    try:
        from transformers import AutoModel
    except ImportError:
        raise ImportError("model.vlm_path needs transformers: pip install transformers") from None
    model = AutoModel.from_pretrained(str(folder), local_files_only=True)
    return getattr(model, "vision_model", model)  # a CLIP/SigLIP-style VLM: its vision tower


class Student(nn.Module):
    """See the module docstring. ``n_actions`` ids plus one "no action" id for history."""

    def __init__(self, cfg: ModelConfig, vocab_size: int, n_actions: int):
        super().__init__()
        if cfg.d_model % cfg.n_heads:
            raise ValueError(f"model.d_model {cfg.d_model} is not a multiple of model.n_heads {cfg.n_heads}")
        self.cfg, self.vocab_size, self.n_actions = cfg, vocab_size, n_actions
        d = cfg.d_model
        self.words = nn.Embedding(vocab_size, d)
        self.actions = nn.Embedding(n_actions + 1, d)
        self.act_query = nn.Parameter(torch.zeros(d))
        if cfg.vlm_path:
            self.image: nn.Module = _LocalVision(cfg.vlm_path, d, cfg.image_grid)
            self.n_image = cfg.image_grid ** 2
        elif cfg.image_encoder == "patch":
            self.image = _PatchEncoder(cfg.patch_size, d)
            self.n_image = (cfg.frame_size // cfg.patch_size) ** 2
        else:
            self.image = _ConvEncoder(cfg.conv_channels, d, cfg.image_grid)
            self.n_image = cfg.image_grid ** 2
        self.map = _MapEncoder(cfg.memory, cfg.memory_patch, d) if cfg.memory else None
        self.n_map = (cfg.memory // cfg.memory_patch) ** 2 if cfg.memory else 0
        self.clock = nn.Embedding(-(-cfg.clock // cfg.clock_bin), d) if cfg.clock else None
        self.marks = _LandmarkEncoder(cfg.landmarks, d) if cfg.landmarks else None
        self.view = _ViewEncoder(self.n_image, d) if cfg.landmark_view else None
        self.walled = nn.Embedding(2, d) if cfg.walled else None  # added to the pocket's token
        self.walls = nn.Embedding(WALLS_MOST + 1, d) if cfg.walls_needed else None  # and so is this
        # the nearest plant's growth and open sides, added to the plant's token
        self.plant = nn.ModuleList([nn.Embedding(PLANT_GROWN + 1, d), nn.Embedding(5, d)]) if cfg.plant_clock else None
        self.spot = _LandmarkEncoder(cfg.landmarks, d, kinds=1) if cfg.plant_spot else None  # a landmark token more
        # the way to each landmark: its first moves and its steps, added to the landmark's token
        self.routes = nn.ModuleList([nn.Embedding(ROUTE_THERE + 1, d), nn.Embedding(ROUTE_FAR + 1, d)]) \
            if cfg.routes else None
        self.inventory = _InventoryEncoder(d) if cfg.inventory else None
        self.n_marks = len(LANDMARKS) + bool(cfg.plant_spot) if cfg.landmarks else 0
        # tokens between history and subgoal
        self.n_seen = int(bool(cfg.clock)) + self.n_map + self.n_marks + self.n_image
        self.length = 1 + cfg.max_task_len + cfg.history + self.n_seen + cfg.max_subgoal_len + 1
        self.pos = nn.Parameter(torch.zeros(self.length, d))
        self.blocks = nn.ModuleList(_Block(d, cfg.n_heads, cfg.d_ff, cfg.dropout) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(d)
        self.text_head = nn.Linear(d, vocab_size, bias=False)
        self.text_head.weight = self.words.weight  # tied: words in and out share one table
        self.action_head = nn.Linear(d, n_actions)
        self.walk_head = nn.Linear(d, WALK_CLASSES) if cfg.walk_target else None
        self.sub_start = 1 + cfg.max_task_len + cfg.history + self.n_seen
        nn.init.normal_(self.pos, std=0.02)
        nn.init.normal_(self.act_query, std=0.02)
        nn.init.normal_(self.words.weight, std=0.02)
        self.register_buffer("causal", torch.ones(self.length, self.length, dtype=torch.bool).tril(), persistent=False)
        self._traced: _Traces | None = None  # see trace_for_play

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_traced"] = None  # a trace does not pickle; the next play traces again
        return state

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, frame: Tensor, task: Tensor, history: Tensor, subgoal_in: Tensor,
                kv: list[tuple[Tensor, Tensor]] | None = None, memory: Tensor | None = None,
                clock: Tensor | None = None, landmarks: Tensor | None = None) -> StudentOutput:
        """``frame`` uint8 [B,3,H,W]; ``task`` [B,Lt], ``history`` [B,H], ``subgoal_in`` [B,Ls]
        ids; ``memory`` uint8 [B,S,S,4], the map (a student with ``model.memory`` needs it);
        ``clock`` long [B], the steps played so far (a student with ``model.clock`` needs it);
        ``landmarks`` int8 [B,K,2] (a student with ``model.landmarks`` needs them; with
        ``landmark_view``, ``walled``, ``walls_needed``, ``plant_clock``, ``plant_spot`` and ``routes`` the rows of
        :attr:`distill.landmarks.Reads.rows`).
        ``kv`` collects each block's keys and values (for :meth:`_new_subgoal`)."""
        b = frame.shape[0]
        bos = torch.full((b, 1), BOS, dtype=torch.long, device=frame.device)
        text = torch.cat([bos, task], 1)
        pixels = frame.float() / 255.0
        seen = [self.image(pixels)]
        if self.inventory is not None:  # the inventory's cells are the last image tokens
            seen[0] = seen[0] + F.pad(self.inventory(pixels), (0, 0, self.n_image - inv.SLOTS, 0))
        if self.marks is not None:
            if landmarks is None:
                raise ValueError("this student reads landmarks (model.landmarks): pass landmarks=")
            k = len(LANDMARKS)
            if self.view is not None:  # the view's cells follow the landmarks (distill.landmarks)
                seen[0] = seen[0] + self.view(landmarks[:, k:k + VIEW_CELLS])
            marks = self.marks(landmarks[:, :k])
            # the rows after the view's, read from the end: the routes, the plant spot, the plant, the walls
            # needed, walled in or not
            last = landmarks.shape[1]
            if self.routes is not None:
                last -= k
                way = landmarks[:, last:last + k].long()
                marks = marks + self.routes[0](way[..., 0].clamp(0, ROUTE_THERE)) \
                    + self.routes[1](way[..., 1].clamp(0, ROUTE_FAR))
            spot = None
            if self.spot is not None:
                last -= 1
                spot = self.spot(landmarks[:, last:last + 1])
            if self.plant is not None:
                last -= 1
                grown, sides = landmarks[:, last, 0].long(), landmarks[:, last, 1].long()
                at = LANDMARKS.index("plant")
                plant = self.plant[0](grown.clamp(0, PLANT_GROWN)) + self.plant[1](sides.clamp(0, 4))
                marks = marks + F.pad(plant[:, None], (0, 0, at, k - 1 - at))
            for embed in (self.walls, self.walled):  # each read with the pocket
                if embed is not None:
                    last -= 1
                    value = landmarks[:, last:last + 1, 0].long().clamp(0, embed.num_embeddings - 1)
                    marks = marks + F.pad(embed(value), (0, 0, k - 1, 0))
            seen.insert(0, marks if spot is None else torch.cat([marks, spot], 1))
        if self.map is not None:
            if memory is None:
                raise ValueError("this student reads a map (model.memory): pass memory=")
            seen.insert(0, self.map(memory))
        if self.clock is not None:
            if clock is None:
                raise ValueError("this student reads the time of day (model.clock): pass clock=")
            seen.insert(0, self.clock(clock.remainder(self.cfg.clock) // self.cfg.clock_bin)[:, None])
        x = torch.cat([self.words(text), self.actions(history), *seen, self.words(subgoal_in),
                       self.act_query.expand(b, 1, -1)], 1)
        x = x + self.pos
        mask = self._mask(task, subgoal_in)
        for block in self.blocks[:-1]:
            x = block(x, mask, kv=kv)
        x = self.blocks[-1](x, mask, start=self.sub_start, kv=kv)  # [B, Ls + 1, d]: what the heads read
        return self._heads(x, subgoal_in.shape[1])

    def _mask(self, task: Tensor, subgoal_in: Tensor, first: int = 0) -> Tensor:
        """[B, 1, T - first, T]: causal, no padding keys; the queries from position ``first``."""
        keep = torch.ones(task.shape[0], self.length, dtype=torch.bool, device=task.device)
        keep[:, 1:1 + task.shape[1]] = task != PAD
        keep[:, self.sub_start:self.sub_start + subgoal_in.shape[1]] = subgoal_in != PAD
        return (self.causal[first:] & keep[:, None, :])[:, None]

    def _heads(self, x: Tensor, ls: int) -> StudentOutput:
        x = self.norm(x)
        # the walk head is for training and validation; play (decide, in inference mode) skips it
        walk = self.walk_head(x[:, -1]) if self.walk_head is not None and not torch.is_inference_mode_enabled() \
            else None
        return StudentOutput(self.action_head(x[:, -1]), self.text_head(x[:, :ls]), walk)

    def _new_subgoal(self, kv: list[tuple[Tensor, Tensor]], task: Tensor, subgoal_in: Tensor) -> StudentOutput:
        """:meth:`forward` again with only the subgoal changed: the positions before it
        (task, history, image) are the same, so their keys and values are read from ``kv``
        (a full pass's) and only the Ls + 1 positions from the subgoal on are computed."""
        s, b = self.sub_start, subgoal_in.shape[0]
        x = torch.cat([self.words(subgoal_in), self.act_query.expand(b, 1, -1)], 1) + self.pos[s:]
        mask = self._mask(task, subgoal_in, first=s)
        for block, (k, v) in zip(self.blocks, kv):
            x = block(x, mask, past=(k[:, :, :s], v[:, :, :s]))
        return self._heads(x, subgoal_in.shape[1])

    @torch.inference_mode()
    def decide(self, frame: Tensor, task: Tensor, history: Tensor, draft: Tensor | None = None,
               memory: Tensor | None = None, clock: Tensor | None = None,
               landmarks: Tensor | None = None, keep: float = 0.0) -> tuple[Tensor, Tensor, int]:
        """Write the subgoal greedily, then act on it: ``(subgoal_in ids [B,Ls], action
        logits [B,A], forward passes used)``.

        ``draft`` (the previous decision's subgoal) is checked in the same pass that
        computes the action: where every word of it is what greedy decoding would write
        next, it *is* the greedy subgoal and that one pass is the whole decision. Where it
        is not, the first wrong word is replaced and the check repeats, so the result
        always equals plain greedy decoding, at one pass per decision while the subgoal
        holds (most steps) and a few when it changes; those few compute only the
        subgoal's positions (:meth:`_new_subgoal`).

        With ``keep`` (> 1) a draft of one or more words is kept, and acted on, unless the
        greedy subgoal is at least ``keep`` times as likely as it (each the product of its
        words' and its end's probabilities): a student that holds to its errand as the
        teacher does, rather than trading it for another that is a little more likely at one
        step. Both probabilities come from passes the check makes anyway. 0: plain greedy.
        """
        b, n = frame.shape[0], self.cfg.max_subgoal_len
        if draft is None:
            draft = torch.full((b, n), PAD, dtype=torch.long, device=frame.device)
            draft[:, 0] = BOS
        sub = draft.clone()
        never = torch.tensor([PAD, BOS], device=frame.device)
        kv: list[tuple[Tensor, Tensor]] = []
        for passes in range(1, n + 2):
            if passes == 1:
                out, by_trace = self._full_pass(frame, task, history, sub, kv, memory, clock, landmarks)
                first = out
            elif by_trace:
                out = StudentOutput(*self._traced.subgoal(task, sub, *_flat(kv)))
            else:
                out = self._new_subgoal(kv, task, sub)
            # pred[:, j]: the greedy word after sub[:, :j+1]; PAD and BOS are never words
            words = out.subgoal_logits.index_fill(-1, never, float("-inf"))[:, : n - 1]
            pred, want = words.argmax(-1), _targets(sub)
            wrong = (pred != want) & (want >= 0)
            if not bool(wrong.any()):
                if keep and passes > 1:
                    return (*self._kept(draft, first, sub, out, keep, never), passes)
                return sub, out.action_logits, passes
            for row in wrong.any(1).nonzero().flatten().tolist():
                j = int(wrong[row].nonzero()[0])
                sub[row, j + 1:] = PAD
                if int(pred[row, j]) != EOS:
                    sub[row, j + 1] = pred[row, j]
        return sub, out.action_logits, passes

    @staticmethod
    def _kept(draft: Tensor, first: StudentOutput, sub: Tensor, out: StudentOutput, keep: float,
              never: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`decide`'s subgoal and action logits where ``keep`` holds to the draft:
        ``first`` is the pass on the draft, ``out`` the last one, on greedy ``sub``."""
        held = (draft[:, 1] != PAD) & (_log_prob(out.subgoal_logits, sub, never)
                                       < _log_prob(first.subgoal_logits, draft, never) + math.log(keep))
        return torch.where(held[:, None], draft, sub), torch.where(held[:, None], first.action_logits,
                                                                   out.action_logits)

    def _full_pass(self, frame: Tensor, task: Tensor, history: Tensor, sub: Tensor, kv: list[tuple[Tensor, Tensor]],
                   memory: Tensor | None, clock: Tensor | None, landmarks: Tensor | None) -> tuple[StudentOutput, bool]:
        """:meth:`forward`, by the trace where the inputs have the traced shapes; and whether
        it went by the trace (then so can :meth:`_new_subgoal`'s passes)."""
        tensors = (frame, task, history, sub, memory, clock, landmarks)
        if self._traced is None or self._traced.shapes != _shapes(tensors):
            return self(frame, task, history, sub, kv=kv, memory=memory, clock=clock, landmarks=landmarks), False
        action, subgoal, *keys_values = self._traced.full(*(t for t in tensors if t is not None))
        kv.extend(_pairs(keys_values))
        return StudentOutput(action, subgoal), True

    @torch.inference_mode()
    def act_on(self, frame: Tensor, task: Tensor, history: Tensor, subgoal_in: Tensor,
               memory: Tensor | None = None, clock: Tensor | None = None,
               landmarks: Tensor | None = None) -> Tensor:
        """Action logits ``[B, A]`` under a subgoal given rather than written: ``subgoal_in``
        (BOS + words, PAD-padded, as in training) is another planner's, the teacher's say.
        One pass, by the trace where there is one; the subgoal head's words are unused."""
        return self._full_pass(frame, task, history, subgoal_in, [], memory, clock, landmarks)[0].action_logits

    @torch.inference_mode()
    def trace_for_play(self, frame: Tensor, task: Tensor, history: Tensor, memory: Tensor | None = None,
                       clock: Tensor | None = None, landmarks: Tensor | None = None) -> bool:
        """Trace (``torch.jit.trace``) :meth:`decide`'s full pass for inputs shaped as these
        (one decision's, in play), and :meth:`_new_subgoal` after it, and run them by the
        traces from then on: the same operations in the same order, so the same numbers to
        the bit, without Python's cost per module and call (about a third of the pass's time
        at batch 1 on one CPU thread, a fifth of a decision: ``bench/bench_distill_speed.py``).
        Inputs of other shapes take the plain passes. False, and nothing changes, where this
        torch cannot trace them."""
        sub = torch.full((frame.shape[0], self.cfg.max_subgoal_len), PAD, dtype=torch.long, device=frame.device)
        sub[:, 0] = BOS
        tensors = (frame, task, history, sub, memory, clock, landmarks)
        try:
            with warnings.catch_warnings():  # the tracer's notes on Python ints read from shapes
                warnings.simplefilter("ignore")
                given = tuple(t for t in tensors if t is not None)
                traced = torch.jit.trace(_FullPass(self, tuple(t is not None for t in tensors[4:])), given,
                                         check_trace=False)
                keys_values = traced(*given)[2:]
                subgoal = torch.jit.trace(_SubgoalPass(self), (task, sub, *keys_values), check_trace=False)
        except Exception as e:  # noqa: BLE001 -- any failure leaves the plain pass, which is correct
            log.info("the student plays without a traced pass: %s", e)
            return False
        self._traced = _Traces(_shapes(tensors), traced, subgoal)
        return True

    @torch.inference_mode()
    def plan(self, frame: Tensor, task: Tensor, history: Tensor, memory: Tensor | None = None,
             clock: Tensor | None = None, landmarks: Tensor | None = None) -> Tensor:
        """Greedy subgoal ids ``[B, Ls]``: BOS, the words, then PAD."""
        return self.decide(frame, task, history, memory=memory, clock=clock, landmarks=landmarks)[0]
