"""The executor: skills as parameterised programs over a map of what the episode saw.

    from agents.executor import Executor
    result = Executor(techtree).run(env, obs, subgoal, guardrails, on_step)

Modules: ``worldmap`` (the map, updated per step), ``navigation`` (backward search and
routes), ``goals`` (where to go), ``context`` (what skills see, ``go``), ``skills``
(collect, place, craft, explore), ``survival`` (drink, eat, fight), ``shelter`` (walls
for the night), ``farming`` (eat_plant), ``reflexes`` (interruptions), ``guardrails``
(risky actions), ``executor`` (the loop over one subgoal).
"""

from agents.executor.executor import CRAFTER_ACTIONS, ExecutionResult, Executor
from agents.executor.worldmap import WorldMap

__all__ = ["CRAFTER_ACTIONS", "ExecutionResult", "Executor", "WorldMap"]
