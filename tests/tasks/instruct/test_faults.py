"""The OpenAI generator against a real, misbehaving HTTP server on 127.0.0.1.

The server speaks /v1/chat/completions and answers each request in one mode: valid, fenced JSON, HTTP 500,
429 with Retry-After, too slow for the client's timeout, a dropped connection, a broken body, prose, broken
JSON, a refusal, too few instructions, or instructions that miss the object. Modes come from seeded rates or a
fixed script, and the server counts what it did, so the tests check the client's retries against the server's.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tasks.instruct.cache import InstructionCache
from tasks.instruct.generators import ENDPOINT_FAILURE, EndpointConfigError, InstructionKey, OpenAIGenerator
from tasks.instruct.prompts import PROMPT_VERSION, validate_instruction
from tasks.instruct.stage import InstructInput, instruct_samples

pytestmark = pytest.mark.server

TRANSIENT = ("error500", "rate429", "slow", "drop", "bad_body")
SECRET = "sk-test-secret-4242"


class FaultServer:
    """A chat-completions server whose answers follow `script` (then `rates`, drawn with a seeded RNG)."""

    def __init__(self, rates: dict[str, float] | None = None, script: list[str] | None = None, seed: int = 0,
                 slow_s: float = 1.0) -> None:
        self.rates = rates or {"valid": 1.0}
        self.script = list(script or [])
        self.rng = random.Random(seed)
        self.slow_s = slow_s
        self.counts: Counter[str] = Counter()
        self.keys_seen: set[str] = set()
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> FaultServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def transient(self) -> int:
        return sum(self.counts[mode] for mode in TRANSIENT)

    def next_mode(self, authorization: str) -> str:
        with self.lock:
            self.keys_seen.add(authorization)
            if self.script:
                mode = self.script.pop(0)
            else:
                mode = self.rng.choices(list(self.rates), weights=list(self.rates.values()))[0]
            self.counts[mode] += 1
            return mode

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": "not found"}})
                mode = server.next_mode(self.headers.get("Authorization", ""))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client timed out: expected
                    self._answer(mode, body)

            def _answer(self, mode: str, body: dict) -> None:
                if mode == "error500":
                    return self._send(500, {"error": {"message": "internal error", "type": "server_error"}})
                if mode == "rate429":
                    return self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": "1"})
                if mode == "auth401":
                    return self._send(401, {"error": {"message": "bad key", "type": "invalid_api_key"}})
                if mode == "drop":
                    self.close_connection = True  # no status line: the client sees the connection close
                    return None
                if mode == "bad_body":
                    return self._send_raw(200, b'{"id": "x", "choices": [{"message": ')
                if mode == "slow":
                    time.sleep(server.slow_s)
                return self._send(200, completion(body, content_for(mode, body)))

            def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
                self._send_raw(status, json.dumps(payload).encode(), headers)

            def _send_raw(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


def content_for(mode: str, body: dict) -> str:
    """The assistant's text for a 200 answer: reads the target phrase and k back from the prompt."""
    prompt = body["messages"][1]["content"]
    target = re.search(r"mentions (the .+?)\.$", prompt, re.M).group(1)
    k = int(re.search(r"Write (\d+) different", prompt).group(1))
    verbs = ["Grip", "Hold", "Lift", "Grasp", "Take hold of", "Steady"]
    valid = json.dumps([f"{verbs[i % len(verbs)]} {target} firmly{' again' * (i // len(verbs))}" for i in range(k)])
    return {
        "valid": valid, "slow": valid, "fenced": f"Sure! Here they are:\n```json\n{valid}\n```",
        "prose": f"You could hold {target}. It is a nice object.",
        "malformed": valid[: len(valid) // 2],
        "short": json.dumps(json.loads(valid)[:2]),
        "refusal": "I'm sorry, but I can't help with that request.",
        "off_topic": json.dumps([f"Grab it firmly number {i}" for i in range(k)]),
    }[mode]


def completion(body: dict, content: str) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def inputs(n_samples: int, n_classes: int) -> list[InstructInput]:
    keys = [(f"object{c}", affordance, part) for c in range(n_classes)
            for affordance, part in (("handle-grasp", "handle"), ("twist", "cap"), ("lift", None))]
    return [InstructInput(f"grab-{i:016x}", "grab", *keys[i % len(keys)]) for i in range(n_samples)]


def generator(server: FaultServer, sleeps: list[float] | None = None, **options: object) -> OpenAIGenerator:
    settings = dict(timeout_s=2.0, max_retries=6, backoff_s=0.01, max_backoff_s=0.05, seed=0)
    settings.update(options)
    sleep = sleeps.append if sleeps is not None else time.sleep
    return OpenAIGenerator(server.url, "qwen-test", SECRET, sleep=sleep, **settings)  # type: ignore[arg-type]


@pytest.fixture
def cache(tmp_path: Path) -> InstructionCache:
    return InstructionCache(tmp_path / "instructions.sqlite")


def test_mixed_faults_end_valid_or_flagged(cache: InstructionCache, tmp_path: Path) -> None:
    rates = {"valid": 0.30, "fenced": 0.08, "error500": 0.12, "rate429": 0.10, "slow": 0.04, "drop": 0.05,
             "bad_body": 0.05, "prose": 0.07, "malformed": 0.07, "refusal": 0.06, "off_topic": 0.06}
    start = time.perf_counter()
    every_mode = random.Random(7).sample(list(rates), len(rates))  # each fault at least once, whatever the luck
    with FaultServer(rates, script=every_mode, seed=7, slow_s=0.6) as server:
        gen = generator(server, timeout_s=0.3)
        rows, counts = instruct_samples(inputs(120, 8), gen, cache, k=3, concurrency=4)
    elapsed = time.perf_counter() - start
    assert elapsed < 40, f"fault run took {elapsed:.1f} s"
    assert (counts.samples, counts.rows, counts.keys, counts.generated) == (120, 120, 24, 24)
    for row in rows:
        if row.fallback:
            assert row.generator == "template" and row.fallback_reason
        else:
            assert row.generator == "openai" and row.model == "qwen-test" and row.prompt_version == PROMPT_VERSION
        assert validate_instruction(row.instruction, row.object_class, row.part) is None, row
    # The client's counters agree with the server's, and every transient failure was retried or given up on.
    assert counts.endpoint_calls == server.total
    assert server.transient == counts.retries + counts.gave_up and counts.retries > 0
    assert counts.endpoint_calls == counts.generated + counts.repairs + counts.retries
    assert counts.repairs > 0 and all(server.counts[mode] for mode in rates)
    assert counts.fallback_samples == sum(row.fallback for row in rows)
    assert len(cache) == counts.generated - counts.not_cached
    assert server.keys_seen == {f"Bearer {SECRET}"}
    assert SECRET.encode() not in (tmp_path / "instructions.sqlite").read_bytes()


def test_retries_back_off_exponentially_and_honour_retry_after(cache: InstructionCache) -> None:
    sleeps: list[float] = []
    with FaultServer(script=["error500", "rate429", "drop", "bad_body", "valid"]) as server:
        gen = generator(server, sleeps, backoff_s=0.1, max_backoff_s=0.5)
        rows, counts = instruct_samples(inputs(3, 1)[:1], gen, cache, k=3)
    assert server.total == 5 and (counts.endpoint_calls, counts.retries, counts.gave_up) == (5, 4, 0)
    assert not rows[0].fallback
    assert len(sleeps) == 4
    assert 0.05 <= sleeps[0] < 0.1                  # 0.1 * 2^0 * U[0.5, 1)
    assert sleeps[1] == 0.5                         # Retry-After: 1, capped at max_backoff_s
    assert 0.2 <= sleeps[2] < 0.4                   # 0.1 * 2^2 * U[0.5, 1)
    assert 0.25 <= sleeps[3] < 0.5                  # min(0.5, 0.1 * 2^3) * U[0.5, 1)


def test_timeout_is_retried(cache: InstructionCache) -> None:
    with FaultServer(script=["slow", "valid"], slow_s=1.0) as server:
        rows, counts = instruct_samples(inputs(1, 1), generator(server, timeout_s=0.3), cache, k=2)
    assert (server.total, counts.retries) == (2, 1) and not rows[0].fallback


def test_endpoint_down_falls_back_and_is_retried_next_run(cache: InstructionCache) -> None:
    with FaultServer({"error500": 1.0}) as server:
        rows, counts = instruct_samples(inputs(9, 1), generator(server, max_retries=2), cache, k=3)
        assert all(row.fallback and row.fallback_reason.startswith(ENDPOINT_FAILURE) for row in rows)
        assert "HTTP 500" in rows[0].fallback_reason and "after 3 attempts" in rows[0].fallback_reason
        assert (counts.endpoint_calls, counts.gave_up, counts.not_cached, len(cache)) == (9, 3, 3, 0)
        _, again = instruct_samples(inputs(9, 1), generator(server, max_retries=2), cache, k=3)
    assert again.cache_hits == 0 and again.endpoint_calls == 9


def test_garbage_is_repaired_once_then_falls_back_and_is_cached(cache: InstructionCache) -> None:
    with FaultServer(script=["prose", "malformed"]) as server:
        rows, counts = instruct_samples(inputs(3, 1)[:1], generator(server), cache, k=3)
        assert (server.total, counts.repairs, counts.retries) == (2, 1, 0)
        assert rows[0].fallback and rows[0].fallback_reason.startswith("invalid answer after repair: not a JSON")
        _, again = instruct_samples(inputs(3, 1)[:1], generator(server), cache, k=3)
    assert (again.cache_hits, again.endpoint_calls, server.total) == (1, 0, 2)


@pytest.mark.parametrize("first", ["refusal", "off_topic", "prose"])
def test_repair_recovers(cache: InstructionCache, first: str) -> None:
    with FaultServer(script=[first, "fenced"]) as server:
        rows, counts = instruct_samples(inputs(3, 1)[:1], generator(server), cache, k=3)
    assert counts.repairs == 1 and server.total == 2 and not rows[0].fallback


def test_off_topic_twice_falls_back_with_the_reason() -> None:
    with FaultServer(script=["valid", "off_topic", "off_topic"]) as server:
        # k=8: the server's valid answer repeats verbs after 6 but all 8 are distinct, so no repair is needed...
        made = generator(server).generate(InstructionKey("mug", "lift"), 8)
        assert [i.fallback for i in made] == [False] * 8 and server.total == 1
        # ...while a 2nd key's off-topic repair leaves its slots to the template.
        made = generator(server).generate(InstructionKey("mug", "lift"), 3)
    assert server.total == 3 and [i.fallback for i in made] == [True] * 3
    assert "does not name the mug" in made[0].reason


def test_second_run_makes_no_calls(cache: InstructionCache) -> None:
    with FaultServer({"valid": 1.0}) as server:
        first, counts = instruct_samples(inputs(60, 4), generator(server), cache, k=3)
        again, repeat = instruct_samples(inputs(60, 4), generator(server), cache, k=3)
    assert (counts.endpoint_calls, server.total, repeat.endpoint_calls, repeat.cache_hits) == (12, 12, 0, 12)
    assert [r.instruction for r in again] == [r.instruction for r in first]


def test_bad_credentials_stop_the_run(cache: InstructionCache) -> None:
    with FaultServer({"auth401": 1.0}) as server, \
            pytest.raises(EndpointConfigError, match="AFFORD_LLM_API_KEY") as error:
        instruct_samples(inputs(30, 4), generator(server), cache, k=3, concurrency=2)
    assert SECRET not in str(error.value) and server.total <= 4  # queued keys were cancelled


def test_outage_during_repair_keeps_the_valid_part() -> None:
    with FaultServer(script=["short", "error500", "error500"]) as server:
        made = generator(server, max_retries=1).generate(InstructionKey("mug", "lift"), 3)
    assert server.total == 3 and [i.fallback for i in made] == [False, False, True]
    assert made[-1].reason.startswith(ENDPOINT_FAILURE) and made[-1].variant == 2 and made[-1].generator == "template"


def test_a_second_repair_when_allowed_sees_the_first_repairs_answer(cache: InstructionCache) -> None:
    with FaultServer(script=["prose", "malformed", "fenced"]) as server:
        rows, counts = instruct_samples(inputs(3, 1)[:1], generator(server, repairs=2), cache, k=3)
    assert (server.total, counts.repairs) == (3, 2) and not rows[0].fallback
    with pytest.raises(ValueError, match="repairs"):
        generator(server, repairs=-1)
