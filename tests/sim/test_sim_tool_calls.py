"""Simulated tool calls: the official OpenAI SDK reads them; tool_choice; 400 on bad tools."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from lavabench.sim.process import running_simulator

openai = pytest.importorskip("openai")

MODEL = "accounts/fireworks/models/tool-model"
CATALOG = {"tool-model": {"id": MODEL, "reasoning": False}}
QUESTION = "What is the weather in Reykjavik in celsius?"
FUNCTION = {"name": "weather.get", "description": "Current weather.", "parameters": {
    "type": "dict", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
    "required": ["city"]}}  # fmt: skip
TOOLS = [{"type": "function", "function": {"name": "weather_get", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
    "required": ["city"]}}}]  # fmt: skip


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    root = tmp_path_factory.mktemp("bfcl")
    (root / "possible_answer").mkdir()
    row = {"id": "simple_python_0", "question": [[{"role": "user", "content": QUESTION}]],
           "function": [FUNCTION]}  # fmt: skip
    truth = {"id": "simple_python_0",
             "ground_truth": [{"weather.get": {"city": ["Reykjavík", "Reykjavik"],
                                               "unit": ["celsius", ""]}}]}  # fmt: skip
    (root / "BFCL_v4_simple_python.json").write_text(json.dumps(row, ensure_ascii=False) + "\n")
    (root / "possible_answer" / "BFCL_v4_simple_python.json").write_text(json.dumps(truth) + "\n")
    settings = {"seed": 5, "zero_delays": True, "answer_keys": [str(root)],
                "models": {"tool-model": {"skill": 1.0}}}  # fmt: skip
    with running_simulator(settings, CATALOG) as sim:
        sdk = openai.OpenAI(base_url=f"{sim.base_url}/inference/v1", api_key="k", max_retries=0)
        yield sdk
        sdk.close()


def _ask(client: openai.OpenAI, **extra):
    return client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}], tools=TOOLS, **extra
    )


def test_sdk_streams_a_tool_call_in_fragments(client: openai.OpenAI) -> None:
    names, fragments, finish = [], [], None
    for chunk in _ask(client, stream=True, stream_options={"include_usage": True}):
        if not chunk.choices:
            continue
        for call in chunk.choices[0].delta.tool_calls or ():
            if call.function and call.function.name:
                names.append(call.function.name)
            if call.function and call.function.arguments:
                fragments.append(call.function.arguments)
        finish = chunk.choices[0].finish_reason or finish
    assert names == ["weather_get"] and finish == "tool_calls"
    assert len(fragments) > 2  # split over several chunks, like real servers
    assert json.loads("".join(fragments)) == {"city": "Reykjavík", "unit": "celsius"}


def test_sdk_reads_a_non_streamed_call_and_tool_choice_none(client: openai.OpenAI) -> None:
    message = _ask(client).choices[0].message
    (call,) = message.tool_calls
    assert call.function.name == "weather_get" and call.id.startswith("call_")
    assert json.loads(call.function.arguments)["city"] == "Reykjavík"
    plain = _ask(client, tool_choice="none").choices[0]
    assert plain.message.tool_calls is None and plain.finish_reason == "stop"
    assert plain.message.content


def test_malformed_tools_get_fireworks_400(client: openai.OpenAI) -> None:
    bad = [{"type": "function", "function": {"name": "weather.get", "parameters": {}}}]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": QUESTION}], tools=bad
        )
    body = info.value.body
    assert isinstance(body, dict) and "weather.get" in body["message"]
    assert info.value.response.json()["error"]["object"] == "error"
