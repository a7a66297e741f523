"""MineDojo's primitive action set: names an agent picks, mapped to MineDojo's MultiDiscrete.

``minedojo.make`` returns an env whose action is an 8-dim MultiDiscrete (see
``minedojo.sim.wrappers.ar_nn.NNActionSpaceWrapper``):

    0 move (noop/forward/back)   1 strafe (noop/left/right)   2 noop/jump/sneak/sprint
    3 camera pitch bin           4 camera yaw bin              5 functional (see FN_*)
    6 craft/smelt item index     7 inventory slot (equip, place, destroy)

Camera bins are *turns* relative to the current view; the centre bin turns by 0.
Equip and place name an inventory *slot*, which changes as items move, so those actions
are named by item here and resolved to a slot from the current inventory at each step.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MOVE, STRAFE, JUMP, PITCH, YAW, FUNC, CRAFT_ARG, SLOT_ARG = range(8)
FN_NOOP, FN_USE, FN_DROP, FN_ATTACK, FN_CRAFT, FN_EQUIP, FN_PLACE, FN_DESTROY = range(8)

# name -> {dim: value}. PITCH/YAW values are offsets in degrees from "no turn"; Minecraft's
# pitch grows downward and its yaw clockwise seen from above, so +yaw turns right.
PRIMITIVES: dict[str, dict[int, int]] = {
    "noop": {},
    "forward": {MOVE: 1},
    "back": {MOVE: 2},
    "left": {STRAFE: 1},
    "right": {STRAFE: 2},
    "jump": {JUMP: 1},
    "forward_jump": {MOVE: 1, JUMP: 1},  # step up onto a block
    "sneak": {JUMP: 2},
    "sprint_forward": {MOVE: 1, JUMP: 3},
    "attack": {FUNC: FN_ATTACK},  # mine the block in view / hit a creature
    "use": {FUNC: FN_USE},  # eat the held food, open, sleep, use the held tool
    "drop": {FUNC: FN_DROP},
    "look_up": {PITCH: -15},
    "look_down": {PITCH: 15},
    "turn_left": {YAW: -15},
    "turn_right": {YAW: 15},
    "turn_left_90": {YAW: -90},  # one step of the 4-way ``facing``
    "turn_right_90": {YAW: 90},
}


def item_name(name: Any) -> str:
    """MineDojo's inventory writes ``crafting table``; blocks and recipes ``crafting_table``."""
    return str(name).strip().replace(" ", "_")


@dataclass(frozen=True)
class ActionTable:
    """The fixed list of action names and the MultiDiscrete vector each one sends."""

    names: tuple[str, ...]
    vectors: np.ndarray  # (n_actions, 8) int64; SLOT_ARG is filled in at step time
    slot_items: tuple[str | None, ...]  # the item whose slot an action needs, if any
    noop: np.ndarray

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def vector(self, index: int, inventory_names: Sequence[Any] = ()) -> tuple[np.ndarray, str | None]:
        """The vector for action ``index`` and ``None``, or a no-op and why it cannot run.

        ``inventory_names`` are the 36 slot names of the last observation.
        """
        if not 0 <= index < len(self.names):
            raise IndexError(f"action {index} out of range 0..{len(self.names) - 1}")
        vec = self.vectors[index].copy()
        item = self.slot_items[index]
        if item is None:
            return vec, None
        for slot, name in enumerate(inventory_names):
            if item_name(name) == item:
                vec[SLOT_ARG] = slot
                return vec, None
        # MineDojo raises on equipping or placing an empty slot: send a no-op instead.
        return self.noop.copy(), f"{self.names[index]}: no {item} in the inventory"


def build_action_table(
    nvec: Sequence[int],
    craft_items: Sequence[str],
    place_items: Iterable[str],
    equip_items: Iterable[str],
) -> ActionTable:
    """Primitives, then ``craft_<item>`` in MineDojo's craft order, ``place_<item>``, ``equip_<item>``.

    ``nvec`` is the MultiDiscrete's sizes; ``craft_items`` must be MineDojo's own
    ``ALL_CRAFT_SMELT_ITEMS`` (its index is the craft argument).
    """
    nvec = np.asarray(nvec, dtype=np.int64)
    if nvec.shape != (8,):
        raise ValueError(f"expected MineDojo's 8-dim MultiDiscrete, got sizes {nvec.tolist()}")
    centre = (nvec[[PITCH, YAW]] - 1) // 2
    degrees_per_bin = 360.0 / (nvec[[PITCH, YAW]] - 1)
    noop = np.zeros(8, np.int64)
    noop[[PITCH, YAW]] = centre

    names: list[str] = []
    vectors: list[np.ndarray] = []
    slot_items: list[str | None] = []

    def add(name: str, dims: dict[int, int], item: str | None = None) -> None:
        vec = noop.copy()
        for dim, value in dims.items():
            if dim in (PITCH, YAW):
                k = dim - PITCH
                value = int(centre[k] + round(value / degrees_per_bin[k]))
            vec[dim] = value
        if not np.all((vec >= 0) & (vec < nvec)):
            raise ValueError(f"action {name} -> {vec.tolist()} is outside {nvec.tolist()}")
        names.append(name)
        vectors.append(vec)
        slot_items.append(item)

    for name, dims in PRIMITIVES.items():
        add(name, dims)
    for i, item in enumerate(craft_items):
        add(f"craft_{item_name(item)}", {FUNC: FN_CRAFT, CRAFT_ARG: i})
    for item in sorted({item_name(x) for x in place_items} - {"air"}):
        add(f"place_{item}", {FUNC: FN_PLACE}, item)
    for item in sorted({item_name(x) for x in equip_items} - {"air"}):
        add(f"equip_{item}", {FUNC: FN_EQUIP}, item)
    return ActionTable(tuple(names), np.stack(vectors), tuple(slot_items), noop)


def minedojo_action_table(nvec: Sequence[int]) -> ActionTable:
    """The table for an env of the installed MineDojo (needs ``minedojo``)."""
    from minedojo.sim.mc_meta import mc

    equip = [*mc.ITEMS_BY_CATEGORY["tool"], *mc.ITEMS_BY_CATEGORY["edible"]]
    return build_action_table(nvec, mc.ALL_CRAFT_SMELT_ITEMS, mc.PLACEABLE_ITEM_NAMES, equip)
