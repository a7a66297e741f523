"""LLM roles over the OpenAI-compatible chat-completions API (OpenAI, vLLM, Ollama,
llama.cpp by ``base_url``): the client, its call log, prompts, and the critic and skill
writer. The planner itself is :class:`agents.planners.llm.LLMPlanner`.

Wiring, in the agent::

    log = CallLog(run_dir / "llm_calls.jsonl")
    client = ChatClient(config.llm, log)
    planner = LLMPlanner(client, config.llm, fallback=graph_planner, actions=env.action_names)
    critic, writer = LLMCritic(client), LLMSkillWriter(client)
"""

from agents.llm.calllog import CallLog, CallRecord
from agents.llm.client import ChatClient, ChatReply, LLMError, ReplyError
from agents.llm.config import ROLES, LLMConfig, RoleOverrides, RoleSettings
from agents.llm.render import PromptError, PromptSet
from agents.llm.roles import Critique, LLMCritic, LLMSkillWriter, SkillDraft
from agents.llm.structured import ask, extract_json

__all__ = [
    "ROLES",
    "CallLog",
    "CallRecord",
    "ChatClient",
    "ChatReply",
    "Critique",
    "LLMConfig",
    "LLMCritic",
    "LLMError",
    "LLMSkillWriter",
    "PromptError",
    "PromptSet",
    "ReplyError",
    "RoleOverrides",
    "RoleSettings",
    "SkillDraft",
    "ask",
    "extract_json",
]
