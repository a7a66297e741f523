"""Agents that play in ``envs``: the random baseline and (later) the self-evolving agent."""

from agents.base import Agent, make_agent

__all__ = ["Agent", "make_agent"]
