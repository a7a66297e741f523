"""collect on hand-made views: when a `do` that gave nothing means a missing tool."""

from __future__ import annotations

import pytest

from agents.executor import Executor
from agents.executor.context import SkillFailure
from agents.executor.skills import collect
from agents.techtree import TechTree
from tests.agents.conftest import make_obs

STONE = {(1, 0): "stone"}


def do_twice(gaps: tuple[int, int], stone: int = 0) -> None:
    """Collect stone facing it, the `do` giving nothing each time; ``gaps``: how many
    steps passed before the program saw the outcome of each `do` (more than 1: a
    reflex acted in between)."""
    inv = {"wood_pickaxe": 1, "stone": stone}
    obs = make_obs(cells=STONE, step=60, facing=(1, 0), inventory=inv)
    ex = Executor(TechTree.load("full"))
    ex.reset(obs)
    program = collect(ex.ctx, "stone")
    step = 60
    for gap in gaps:
        assert ex.action_names[next(program)[0]] == "do"
        step += gap
        now = make_obs(cells=STONE, step=step, facing=(1, 0), inventory=inv)
        ex.ctx.obs = now
        ex.world.update(now)
    next(program)


def test_two_fruitless_dos_in_a_row_mean_a_missing_tool():
    with pytest.raises(SkillFailure) as err:
        do_twice((1, 1))
    assert err.value.reason == "missing_requirement"


@pytest.mark.parametrize(("gaps", "stone"), [
    ((1, 3), 0),  # a reflex acted after the second `do` (a stone placed where one was mined)
    ((4, 1), 0),  # ... or after the first
    ((1, 1), 9),  # nine held: Crafter gives no tenth
])
def test_a_do_that_a_reflex_or_a_full_pocket_explains_is_not_a_miss(gaps, stone):
    do_twice(gaps, stone)  # no SkillFailure: the program faces the stone and goes on
