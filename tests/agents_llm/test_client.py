"""ChatClient against the scripted server: retries, one-line errors, the call log, the key."""

from __future__ import annotations

import json
import logging
import socket
import time

import pytest

from agents.llm import CallLog, ChatClient, LLMError
from tests.agents_llm.helpers import KEY_ENV, SECRET, Scripted, make_config

HELLO = [{"role": "user", "content": "hello"}]


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens there once the socket is closed


def test_reply_tokens_and_latency_are_recorded(server, make_client):
    server.push(Scripted(content="hi there", usage={"prompt_tokens": 123, "completion_tokens": 45}))
    client = make_client()
    reply = client.complete("planner", HELLO, purpose="test")
    assert reply.content == "hi there" and reply.attempts == 1
    (rec,) = client.log.records
    assert (rec.role, rec.model, rec.purpose, rec.outcome) == ("planner", "plan-model", "test", "ok")
    assert (rec.prompt_tokens, rec.completion_tokens) == (123, 45)
    assert rec.latency_s is not None and 0 < rec.latency_s <= rec.wall_s
    assert client.log.totals()["prompt_tokens"] == 123
    sent = server.requests[0]["body"]
    assert sent["model"] == "plan-model" and sent["messages"] == HELLO and sent["max_tokens"] == 1024


def test_missing_usage_is_recorded_as_unknown(server, make_client):
    server.push(Scripted(content="hi", usage=None))
    client = make_client()
    client.complete("planner", HELLO)
    assert client.log.records[0].prompt_tokens is None


def test_500_then_200_succeeds_after_backoff(server, make_client, sleeps):
    server.push(Scripted(status=500, content="overloaded"), Scripted(content="ok"))
    client = make_client()
    assert client.complete("planner", HELLO).content == "ok"
    assert len(server.requests) == 2 and sleeps == [0.5]
    assert client.log.records[0].attempts == 2


def test_429_is_retried_and_retry_after_is_honoured(server, make_client, sleeps):
    server.push(Scripted(status=429, content="slow down", headers={"Retry-After": "2"}), Scripted(content="ok"))
    assert make_client().complete("planner", HELLO).content == "ok"
    assert sleeps == [2.0]


def test_persistent_5xx_gives_one_line_error_after_bounded_tries(server, make_client, sleeps):
    server.push(*[Scripted(status=503, content="down")] * 3)
    with pytest.raises(LLMError) as err:
        make_client().complete("planner", HELLO)
    assert str(err.value) == f"LLM endpoint {server.url} answered HTTP 503 after 3 tries"
    assert sleeps == [0.5, 1.0]  # exponential backoff
    assert len(server.requests) == 3


def test_401_is_not_retried_and_names_the_env_var(server, make_client, sleeps):
    server.push(Scripted(status=401, content="bad key"))
    client = make_client()
    with pytest.raises(LLMError) as err:
        client.complete("planner", HELLO)
    assert err.value.kind == "auth" and err.value.fatal
    assert KEY_ENV in str(err.value) and "\n" not in str(err.value)
    assert len(server.requests) == 1 and sleeps == []
    assert client.log.records[0].outcome == "error"


def test_401_without_key_says_the_env_var_is_not_set(server, make_client, monkeypatch):
    server.push(Scripted(status=401, content="key required"))
    client = make_client()
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(LLMError, match=f"API key env var {KEY_ENV} is not set"):
        client.complete("planner", HELLO)


def test_unset_key_sends_a_placeholder_that_local_servers_accept(server, make_client, monkeypatch):
    server.push("ok")
    client = make_client()
    monkeypatch.delenv(KEY_ENV)
    client.complete("planner", HELLO)
    assert server.requests[0]["headers"]["authorization"] == "Bearer not-needed"


def test_404_says_the_model_is_not_found(server, make_client, sleeps):
    server.push(Scripted(status=404, content="The model does not exist"))
    with pytest.raises(LLMError) as err:
        make_client().complete("planner", HELLO)
    assert str(err.value).startswith(f"model 'plan-model' not found at {server.url}")
    assert sleeps == []


