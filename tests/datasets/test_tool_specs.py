"""Dataset specs that carry tools, tool_choice and response_format into the request body."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from lavabench.datasets.spec import DatasetSpec, load_prompts
from lavabench.errors import ConfigError, DatasetError
from lavabench.wire.protocol import chat_body

TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}  # fmt: skip


def _spec(tmp_path: Path, rows: list[dict], **extra) -> DatasetSpec:
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return DatasetSpec(name="t", path=str(path), grader="exact", **extra)


def test_tools_field_tool_choice_and_response_format_reach_the_body(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        [{"id": "a", "question": "Weather in Oslo?", "answer": "x", "tools": [TOOL]}],
        tools_field="tools",
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        response_format={"type": "json_object"},
    )
    (prompt,) = load_prompts(spec)
    body = orjson.loads(
        chat_body(
            model_id="m",
            messages=prompt.message_dicts(),
            max_tokens=8,
            stream=True,
            tools=orjson.Fragment(prompt.tools_json),
            tool_choice=orjson.Fragment(prompt.tool_choice_json),
            response_format=orjson.Fragment(prompt.response_format_json),
        )
    )
    assert body["tools"] == [TOOL]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["response_format"] == {"type": "json_object"}
    # the tools are part of the prompt's identity; a text prompt's hash is unchanged
    plain = load_prompts(_spec(tmp_path, [{"id": "a", "question": "Weather in Oslo?"}]))[0]
    assert plain.prompt_sha256 != prompt.prompt_sha256
    assert "tools" not in orjson.loads(
        chat_body(model_id="m", messages=plain.message_dicts(), max_tokens=8, stream=False)
    )


def test_bad_tool_settings_fail_before_any_request(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"dataset\.tool_choice"):
        _spec(tmp_path, [{"id": "a", "question": "q"}], tool_choice="sometimes")
    with pytest.raises(ConfigError, match=r"dataset\.response_format"):
        _spec(tmp_path, [{"id": "a", "question": "q"}], response_format={"type": "yaml"})
    spec = _spec(tmp_path, [{"id": "a", "question": "q", "tools": [{"name": "f"}]}],
                 tools_field="tools")  # fmt: skip
    with pytest.raises(DatasetError, match=r"items.jsonl:1: field 'tools'"):
        load_prompts(spec)


def test_bfcl_dataset_hash_covers_the_ground_truth(tmp_path: Path) -> None:
    from lavabench.datasets.spec import dataset_sha256

    question = tmp_path / "BFCL_v4_simple_python.json"
    question.write_text('{"id": "simple_python_0"}\n')
    alone = dataset_sha256(question)
    (tmp_path / "possible_answer").mkdir()
    truth = tmp_path / "possible_answer" / question.name
    truth.write_text('{"id": "simple_python_0", "ground_truth": []}\n')
    with_truth = dataset_sha256(question)
    truth.write_text('{"id": "simple_python_0", "ground_truth": [{"f": {}}]}\n')
    assert len({alone, with_truth, dataset_sha256(question)}) == 3
