"""JSON replies validated by a pydantic schema: extract, validate, re-ask, give up.

The pattern every role shares: ask; if the reply is not JSON for the schema (or is a
refusal), show the model its reply and the validation error and ask again, at most
``parse_retries`` times; then return ``None`` so the caller falls back, after logging
the fallback and noting it in the call log.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agents.llm.client import ChatClient, ChatReply, LLMError, ReplyError

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
MAX_ERRORS_SHOWN = 6


def extract_json(text: str) -> Any:
    """The first JSON object in ``text``: inside a ```json fence if there is one, else
    the first ``{`` that starts a complete object (models add prose around it).
    ``None`` if there is none."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for chunk in candidates:
        for start in (i for i, ch in enumerate(chunk) if ch == "{"):
            try:
                obj, _ = decoder.raw_decode(chunk, start)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                return obj
    return None


def explain(err: ValidationError) -> str:
    """A validation error as a few short lines a model can act on (pydantic's own text
    carries documentation links and input dumps that cost tokens and help nobody)."""
    lines = []
    for e in err.errors()[:MAX_ERRORS_SHOWN]:
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"- {loc}: {e['msg']}")
    if err.error_count() > MAX_ERRORS_SHOWN:
        lines.append(f"- ... and {err.error_count() - MAX_ERRORS_SHOWN} more")
    return "\n".join(lines)


def parser(schema: type[M]):  # noqa: ANN201 - a closure over the schema
    """A ``parse`` function for :meth:`ChatClient.request` that yields a ``schema``."""

    def parse(reply: ChatReply) -> M:
        if reply.refusal:
            raise ReplyError(f"the model refused: {reply.refusal[:300]}", "refusal", reply.refusal)
        text = reply.content or ""
        obj = extract_json(text)
        if obj is None:
            why = "the reply was cut off (finish_reason length)" if reply.finish_reason == "length" else \
                "the reply holds no JSON object"
            raise ReplyError(why, "refusal" if reply.finish_reason != "length" else "invalid", text)
        try:
            return schema.model_validate(obj)
        except ValidationError as err:
            raise ReplyError(f"the JSON does not match the schema:\n{explain(err)}", "invalid", text) from None

    return parse


def ask(
    client: ChatClient,
    role: str,
    messages: Sequence[dict[str, str]],
    schema: type[M],
    *,
    purpose: str,
    retries: int | None = None,
    fallback: str = "the fallback",
) -> M | None:
    """A validated ``schema`` instance from ``role``, or ``None`` after logging why the
    caller falls back to ``fallback``. Raises :class:`LLMError` when it is fatal (a
    rejected key, an unknown model): no fallback should hide a broken configuration.
    ``retries`` defaults to the client's ``parse_retries``."""
    conversation = list(messages)
    retries = client.config.parse_retries if retries is None else retries
    parse = parser(schema)
    reason = ""
    for attempt in range(retries + 1):
        try:
            return client.request(role, conversation, parse, purpose)
        except ReplyError as err:
            reason = str(err).splitlines()[0]
            logger.info("%s %s: unusable reply (%s)%s", role, purpose, reason,
                        "; asking again" if attempt < retries else "")
            conversation += [
                {"role": "assistant", "content": err.reply_text or "(no reply)"},
                {"role": "user", "content": f"That reply cannot be used: {err}\n"
                 "Reply again with only one JSON object that matches the schema."},
            ]
        except LLMError as err:
            if err.fatal:
                raise
            reason = str(err)
            break
    logger.warning("llm %s %s: %s; falling back to %s", role, purpose, reason, fallback)
    client.record_fallback(role, purpose, reason)
    return None
