"""Prompt files and the text put into them.

A prompt file (``prompts/<role>.md``) is split into sections by lines like ``[system]``;
``[system]`` and ``[user]`` become the chat messages, other sections are snippets the
caller renders into a variable (the planner's ``[plan]`` and ``[repair]`` requests).
Placeholders are ``$name`` (``string.Template``; write ``$$`` for a dollar sign).

Skills and guardrails are duck-typed memory records (attributes or mapping keys), so
this module does not import ``memory``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from string import Template
from typing import Any

from pydantic import BaseModel

PACKAGED_PROMPTS = Path(__file__).resolve().parent / "prompts"
_SECTION = re.compile(r"^\[([a-z_]+)\]\s*$", re.MULTILINE)


class PromptError(ValueError):
    """A prompt file is missing, has no such section, or names an unknown placeholder."""


class PromptSet:
    """The prompt files of one run: ``prompts_dir`` first, then the packaged ones."""

    def __init__(self, prompts_dir: str | Path | None = None) -> None:
        self.dirs = [Path(prompts_dir)] if prompts_dir else []
        self.dirs.append(PACKAGED_PROMPTS)
        self._cache: dict[str, dict[str, str]] = {}

    def sections(self, name: str) -> dict[str, str]:
        if name not in self._cache:
            for folder in self.dirs:
                path = folder / f"{name}.md"
                if path.exists():
                    self._cache[name] = split_sections(path.read_text(encoding="utf-8"), path)
                    break
            else:
                raise PromptError(f"no prompt file {name}.md in {', '.join(map(str, self.dirs))}")
        return self._cache[name]

    def section(self, name: str, section: str, **values: Any) -> str:
        """One section of ``name``, rendered."""
        sections = self.sections(name)
        if section not in sections:
            raise PromptError(f"prompt {name}.md has no [{section}] section")
        try:
            return Template(sections[section]).substitute({k: str(v) for k, v in values.items()}).strip()
        except (KeyError, ValueError) as err:
            raise PromptError(f"prompt {name}.md [{section}]: unknown or malformed placeholder {err}") from None

    def messages(self, name: str, **values: Any) -> list[dict[str, str]]:
        """The ``[system]`` and ``[user]`` sections as chat messages."""
        return [
            {"role": "system", "content": self.section(name, "system", **values)},
            {"role": "user", "content": self.section(name, "user", **values)},
        ]


def split_sections(text: str, origin: object = "prompt") -> dict[str, str]:
    """``[name]`` headed sections of ``text``; text before the first header is ignored
    (room for a comment on what the file is for)."""
    marks = list(_SECTION.finditer(text))
    if not marks:
        raise PromptError(f"{origin}: no [system] / [user] sections")
    out: dict[str, str] = {}
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        out[m.group(1)] = text[m.end():end].strip("\n")
    return out


def _get(record: Any, field: str, default: Any = None) -> Any:
    if isinstance(record, Mapping):
        return record.get(field, default)
    return getattr(record, field, default)


def _flat(value: Any) -> str:
    """Lists, mappings and models as short text: memory records hold all three."""
    if value is None:
        return ""
    describe = getattr(value, "describe", None)
    if callable(describe):  # e.g. a Subgoal or Check: their own short form
        return str(describe())
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_flat(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return "; ".join(_flat(v) for v in value)
    return str(value)


def _trigger(record: Any) -> str:
    """A memory ``Trigger`` (subgoal kind and target, task, text) as a phrase."""
    t = _get(record, "trigger")
    if t is None or isinstance(t, str):
        return t or "any time"
    kind = _get(t, "subgoal_kind")
    if kind is None:
        return _flat(t)
    words = [f"{kind} {_get(t, 'subgoal_target') or ''}".strip()]
    if _get(t, "task"):
        words.append(f"in task {_get(t, 'task')}")
    if _get(t, "text"):
        words.append(f"({_get(t, 'text')})")
    return " ".join(words)


def _confidence(record: Any) -> str:
    conf = _get(record, "confidence")
    return f" (confidence {conf:.2f})" if isinstance(conf, (int, float)) else ""


def render_skills(skills: Iterable[Any]) -> str:
    """One block per skill: what it is for, what it needs, its steps, how to check it."""
    lines = []
    for s in skills:
        steps = _get(s, "steps") or []
        steps_txt = " ".join(f"{i + 1}) {_flat(step)}" for i, step in enumerate(steps)) if isinstance(
            steps, (list, tuple)) else _flat(steps)
        lines.append(
            f"- {_flat(_get(s, 'name', 'skill'))}{_confidence(s)}: when {_trigger(s)};"
            f" needs {_flat(_get(s, 'preconditions')) or 'nothing'}; steps {steps_txt or '-'};"
            f" verify {_flat(_get(s, 'verification')) or '-'}"
        )
    return "\n".join(lines) or "(none yet)"


def render_guardrails(guardrails: Iterable[Any]) -> str:
    """One line per guardrail: when it applies, the risk, the cause, the repair."""
    lines = [
        f"- [{_flat(_get(g, 'scope', 'subgoal'))}] when {_trigger(g)}:"
        f" risk {_flat(_get(g, 'risk_pattern')) or '-'} (cause {_flat(_get(g, 'failure_cause')) or '-'});"
        f" instead {_flat(_get(g, 'repair')) or '-'}{_confidence(g)}"
        for g in guardrails
    ]
    return "\n".join(lines) or "(none yet)"


def render_history(history: Sequence[str], limit: int) -> str:
    recent = list(history)[-limit:] if limit else []
    return "\n".join(f"- {h}" for h in recent) or "(nothing yet)"


def render_subgoals(subgoals: Sequence[Any], start: int = 1) -> str:
    return "\n".join(f"{start + i}. {s.describe()}" for i, s in enumerate(subgoals)) or "(none)"


def context_values(ctx: Any, history: int) -> dict[str, str]:
    """What every role's prompt shows of a ``PlanContext``."""
    return {
        "task": ctx.task,
        "observation": ctx.obs.text(),
        "skills": render_skills(ctx.skills),
        "guardrails": render_guardrails(ctx.guardrails),
        "history": render_history(ctx.history, history),
    }


def schema_text(model: type[BaseModel]) -> str:
    """The JSON schema the reply must match, compact: it costs prompt tokens, and the
    generated ``title`` of every field repeats its name."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if not (k == "title" and isinstance(v, str))}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return json.dumps(strip(model.model_json_schema()), separators=(",", ":"))