def test_400_is_not_retried(server, make_client, sleeps):
    server.push(Scripted(status=400, content="context length exceeded"))
    with pytest.raises(LLMError) as err:
        make_client().complete("planner", HELLO)
    assert err.value.kind == "bad_request" and "context length exceeded" in str(err.value)
    assert not err.value.fatal and len(server.requests) == 1 and sleeps == []


def test_unreachable_endpoint_gives_one_line_error(make_client, sleeps):
    url = closed_port_url()
    client = make_client(url=url)
    with pytest.raises(LLMError) as err:
        client.complete("planner", HELLO)
    assert str(err.value) == f"LLM endpoint {url} unreachable after 3 tries"
    assert sleeps == [0.5, 1.0]


def test_timeout_is_retried_with_backoff_then_clear_error(server, make_client, sleeps):
    server.push(*[Scripted(content="late", delay=1.5)] * 2)
    client = make_client(planner={"timeout_s": 0.3, "max_retries": 1})
    start = time.perf_counter()
    with pytest.raises(LLMError) as err:
        client.complete("planner", HELLO)
    assert time.perf_counter() - start < 1.4  # gave up on each request, did not wait for it
    assert str(err.value) == f"LLM endpoint {server.url} timed out after 2 tries (0.3s each)"
    assert err.value.kind == "timeout" and sleeps == [0.5]
    assert len(server.requests) == 2


def test_body_that_is_not_json_is_retried(server, make_client, sleeps):
    server.push(Scripted(body=b"<html>proxy error</html>"), Scripted(content="ok"))
    assert make_client().complete("planner", HELLO).content == "ok"
    assert sleeps == [0.5]


def test_reply_without_choices_is_an_error(server, make_client):
    server.push(*[Scripted(body=b'{"error": {"message": "upstream failed"}}')] * 3)
    with pytest.raises(LLMError, match="answered without choices.*upstream failed"):
        make_client().complete("planner", HELLO)


def test_api_key_never_reaches_log_records_or_jsonl(server, make_client, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)  # openai's and httpx's own loggers included
    path = tmp_path / "run" / "llm_calls.jsonl"
    client = make_client(log=CallLog(path), log_text=True)
    # A server that echoes the key in its error body, as some do on 401 and 400.
    server.push("fine", Scripted(status=500, content=f"bad {SECRET}"), Scripted(status=400, content=f"bad {SECRET}"),
                Scripted(status=401, content=f"Incorrect API key provided: {SECRET}"))
    client.complete("planner", HELLO)
    for _ in range(2):
        with pytest.raises(LLMError) as err:
            client.complete("planner", HELLO)
        assert SECRET not in str(err.value)
    assert server.requests[0]["headers"]["authorization"] == f"Bearer {SECRET}"  # it was sent
    dumped = [r.model_dump_json() for r in client.log.records]
    assert len(dumped) == 3 and not any(SECRET in d for d in dumped)
    assert SECRET not in path.read_text() and SECRET not in caplog.text
    assert "Authorization" not in path.read_text()
    assert "***" in client.log.records[1].error  # the echoed key was blanked, the rest kept


def test_call_log_attach_writes_kept_records_then_appends(server, make_client, tmp_path):
    server.push("one", "two")
    client = make_client()
    client.complete("planner", HELLO)
    path = tmp_path / "calls.jsonl"
    client.log.attach(path)
    client.complete("planner", HELLO)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["outcome"] for line in lines] == ["ok", "ok"] and lines[0]["schema_version"] == 1
    assert lines[0]["messages"] is None  # prompts are kept only with log_text


def test_client_factory_is_injectable(server):
    seen = []

    def factory(base_url: str, api_key: str, timeout_s: float):
        seen.append((base_url, timeout_s))
        import openai

        return openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0)

    server.push("ok")
    client = ChatClient(make_config(server.url), factory=factory)
    client.complete("planner", HELLO)
    assert seen == [(server.url, 2.0)]
