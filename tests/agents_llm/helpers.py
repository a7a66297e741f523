"""A scripted OpenAI-compatible server on 127.0.0.1, and what the tests plan with.

The server is the test double for a real model: it serves ``POST /v1/chat/completions``
from a queue of scripted replies (a completion, an HTTP error, a delay, a broken body, a
refusal) and records every request it receives, headers included, so tests can check
what was sent.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

from agents.llm import LLMConfig
from agents.plan import Check, Plan, PlanContext, Subgoal

SECRET = "sk-test-3f9a7c1e5b2d4f60-do-not-log"
KEY_ENV = "STEVE_TEST_LLM_KEY"


@dataclass
class Scripted:
    """One reply of the server: a completion with ``content`` (or ``refusal``) by
    default; ``status`` != 200 sends an OpenAI-style error; ``body`` sends raw bytes."""

    content: str | None = None
    status: int = 200
    refusal: str | None = None
    delay: float = 0.0
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    usage: dict[str, int] | None = field(
        default_factory=lambda: {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18})
    finish_reason: str = "stop"


class ScriptedServer:
    def __init__(self) -> None:
        self.replies: list[Scripted] = []
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with server._lock:
                    server.requests.append({"path": self.path, "headers": headers, "body": json.loads(raw or b"{}")})
                    reply = server.replies.pop(0) if server.replies else Scripted(
                        status=500, content="no scripted reply left")
                if self.path != "/v1/chat/completions":
                    reply = Scripted(status=404, content=f"no route {self.path}")
                time.sleep(reply.delay)
                body = reply.body if reply.body is not None else server.render(reply)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first (a timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False  # delayed handlers must not hold up the teardown
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/v1"

    def push(self, *replies: Scripted | str) -> None:
        self.replies.extend(Scripted(content=r) if isinstance(r, str) else r for r in replies)

    @staticmethod
    def render(reply: Scripted) -> bytes:
        if reply.status != 200:
            return json.dumps({"error": {"message": reply.content or "error", "type": "test",
                                         "code": reply.status}}).encode()
        message = {"role": "assistant", "content": reply.content, "refusal": reply.refusal}
        return json.dumps({
            "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": "scripted",
            "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason}],
            "usage": reply.usage,
        }).encode()

    def models(self) -> list[str]:
        return [r["body"].get("model") for r in self.requests]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def make_config(url: str, **top: Any) -> LLMConfig:
    """Fast settings against the scripted server; ``top`` overrides top-level keys, and
    ``planner={...}`` merges into the planner's settings."""
    planner = {"base_url": url, "model": "plan-model", "api_key_env": KEY_ENV, "timeout_s": 2.0,
               "max_retries": 2, "backoff_s": 0.5} | top.pop("planner", {})
    return LLMConfig.model_validate({"planner": planner, **top})


SKILL = SimpleNamespace(
    name="chop tree", trigger="collect wood", preconditions=["near:tree"],
    steps=["walk to the nearest tree", "face it", "do until wood>=1"], verification="wood>=1", confidence=0.9)
GUARDRAIL = SimpleNamespace(
    trigger="place table", failure_cause="missing_requirement", risk_pattern=["wood<1"],
    repair="collect wood until wood>=1 before placing a table", scope="subgoal", confidence=0.7)


def subgoal(name: str, kind: str, target: str, key: str, value: float = 1, type_: str = "inventory") -> Subgoal:
    return Subgoal(name=name, kind=kind, target=target, check=Check(type=type_, key=key, value=value))


class TinyPlanner:
    """The fallback in these tests: one fixed subgoal, so its plans are recognisable."""

    name = "tiny"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def plan(self, ctx: PlanContext) -> Plan:
        self.calls.append("plan")
        return Plan(task=ctx.task, subgoals=[subgoal("explore", "explore", "tree", "tree", 3, "nearby")],
                    rationale="tiny")

    def repair(self, ctx: PlanContext, plan: Plan, done: int, reason: str) -> Plan:
        self.calls.append("repair")
        return Plan(task=ctx.task, subgoals=[*plan.subgoals[:done], *self.plan(ctx).subgoals], rationale="tiny")


VALID_PLAN = {
    "rationale": "a pickaxe needs a table",
    "subgoals": [
        {"name": "collect wood", "kind": "collect", "target": "wood",
         "check": {"type": "inventory", "key": "wood", "value": 3}, "budget": 200},
        {"name": "place table", "kind": "place", "target": "table",
         "check": {"type": "nearby", "key": "table", "value": 1}, "budget": 50},
        {"name": "make wood pickaxe", "kind": "craft", "target": "wood_pickaxe",
         "check": {"type": "inventory", "key": "wood_pickaxe", "value": 1}},
    ],
}
