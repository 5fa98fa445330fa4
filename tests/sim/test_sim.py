"""The simulator, tested only through real HTTP on 127.0.0.1 (it is its own program).

Requests are made with httpx, not lavabench's client: the simulator is the reference the
client is tested against, so the two must not share parsing code.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import os
import re
import socket
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lavabench.sim.process import running_simulator
from lavabench.sim.settings import SimSettings, from_mapping

SEED = 99
SECRET = "aks_test_simtests_0001"
FW_URL = "https://api.fireworks.ai/inference/v1/chat/completions"
FORWARD = "/v1/forward?u=https%3A%2F%2Fapi.fireworks.ai%2Finference%2Fv1%2Fchat%2Fcompletions"
FIREWORKS = "/inference/v1/chat/completions"
LAVA_ID_RE = re.compile(r"req_[0-9A-Z]{26}")
FAST = {"ttft_s": 0.0, "tokens_per_s": 1_000_000, "jitter": 0.0}

CATALOG = {
    "strong": {"id": "accounts/fireworks/models/strong", "reasoning": False, "extra": 1},
    "weak": {"id": "accounts/fireworks/models/weak", "reasoning": False},
    "kimi": {"id": "accounts/fireworks/routers/kimi", "reasoning": False},
    "think-field": {"id": "accounts/fireworks/models/think-field", "reasoning": True},
    "think-tags": {"id": "accounts/fireworks/models/think-tags", "reasoning": True},
    "timed": {"id": "accounts/fireworks/models/timed", "reasoning": False},
    "nocache": {"id": "accounts/fireworks/models/nocache", "reasoning": False},
    "jittery": {"id": "accounts/fireworks/models/jittery", "reasoning": False},
}
PROFILES = {
    "strong": {**FAST, "skill": 0.9},
    "weak": {**FAST, "skill": 0.3},
    "kimi": {**FAST, "usage_style": "include_usage_only"},
    "think-field": {**FAST, "reasoning_style": "field", "reasoning_tokens": 5},
    "think-tags": {**FAST, "reasoning_style": "think_tags", "reasoning_tokens": 4},
    "timed": {"ttft_s": 0.05, "tokens_per_s": 100, "jitter": 0.0, "default_output_tokens": 8},
    "nocache": {**FAST, "reports_cached_tokens": False, "default_output_tokens": 5},
    "jittery": {"ttft_s": 0.002, "tokens_per_s": 2000, "jitter": 0.3},
}


def model_id(name: str) -> str:
    return CATALOG[name]["id"]


def make_key(path: Path, n: int = 400) -> list[dict[str, str]]:
    rows = []
    for i in range(n):
        a, b = 10 + i, 7 + (i * 13) % 50
        question = f"Sim test item {i}: Ann has {a} marbles and finds {b} more. How many now?"
        rows.append({"id": f"t{i}", "question": question, "answer": str(a + b)})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, str]]]:
    path = tmp_path_factory.mktemp("key") / "key.jsonl"
    return path, make_key(path)


@pytest.fixture(scope="module")
def log_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("log") / "sim.jsonl"


def settings_for(key_path: Path, **extra: Any) -> dict[str, Any]:
    return {"seed": SEED, "answer_keys": [str(key_path)], "models": PROFILES, **extra}


@pytest.fixture(scope="module")
def sim(key: tuple[Path, list], log_path: Path) -> Iterator[httpx.Client]:
    with (
        running_simulator(settings_for(key[0], log_path=str(log_path)), CATALOG) as handle,
        httpx.Client(base_url=handle.base_url, timeout=10) as client,
    ):
        yield client


def auth(credential: str = SECRET) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def chat(model: str, content: str = "Hello there", **extra: Any) -> dict[str, Any]:
    return {"model": model_id(model), "messages": [{"role": "user", "content": content}], **extra}


def events(text: str) -> list[Any]:
    """Split an SSE body into decoded `data:` payloads ("[DONE]" stays a string)."""
    out: list[Any] = []
    assert text.endswith("\n\n")
    for block in text.split("\n\n")[:-1]:
        assert block.startswith("data: "), block
        payload = block[len("data: ") :]
        out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def stream(client: httpx.Client, body: dict[str, Any], path: str = FORWARD) -> httpx.Response:
    r = client.post(path, json={**body, "stream": True}, headers=auth())
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/event-stream"
    assert r.headers["transfer-encoding"] == "chunked"
    return r


def token_chunks(evs: list[Any]) -> tuple[list[str], list[str]]:
    """(reasoning deltas, content deltas) in order."""
    reasoning, content = [], []
    for ev in evs:
        if isinstance(ev, dict) and ev["choices"]:
            delta = ev["choices"][0]["delta"]
            if "reasoning_content" in delta:
                reasoning.append(delta["reasoning_content"])
            if "content" in delta:
                content.append(delta["content"])
    return reasoning, content


# --- gateway: auth, target, metadata, ids -------------------------------------------------


def forward_token(**fields: Any) -> str:
    return base64.b64encode(json.dumps(fields).encode()).decode()


@pytest.mark.parametrize(
    "credential",
    [
        SECRET,
        "aks_live_ABCdef_123456",
        forward_token(secret_key=SECRET),
        forward_token(secret_key=SECRET, provider_key="fw_my_own_key", customer_id=None),
        forward_token(secret_key=SECRET, customer_id="c_1", meter_slug="m", disable_billing=True),
        forward_token(secret_key=SECRET, connection_secret="cs", product_secret="ps"),
    ],
)
def test_gateway_accepts_secret_keys_and_forward_tokens(sim: httpx.Client, credential: str) -> None:
    r = sim.post(FORWARD, json=chat("strong"), headers=auth(credential))
    assert r.status_code == 200, r.text
    assert LAVA_ID_RE.fullmatch(r.headers["x-lava-request-id"])


@pytest.mark.parametrize(
    "credential",
    [
        "garbage-credential-xyz",
        "aks_live_short",
        "sk_live_12345678901",
        forward_token(secret_key="not-a-key-1234567"),
        forward_token(customer_id="c_1"),
        base64.b64encode(b"[1, 2, 3]").decode(),
    ],
)
def test_gateway_rejects_bad_credentials_without_echoing_them(
    sim: httpx.Client, credential: str
) -> None:
    r = sim.post(FORWARD, json=chat("strong"), headers=auth(credential))
    assert r.status_code == 401
    assert credential not in r.text
    error = r.json()["error"]
    assert error["status"] == 401 and "credential" in error["message"].lower()
    assert LAVA_ID_RE.fullmatch(r.headers["x-lava-request-id"])


def test_gateway_missing_bearer_is_401(sim: httpx.Client) -> None:
    assert sim.post(FORWARD, json=chat("strong")).status_code == 401
    r = sim.post(FORWARD, json=chat("strong"), headers={"Authorization": SECRET})
    assert r.status_code == 401 and r.json()["error"]["code"]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("", "invalid_forward_url"),
        ("?u=", "invalid_forward_url"),
        ("?u=not%20a%20url", "invalid_forward_url"),
        ("?u=http%3A%2F%2Fapi.fireworks.ai%2Finference%2Fv1%2Fchat%2Fcompletions", "invalid_forward_url"),
        ("?u=https%3A%2F%2Fapi.openai.com%2Fv1%2Fchat%2Fcompletions", "forward_endpoint_not_supported"),
        ("?u=https%3A%2F%2Fapi.fireworks.ai%2Finference%2Fv1%2Fcompletions", "forward_endpoint_not_supported"),
    ],
)  # fmt: skip
def test_forward_target_is_checked(sim: httpx.Client, query: str, code: str) -> None:
    r = sim.post("/v1/forward" + query, json=chat("strong"), headers=auth())
    assert r.status_code == 400
    assert r.json() == {
        "error": {"message": r.json()["error"]["message"], "code": code, "status": 400}
    }
    assert LAVA_ID_RE.fullmatch(r.headers["x-lava-request-id"])


def test_forward_target_encoded_and_unencoded(sim: httpx.Client) -> None:
    for path in (FORWARD, f"/v1/forward?u={FW_URL}"):
        r = sim.post(path, json=chat("strong"), headers=auth())
        assert r.status_code == 200, (path, r.text)


@pytest.mark.parametrize(
    ("metadata", "status"),
    [
        ('{"run_id":"r1","model":"glm-5","dataset":"demo"}', 200),
        ("[1,2]", 400),
        ('{"bad-key":"x"}', 400),
        ('{"k":""}', 400),
        ('{"k":1}', 400),
        ('{"k":"' + "v" * 256 + '"}', 400),
        ("not json", 400),
    ],
)
def test_lava_metadata_header(sim: httpx.Client, metadata: str, status: int) -> None:
    headers = {**auth(), "x-lava-metadata": metadata}
    r = sim.post(FORWARD, json=chat("strong"), headers=headers)
    assert r.status_code == status, r.text


def test_lava_request_id_only_on_gateway_path(sim: httpx.Client) -> None:
    ids = {
        sim.post(FORWARD, json=chat("strong"), headers=auth()).headers["x-lava-request-id"]
        for _ in range(3)
    }
    assert len(ids) == 3
    r = sim.post(FIREWORKS, json=chat("strong"), headers=auth("fw_anything"))
    assert r.status_code == 200 and "x-lava-request-id" not in r.headers


def test_fireworks_path_needs_a_bearer(sim: httpx.Client) -> None:
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}):
        r = sim.post(FIREWORKS, json=chat("strong"), headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["object"] == "error" and "request_id" in r.json()


def test_routes(sim: httpx.Client) -> None:
    assert sim.get("/healthz").text == "ok"
    assert sim.get("/nope").status_code == 404
    assert sim.get(FIREWORKS).status_code == 404


# --- Fireworks request validation ---------------------------------------------------------


@pytest.mark.parametrize("path", [FORWARD, FIREWORKS])
def test_unknown_model_is_404_in_provider_shape(sim: httpx.Client, path: str) -> None:
    body = {
        "model": "accounts/fireworks/models/nope",
        "messages": [{"role": "user", "content": "x"}],
    }
    r = sim.post(path, json=body, headers=auth())
    assert r.status_code == 404
    data = r.json()
    assert data["error"]["message"] == "Model not found, inaccessible, and/or not deployed"
    assert data["error"]["object"] == "error" and data["request_id"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({**chat("strong"), "promptCacheKey": "x"}, "Extra inputs are not permitted, field: 'promptCacheKey'"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": model_id("strong"), "messages": []}, "messages"),
        ({**chat("strong"), "max_tokens": 0}, "max_tokens"),
        ({**chat("strong"), "n": 2}, "n=1"),
        ({**chat("strong"), "stream": "yes"}, "stream"),
    ],
)  # fmt: skip
def test_invalid_bodies_are_400(sim: httpx.Client, body: dict, fragment: str) -> None:
    r = sim.post(FORWARD, json=body, headers=auth())
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and fragment in error["message"]


def test_non_json_body_is_400(sim: httpx.Client) -> None:
    r = sim.post(FIREWORKS, content=b"{nope", headers=auth())
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request_error"


def test_accepted_optional_fields(sim: httpx.Client) -> None:
    body = chat(
        "strong",
        temperature=0.2, top_p=0.9, top_k=40, n=1, stop=["\n\n"], seed=3, response_format={"type": "text"},
        reasoning_effort="low", perf_metrics_in_response=False, prompt_cache_key="k", user="u",
        presence_penalty=0, frequency_penalty=0, context_length_exceeded_behavior="error",
        logprobs=False, top_logprobs=0, tools=[], tool_choice="auto", max_completion_tokens=50,
    )  # fmt: skip
    assert sim.post(FORWARD, json=body, headers=auth()).status_code == 200


# --- streaming shape ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "include_usage", "on_finish", "usage_chunk"),
    [
        ("strong", False, True, False),
        ("strong", True, True, True),
        ("kimi", False, False, False),
        ("kimi", True, False, True),
    ],
)
def test_stream_frames_and_usage_placement(
    sim: httpx.Client, model: str, include_usage: bool, on_finish: bool, usage_chunk: bool
) -> None:
    body = chat(model, stream_options={"include_usage": include_usage})
    evs = events(stream(sim, body).text)
    assert evs[-1] == "[DONE]"
    chunks = evs[:-1]
    ids = {c["id"] for c in chunks}
    assert len(ids) == 1 and next(iter(ids)).startswith("chatcmpl-")
    for c in chunks:
        assert c["object"] == "chat.completion.chunk" and c["model"] == model_id(model)
        assert isinstance(c["created"], int)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    n_usage = 2 if usage_chunk else 1
    finish = chunks[-n_usage]
    assert finish["choices"][0]["delta"] == {} and finish["choices"][0]["finish_reason"] == "stop"
    tokens = chunks[1:-n_usage]
    for c in tokens:
        assert c["usage"] is None and c["choices"][0]["finish_reason"] is None
        assert set(c["choices"][0]["delta"]) == {"content"}
        assert len(re.findall(r"\S+", c["choices"][0]["delta"]["content"])) == 1
    usages = [c["usage"] for c in chunks if c.get("usage") is not None]
    assert (finish["usage"] is not None) == on_finish
    if usage_chunk:
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] is not None
    assert len(usages) == int(on_finish) + int(usage_chunk)
    for usage in usages:
        assert usage["completion_tokens"] == len(tokens)
        assert usage["total_tokens"] == usage["prompt_tokens"] + len(tokens)


def test_reasoning_in_field(sim: httpx.Client) -> None:
    r = stream(sim, chat("think-field", stream_options={"include_usage": True}))
    evs = events(r.text)
    reasoning, content = token_chunks(evs)
    assert len(reasoning) == 5 and content
    order = [next(iter(e["choices"][0]["delta"])) for e in evs[1:-3]]
    assert order == ["reasoning_content"] * 5 + ["content"] * len(content)
    assert evs[-2]["usage"]["completion_tokens"] == 5 + len(content)
    body = sim.post(FORWARD, json=chat("think-field"), headers=auth()).json()
    message = body["choices"][0]["message"]
    assert message["reasoning_content"] == "".join(reasoning)
    assert message["content"] == "".join(content)


def test_reasoning_in_think_tags(sim: httpx.Client) -> None:
    evs = events(stream(sim, chat("think-tags")).text)
    reasoning, content = token_chunks(evs)
    assert reasoning == []
    assert content[0] == "<think>" and content[5] == "</think>" and "<think>" not in content[6]
    assert evs[-2]["usage"]["completion_tokens"] == len(content)
    text = sim.post(FORWARD, json=chat("think-tags"), headers=auth()).json()
    assert text["choices"][0]["message"]["content"] == "".join(content)
    assert "reasoning_content" not in text["choices"][0]["message"]


@pytest.mark.parametrize("model", ["strong", "think-field", "think-tags"])
def test_max_tokens_truncates(sim: httpx.Client, model: str) -> None:
    evs = events(stream(sim, chat(model, max_tokens=3)).text)
    reasoning, content = token_chunks(evs)
    assert len(reasoning) + len(content) == 3
    finish = evs[-2]
    assert finish["choices"][0]["finish_reason"] == "length"
    assert finish["usage"]["completion_tokens"] == 3
    body = sim.post(FORWARD, json=chat(model, max_tokens=3), headers=auth()).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3


def test_prompt_and_cached_tokens(sim: httpx.Client) -> None:
    system = "You are a helpful assistant. " * 12
    messages = [{"role": "system", "content": system}, {"role": "user", "content": "Hi ✓"}]
    expected = sum(4 + math.ceil(len(m["content"].encode()) / 4) for m in messages)
    prefix = 4 + math.ceil(len(system.encode()) / 4)
    body = {"model": model_id("strong"), "messages": messages}
    r = sim.post(FORWARD, json=body, headers=auth())
    usage = r.json()["usage"]
    assert usage["prompt_tokens"] == expected == int(r.headers["fireworks-prompt-tokens"])
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0}  # a cold prefix cache
    messages[1]["content"] = "Hello ✓"  # same system prompt: its full blocks are cached now
    r = sim.post(FORWARD, json=body, headers=auth())
    assert r.json()["usage"]["prompt_tokens_details"] == {"cached_tokens": prefix // 16 * 16}
    assert int(r.headers["fireworks-cached-prompt-tokens"]) == prefix // 16 * 16
    r = sim.post(FORWARD, json={**body, "model": model_id("nocache")}, headers=auth())
    assert r.json()["usage"]["prompt_tokens_details"] is None


def test_non_streaming_body_and_headers(sim: httpx.Client, key: tuple[Path, list]) -> None:
    item = key[1][5]
    body = chat("strong", f"Please solve: {item['question']}", seed=4)
    r = sim.post(FORWARD, json=body, headers=auth())
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert int(r.headers["content-length"]) == len(r.content)
    data = r.json()
    assert data["object"] == "chat.completion" and data["id"].startswith("chatcmpl-")
    assert data["model"] == model_id("strong")
    choice = data["choices"][0]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert re.search(r"The answer is -?\d+\.$", choice["message"]["content"])
    usage = data["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    for name in ("time-to-first-token", "processing-time"):
        assert float(r.headers[f"fireworks-server-{name}"]) >= 0
    assert "perf_metrics" not in data
    streamed = events(stream(sim, body).text)
    assert "".join(token_chunks(streamed)[1]) == choice["message"]["content"]
    assert streamed[-2]["usage"]["completion_tokens"] == usage["completion_tokens"]


def test_perf_metrics(sim: httpx.Client) -> None:
    body = chat("jittery", perf_metrics_in_response=True)
    r = stream(sim, body)
    evs = events(r.text)
    metrics = evs[-2]["perf_metrics"]
    assert metrics["server-time-to-first-token"] == float(
        r.headers["fireworks-server-time-to-first-token"]
    )
    assert metrics["server-processing-time"] >= metrics["server-time-to-first-token"] > 0
    assert metrics["prompt-tokens"] == evs[-2]["usage"]["prompt_tokens"]
    assert all("perf_metrics" not in e for e in evs[:-2] if isinstance(e, dict))
    r = sim.post(FORWARD, json=body, headers=auth())
    metrics = r.json()["perf_metrics"]
    assert metrics["server-processing-time"] == float(r.headers["fireworks-server-processing-time"])
    assert metrics["cached-prompt-tokens"] == int(r.headers["fireworks-cached-prompt-tokens"])


def test_same_request_same_text(sim: httpx.Client, key: tuple[Path, list]) -> None:
    item = key[1][17]
    for model in ("weak", "jittery"):
        body = chat(model, item["question"], seed=7)
        texts = {
            sim.post(FORWARD, json=body, headers=auth()).json()["choices"][0]["message"]["content"]
            for _ in range(3)
        }
        assert len(texts) == 1
    filler = {
        sim.post(FORWARD, json=chat("strong", "free text"), headers=auth()).text.split(
            '"content":'
        )[1][:80]
        for _ in range(2)
    }
    assert len(filler) == 1


# --- simulator truth ----------------------------------------------------------------------


def answers_correct(sim: httpx.Client, model: str, rows: list[dict[str, str]]) -> list[bool]:
    out = []
    for row in rows:
        body = chat(model, f"Solve this problem.\n\nQuestion: {row['question']}\nAnswer:")
        text = sim.post(FORWARD, json=body, headers=auth()).json()["choices"][0]["message"][
            "content"
        ]
        match = re.search(r"The answer is (-?\d+)\.$", text)
        assert match, text
        out.append(match.group(1) == row["answer"])
    return out


def test_accuracy_follows_skill_and_difficulty_is_shared(
    sim: httpx.Client, key: tuple[Path, list]
) -> None:
    rows = key[1]
    strong = answers_correct(sim, "strong", rows)
    weak = answers_correct(sim, "weak", rows)
    acc_strong, acc_weak = sum(strong) / len(rows), sum(weak) / len(rows)
    assert 0.8 <= acc_strong <= 0.97
    assert 0.2 <= acc_weak <= 0.4
    strong_wrong = [i for i, ok in enumerate(strong) if not ok]
    assert len(strong_wrong) >= 10
    assert sum(not weak[i] for i in strong_wrong) / len(strong_wrong) >= 0.9
    weak_right = [i for i, ok in enumerate(weak) if ok]
    assert sum(strong[i] for i in weak_right) / len(weak_right) >= 0.9


# --- timing -------------------------------------------------------------------------------


def test_stream_timing(sim: httpx.Client, log_path: Path) -> None:
    """jitter 0, 50 ms TTFT, 100 tokens/s: first token after ~50 ms, then ~10 ms apart."""
    body = {**chat("timed"), "stream": True}
    stamps: list[float] = []
    ids: set[str] = set()
    buffer = b""
    start = time.perf_counter()
    with sim.stream("POST", FORWARD, json=body, headers=auth()) as r:
        for data in r.iter_raw():
            now = time.perf_counter()
            buffer += data
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                if b'"content":' in event:
                    stamps.append(now - start)
                    ids.add(json.loads(event[len(b"data: ") :])["id"])
    assert r.headers["fireworks-server-time-to-first-token"] == "0.05"
    assert len(stamps) == 8
    assert 0.048 <= stamps[0] <= 0.065, stamps
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert 0.008 <= statistics.median(gaps) <= 0.013, gaps
    assert all(0.003 <= g <= 0.03 for g in gaps), gaps
    (line,) = [
        x for x in map(json.loads, log_path.read_text().splitlines()) if x["completion_id"] in ids
    ]
    assert line["planned_ttft_s"] == 0.05 and line["planned_itl_s"] == [0.01] * 7
    assert 0.0488 <= line["sent_ttft_s"] <= 0.056
    assert 0 <= stamps[0] - line["sent_ttft_s"] <= 0.01


# --- HTTP/1.1 details --------------------------------------------------------------------


def raw_request(body: dict[str, Any], extra: str = "") -> bytes:
    payload = json.dumps(body).encode()
    head = (
        f"POST {FORWARD} HTTP/1.1\r\nHost: sim\r\nAuthorization: Bearer {SECRET}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n{extra}\r\n"
    )
    return head.encode() + payload


def test_pipelined_requests_answer_in_order_then_close(sim: httpx.Client) -> None:
    slow = raw_request(chat("timed", "one", stream=True, max_tokens=2))
    fast = raw_request(chat("strong", "two"), extra="Connection: close\r\n")
    with socket.create_connection((sim.base_url.host, sim.base_url.port), timeout=5) as s:
        s.sendall(slow + fast)
        data = b""
        while chunk := s.recv(65536):  # the server closes after the second response
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert data.index(b"data: [DONE]") < data.index(b"content-type: application/json")
    assert b"connection: close" in data.split(b"data: [DONE]")[1]


def test_client_disconnect_mid_stream(sim: httpx.Client, log_path: Path) -> None:
    with sim.stream("POST", FORWARD, json={**chat("timed"), "stream": True}, headers=auth()) as r:
        first = next(r.iter_raw())  # the role chunk comes with the headers
    match = re.search(rb'"id":"(chatcmpl-[0-9a-f]+)"', first)
    assert match
    time.sleep(0.2)  # longer than the whole stream would have taken
    assert sim.get("/healthz").text == "ok"
    assert match.group(1).decode() not in log_path.read_text()


# --- the simulator's own log --------------------------------------------------------------


def test_log_lines_match_responses(
    sim: httpx.Client, log_path: Path, key: tuple[Path, list]
) -> None:
    item = key[1][3]
    body = chat("think-field", item["question"], stream_options={"include_usage": True})
    streamed = stream(sim, body)
    evs = events(streamed.text)
    plain = sim.post(FIREWORKS, json=chat("nocache"), headers=auth())
    bad = sim.post(FORWARD, json={**chat("strong"), "bogus": 1}, headers=auth())
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    by_id = {line["completion_id"]: line for line in lines}
    rec = by_id[evs[0]["id"]]
    usage = evs[-2]["usage"]
    assert rec["lava_request_id"] == streamed.headers["x-lava-request-id"]
    assert rec["path"] == "forward" and rec["stream"] is True and rec["status"] == 200
    assert rec["model"] == model_id("think-field")
    assert rec["prompt_tokens"] == usage["prompt_tokens"]
    assert rec["completion_tokens"] == usage["completion_tokens"]
    assert rec["cached_tokens"] == usage["prompt_tokens_details"]["cached_tokens"]
    assert rec["reasoning_tokens"] == len(token_chunks(evs)[0]) == 5
    assert rec["planned_ttft_s"] == float(streamed.headers["fireworks-server-time-to-first-token"])
    assert len(rec["planned_itl_s"]) == usage["completion_tokens"] - 1
    assert rec["finish_reason"] == "stop" and rec["item_id"] == item["id"]
    assert isinstance(rec["correct"], bool)
    rec = by_id[plain.json()["id"]]
    assert rec["lava_request_id"] is None and rec["path"] == "fireworks"
    assert rec["correct"] is None and rec["item_id"] is None and rec["cached_tokens"] is None
    assert rec["completion_tokens"] == plain.json()["usage"]["completion_tokens"] == 5
    rec = by_id[bad.json()["request_id"]]
    assert rec["status"] == 400 and rec["lava_request_id"] == bad.headers["x-lava-request-id"]


# --- several workers, a required key, zero delays ----------------------------------------


def test_two_workers_one_port_same_answers(sim: httpx.Client, key: tuple[Path, list]) -> None:
    settings = settings_for(key[0], workers=2, zero_delays=True, require_secret_key=SECRET)
    item = key[1][42]
    body = chat("weak", item["question"], seed=11, stream=True)
    reference = "".join(token_chunks(events(stream(sim, body).text))[1])
    with running_simulator(settings, CATALOG) as handle:
        workers, texts = set(), set()
        for _ in range(24):  # a new connection each time: the kernel spreads them
            with httpx.Client(base_url=handle.base_url, timeout=10) as client:
                evs = events(stream(client, body).text)
                workers.add(evs[0]["id"][len("chatcmpl-") : len("chatcmpl-") + 8])
                texts.add("".join(token_chunks(evs)[1]))
                other = client.post(FORWARD, json=body, headers=auth("aks_test_someoneelse1"))
                assert other.status_code == 401
                token = forward_token(secret_key=SECRET, provider_key="fw_x")
                assert client.post(FORWARD, json=body, headers=auth(token)).status_code == 200
        assert len(workers) == 2
        assert texts == {reference}
        pid = handle.pid
    time.sleep(0.05)
    alive = [p for p in os.listdir("/proc") if p.isdigit() and _pgid(int(p)) == pid]
    assert alive == []


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def test_start_failure_reports_stderr(tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError, match="answer_keys"),
        running_simulator({"answer_keys": [str(tmp_path / "missing.jsonl")]}, CATALOG),
    ):
        pass


# --- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mapping", "where"),
    [
        ({"sed": 1}, "sim.sed"),
        ({"workers": 0}, "sim.workers"),
        ({"latency_scale": "fast"}, "sim.latency_scale"),
        ({"answer_keys": "a.jsonl"}, "sim.answer_keys"),
        ({"models": {"glm-5": {"skill": 1.5}}}, "sim.models.glm-5.skill"),
        ({"models": {"glm-5": {"usage_style": "trailer"}}}, "sim.models.glm-5.usage_style"),
        ({"models": {"glm-5": {"speed": 3}}}, "sim.models.glm-5.speed"),
    ],
)
def test_settings_name_the_bad_key(mapping: dict, where: str) -> None:
    with pytest.raises(ValueError, match=re.escape(where)):
        from_mapping(mapping)


def test_default_yaml_is_valid() -> None:
    yaml = pytest.importorskip("yaml")
    path = Path(__file__).resolve().parents[2] / "conf" / "sim" / "default.yaml"
    settings = SimSettings.from_mapping(yaml.safe_load(path.read_text()))
    assert settings == from_mapping(yaml.safe_load(path.read_text()))
    assert len(settings.models) == 20
    kimis = [p for name, p in settings.models.items() if name.startswith("kimi-k2")]
    assert kimis and all(p.usage_style == "include_usage_only" for p in kimis)


def test_capacity_queues_streams_past_it_and_their_ttft_includes_the_wait(
    key: tuple[Path, list], tmp_path: Path
) -> None:
    """sim.capacity=1: three streams at once run one after another (0.12 s each); the
    log keeps each one's wait, and the waits step by one stream's duration."""
    from concurrent.futures import ThreadPoolExecutor

    log = tmp_path / "capacity.jsonl"
    settings = settings_for(key[0], log_path=str(log), capacity=1)
    with running_simulator(settings, CATALOG) as handle:
        # one origin for all three: a client's own start can lag the first stream's on a
        # loaded machine, so "since my own start" would undercount the queue
        t0 = time.monotonic()

        def one(i: int) -> float:
            with httpx.Client(base_url=handle.base_url, timeout=10) as client:
                stream(client, chat("timed", f"queue probe {i}"))
                return time.monotonic() - t0

        with ThreadPoolExecutor(3) as pool:
            durations = sorted(pool.map(one, range(3)))
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    waits = sorted(line.get("queue_wait_s", 0.0) for line in lines)
    assert waits[0] < 0.03  # the first found the slot free
    # the clients start a few ms apart, so each waits up to one 0.12 s stream less
    assert 0.06 <= waits[1] <= 0.15 and waits[1] + 0.06 <= waits[2] <= 0.30, waits
    assert durations[2] >= 0.30  # three 0.12 s streams, one at a time
    for line in lines:  # the server's own first-token time counts the wait too
        assert line["sent_ttft_s"] == pytest.approx(
            line.get("queue_wait_s", 0.0) + line["planned_ttft_s"], abs=0.01
        )
