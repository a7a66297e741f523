"""The executor: skills as parameterised programs over a map of what the episode saw.

    from agents.executor import Executor
    result = Executor(techtree).run(env, obs, subgoal, guardrails, on_step)
"""

from agents.executor.executor import CRAFTER_ACTIONS, ExecutionResult, Executor
from agents.executor.worldmap import WorldMap

__all__ = ["CRAFTER_ACTIONS", "ExecutionResult", "Executor", "WorldMap"]
