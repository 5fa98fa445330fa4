"""The official OpenAI SDK reads the simulator's Fireworks path: a second, independent parser.

If the SDK accepts our streams (role chunk, one token per chunk, usage chunk with empty
`choices`, `[DONE]`), the simulator speaks the protocol real clients expect, not just ours.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lavabench.sim.process import running_simulator

openai = pytest.importorskip("openai")

MODEL = "accounts/fireworks/models/sdk-model"
CATALOG = {"sdk-model": {"id": MODEL, "reasoning": False}}
SETTINGS = {
    "seed": 5,
    "models": {
        "sdk-model": {
            "ttft_s": 0.0,
            "tokens_per_s": 100_000,
            "jitter": 0.0,
            "usage_style": "include_usage_only",
            "default_output_tokens": 12,
        }
    },
}
MESSAGES = [{"role": "user", "content": "Say something short."}]


@pytest.fixture(scope="module")
def client() -> Iterator[openai.OpenAI]:
    with running_simulator(SETTINGS, CATALOG) as sim:
        sdk = openai.OpenAI(
            base_url=f"{sim.base_url}/inference/v1", api_key="fw_test_key", max_retries=0
        )
        yield sdk
        sdk.close()


def test_sdk_streams_content_and_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    pieces, usage, finish = [], None, None
    for chunk in stream:
        assert chunk.model == MODEL
        if chunk.choices:
            delta = chunk.choices[0].delta
            if delta.content:
                pieces.append(delta.content)
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage is not None:
            usage = chunk.usage
    assert len(pieces) == 12 and finish == "stop"
    assert usage is not None and usage.completion_tokens == 12
    assert usage.total_tokens == usage.prompt_tokens + 12


def test_sdk_non_streaming(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=5)
    assert reply.object == "chat.completion"
    assert reply.choices[0].finish_reason == "length"
    assert reply.choices[0].message.role == "assistant"
    assert len(reply.choices[0].message.content.split()) == 5
    assert reply.usage is not None and reply.usage.completion_tokens == 5


def test_sdk_sees_unknown_model_as_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="Model not found"):
        client.chat.completions.create(model="accounts/fireworks/models/nope", messages=MESSAGES)
