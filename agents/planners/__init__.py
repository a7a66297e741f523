"""Planners: task + observation -> ordered subgoals (see :class:`agents.plan.Planner`).

``graph`` is the embedded one (no LLM): :class:`GraphPlanner` over the tech tree.
"""

from agents.planners.graph import GraphPlanner

__all__ = ["GraphPlanner"]
