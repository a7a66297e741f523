"""A thin chat-completions client over ``openai``, with our own bounded retries.

``openai.OpenAI`` is built with ``max_retries=0`` so that this module alone decides what
is retried (timeouts, connection errors, 429, 5xx: with exponential backoff) and what is
not (other 4xx: a clear one-line :class:`LLMError` at once). Every call is recorded in a
:class:`CallLog`. The API key is read from the environment at call time, sent only in the
request, and redacted from every message this module writes.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from agents.llm.calllog import CallLog, CallRecord
from agents.llm.config import LLMConfig, RoleSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")
PLACEHOLDER_KEY = "not-needed"  # local servers (vLLM, Ollama, llama.cpp) accept any key
MAX_BACKOFF_S = 60.0
# Configuration problems: retrying, or falling back every step, would only hide them.
FATAL_KINDS = frozenset({"auth", "not_found"})


class LLMError(RuntimeError):
    """No usable reply from the endpoint; the message is one line, safe to show and log.

    ``kind``: ``timeout``, ``unreachable``, ``rate_limit``, ``server``, ``bad_response``,
    ``auth``, ``not_found`` or ``bad_request``.
    """

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind

    @property
    def fatal(self) -> bool:
        """True for errors a fallback must not paper over (wrong key, wrong model)."""
        return self.kind in FATAL_KINDS


class ReplyError(ValueError):
    """Raised by a ``parse`` function: a reply arrived but cannot be used.

    ``outcome`` is ``invalid`` or ``refusal``; ``reply_text`` is what the model said, so
    the caller can show it back to the model with the error.
    """

    def __init__(self, message: str, outcome: str = "invalid", reply_text: str = "") -> None:
        super().__init__(message)
        self.outcome = outcome
        self.reply_text = reply_text


@dataclass(frozen=True)
class ChatReply:
    """The first choice of a completion, and what it cost."""

    content: str | None
    refusal: str | None
    model: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_s: float
    attempts: int


def redact_url(url: str) -> str:
    """``url`` without user info, query or fragment: those can carry credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else url


def _import_openai() -> Any:
    try:
        import openai
    except ImportError:  # pragma: no cover - depends on the install
        raise LLMError("the llm planner needs the openai package: pip install 'openai>=1.40'", "config") from None
    return openai


