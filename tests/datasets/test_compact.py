"""PromptTable (datasets/compact.py): packed prompts read back equal, field for field."""

from __future__ import annotations

import hashlib

import pytest

from lavabench.datasets.compact import PromptTable
from lavabench.datasets.prompt import Message, Prompt, prompt_sha256

SYSTEM = Message("system", "Answer with a number.")


def _prompt(i: int, **extra: object) -> Prompt:
    messages = (SYSTEM, Message("user", f"What is {i} + 1? é ✓"))
    fields: dict = {"reference": str(i + 1), "prompt_sha256": prompt_sha256(messages)}
    fields.update(extra)
    return Prompt("ds", f"item-{i}", messages, **fields)


def test_round_trip_every_field() -> None:
    tools = '[{"type":"function","function":{"name":"f"}}]'
    prompts = [
        _prompt(0),
        _prompt(1, reference=None, group="algebra", metadata=(("subject", "x"), ("n", "1"))),
        _prompt(
            2,
            tools_json=tools,
            tool_choice_json='"auto"',
            response_format_json='{"type":"json_object"}',
        ),
        _prompt(3, target_prompt_tokens=10, target_output_tokens=5, session_id="s", turn_index=0),
        Prompt("other", "empty", (), None, hashlib.sha256(b"").hexdigest()),
        _prompt(5, prompt_sha256="h5"),  # not a sha256 digest: kept as the object
    ]
    table = PromptTable(prompts)
    assert len(table) == len(prompts)
    assert list(table) == prompts
    assert [table[i] for i in range(-len(prompts), len(prompts))] == prompts + prompts
    assert table[1:3] == prompts[1:3]
    (first, *_rest) = table
    assert first == prompts[0]
    with pytest.raises(IndexError):
        table[len(prompts)]


def test_shared_messages_are_stored_once() -> None:
    table = PromptTable(_prompt(i) for i in range(1000))
    # the system prompt (21 chars) would be ~40 bytes an item if it were not shared
    assert table.nbytes() < 1000 * 110
    assert table[999].messages[0] is table[0].messages[0]