class ChatClient:
    """Chat completions for the ``planner``, ``critic`` and ``skill_writer`` roles.

    ``factory(base_url, api_key, timeout_s)`` builds the underlying client; the default
    is ``openai.OpenAI``. ``sleep`` is injectable so tests can watch the backoff.
    """

    def __init__(
        self,
        config: LLMConfig,
        log: CallLog | None = None,
        *,
        factory: Callable[[str, str, float], Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.log = log if log is not None else CallLog()
        self._sleep = sleep
        self._openai = _import_openai()
        self._factory = factory or self._openai_factory
        self._clients: dict[tuple[str, str, float], Any] = {}

    def _openai_factory(self, base_url: str, api_key: str, timeout_s: float) -> Any:
        return self._openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0)

    def _api_key(self, settings: RoleSettings) -> tuple[str, bool]:
        """The key (or a placeholder) and whether the env var was set. Read per call, so
        a key rotated in the environment is picked up and none is kept in configs."""
        value = os.environ.get(settings.api_key_env, "") if settings.api_key_env else ""
        return (value, True) if value else (PLACEHOLDER_KEY, False)

    def _client(self, settings: RoleSettings, key: str) -> Any:
        cache_key = (settings.base_url, key, settings.timeout_s)
        if cache_key not in self._clients:
            self._clients[cache_key] = self._factory(settings.base_url, key, settings.timeout_s)
        return self._clients[cache_key]

    def record_fallback(self, role: str, purpose: str, reason: str) -> None:
        """Note in the call log that a step went to the fallback (no call is made)."""
        settings = self.config.role(role)
        self.log.add(CallRecord(role=role, model=settings.model, base_url=redact_url(settings.base_url),
                                purpose=purpose, outcome="fallback", error=self._redact(reason, settings)))

    def complete(self, role: str, messages: Sequence[Mapping[str, Any]], purpose: str = "") -> ChatReply:
        """One reply to ``messages`` from ``role``'s model; :class:`LLMError` if none came."""
        return self.request(role, messages, lambda reply: reply, purpose)

    def request(
        self,
        role: str,
        messages: Sequence[Mapping[str, Any]],
        parse: Callable[[ChatReply], T],
        purpose: str = "",
    ) -> T:
        """Like :meth:`complete`, then ``parse(reply)``; a :class:`ReplyError` from
        ``parse`` is recorded as the call's outcome and re-raised."""
        settings = self.config.role(role)
        url = redact_url(settings.base_url)
        key, key_set = self._api_key(settings)
        client = self._client(settings, key)
        kwargs: dict[str, Any] = {"model": settings.model, "messages": [dict(m) for m in messages],
                                  "temperature": settings.temperature}
        if settings.max_tokens is not None:
            kwargs["max_tokens"] = settings.max_tokens
        if settings.json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        record = CallRecord(role=role, model=settings.model, base_url=url, purpose=purpose, outcome="error",
                            messages=kwargs["messages"] if self.config.log_text else None)
        tries = settings.max_retries + 1
        start = time.perf_counter()
        for attempt in range(1, tries + 1):
            t0 = time.perf_counter()
            try:
                completion = client.chat.completions.create(**kwargs)
                reply = self._reply(completion, settings, url, time.perf_counter() - t0, attempt)
                break
            except Exception as exc:  # noqa: BLE001 - classified below; unknown ones re-raised
                err, retryable, wait = self._classify(exc, settings, url, attempt, key_set)
                if err is None:
                    raise
                if not retryable or attempt == tries:
                    record.attempts, record.wall_s = attempt, time.perf_counter() - start
                    record.error = self._redact(str(err), settings, key)
                    self.log.add(record)
                    raise LLMError(record.error, err.kind) from None
                delay = max(wait, min(settings.backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S))
                logger.info("%s call to %s: %s; retry %d/%d in %.1fs", role, url, err.kind, attempt,
                            tries - 1, delay)
                self._sleep(delay)
        record.attempts, record.wall_s, record.latency_s = attempt, time.perf_counter() - start, reply.latency_s
        record.prompt_tokens, record.completion_tokens = reply.prompt_tokens, reply.completion_tokens
        if self.config.log_text:
            record.reply = reply.content if reply.content is not None else reply.refusal
        try:
            result = parse(reply)
        except ReplyError as err:
            record.outcome = err.outcome  # type: ignore[assignment] # "invalid" or "refusal"
            record.error = self._redact(str(err), settings, key)
            self.log.add(record)
            raise
        record.outcome = "ok"
        self.log.add(record)
        return result

    def _reply(self, completion: Any, settings: RoleSettings, url: str, latency: float, attempt: int) -> ChatReply:
        choices = getattr(completion, "choices", None)
        if not choices:
            # Some proxies answer 200 with an ``error`` object instead of choices.
            detail = getattr(completion, "error", None)
            raise _NoCompletionError(f"LLM endpoint {url} answered without choices" + (f": {detail}" if detail else ""))
        choice = choices[0]
        message = choice.message
        usage = getattr(completion, "usage", None)
        return ChatReply(
            content=message.content,
            refusal=getattr(message, "refusal", None),
            model=getattr(completion, "model", None) or settings.model,
            finish_reason=getattr(choice, "finish_reason", None),
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            latency_s=latency,
            attempts=attempt,
        )

    def _classify(
        self, exc: Exception, settings: RoleSettings, url: str, tries: int, key_set: bool
    ) -> tuple[LLMError | None, bool, float]:
        """(one-line error, retryable, server-requested wait) for ``exc``; no error for
        exceptions that are not about the endpoint (bugs must surface as they are)."""
        o = self._openai
        n = f"{tries} {'try' if tries == 1 else 'tries'}"
        if isinstance(exc, o.APITimeoutError):  # before APIConnectionError: it is a subclass
            msg = f"LLM endpoint {url} timed out after {n} ({settings.timeout_s:g}s each)"
            return LLMError(msg, "timeout"), True, 0
        if isinstance(exc, o.APIConnectionError):
            return LLMError(f"LLM endpoint {url} unreachable after {n}", "unreachable"), True, 0
        if isinstance(exc, o.APIStatusError):
            code = exc.status_code
            if code == 429 or code >= 500 or code in (408, 409):
                kind = "rate_limit" if code == 429 else "server"
                return LLMError(f"LLM endpoint {url} answered HTTP {code} after {n}", kind), True, _retry_after(exc)
            if code in (401, 403):
                env = settings.api_key_env or "(none configured: set llm.<role>.api_key_env)"
                msg = (f"{url} rejected the API key from env var {env} (HTTP {code})" if key_set
                       else f"API key env var {env} is not set, and {url} requires one (HTTP {code})")
                return LLMError(msg, "auth"), False, 0
            if code == 404:
                return LLMError(f"model {settings.model!r} not found at {url} (HTTP 404; check the model "
                                "name, and that base_url ends in /v1)", "not_found"), False, 0
            detail = " ".join(str(getattr(exc, "message", "") or "").split())[:200]
            return LLMError(f"{url} rejected the request (HTTP {code}: {detail})", "bad_request"), False, 0
        if isinstance(exc, (_NoCompletionError, json.JSONDecodeError, o.APIResponseValidationError)):
            msg = str(exc) if isinstance(exc, _NoCompletionError) else f"LLM endpoint {url} sent no completion"
            return LLMError(f"{msg} (after {n})", "bad_response"), True, 0
        return None, False, 0

    def _redact(self, text: str, settings: RoleSettings, key: str | None = None) -> str:
        """``text`` on one line, with the key (if any) blanked out: error bodies from
        servers sometimes echo what they were sent."""
        key = key if key is not None else self._api_key(settings)[0]
        text = " ".join(text.split())
        return text.replace(key, "***") if key and key != PLACEHOLDER_KEY else text


class _NoCompletionError(Exception):
    """A 200 reply that holds no completion."""


def _retry_after(exc: Any) -> float:
    """Seconds the server asked us to wait (``Retry-After``), capped; 0 if none."""
    try:
        return min(float(exc.response.headers.get("retry-after", 0)), MAX_BACKOFF_S)
    except (AttributeError, TypeError, ValueError):
        return 0.0
