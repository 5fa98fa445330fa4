"""Check a chat-completions body the way Fireworks does, and keep only what the sim uses.

Fireworks rejects unknown top-level fields with 400 "Extra inputs are not permitted"; the
simulator does too, so a client that sends a misspelt field fails here as it would live.
Sampling fields are accepted and ignored: answers depend on the seed, the model and the
item, never on temperature. Only `n` = 1 is simulated (n > 1 gets a 400 that says so).
`stop` and `response_format` are accepted and have no effect. `tools` and `tool_choice` are
checked as Fireworks' schema does (a function name outside [A-Za-z0-9_-]{1,64}, a named choice
that is not offered: 400), and their JSON counts as prompt tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

# The Fireworks chat request schema (api-facts-detail.md §2.2) plus `stream_options`.
ALLOWED_FIELDS = frozenset(
    {
        "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p",
        "top_k", "min_p", "typical_p", "n", "stop", "seed", "stream", "stream_options",
        "response_format", "tools", "tool_choice", "parallel_tool_calls", "functions",
        "function_call", "reasoning_effort", "thinking", "reasoning_history",
        "perf_metrics_in_response", "prompt_cache_key", "prompt_cache_isolation_key", "user",
        "presence_penalty", "frequency_penalty", "repetition_penalty", "mirostat_target",
        "mirostat_lr", "logit_bias", "context_length_exceeded_behavior", "prompt_truncate_len",
        "logprobs", "top_logprobs", "service_tier", "speculation", "prediction", "echo",
        "echo_last", "raw_output", "return_token_ids", "ignore_eos", "safe_tokenization",
        "metadata",
    }
)  # fmt: skip
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
DEFAULT_MAX_TOKENS = 2048
PER_MESSAGE_TOKENS = 4
CACHE_BLOCK_TOKENS = 16
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TOOL_CHOICES = ("auto", "none", "required", "any")


class InvalidRequest(Exception):
    """The body breaks Fireworks' request schema; the message is what the client sees."""


@dataclass(slots=True)
class ChatRequest:
    """The parts of a valid request that shape the simulated reply."""

    model: str
    last_user_text: str
    prompt_tokens: int
    prefix_tokens: int
    max_tokens: int
    stream: bool
    include_usage: bool
    perf_metrics: bool
    request_seed: int
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = None
    # (role, UTF-8 text) of each message: the prefix cache hashes them (prefix_cache.py)
    segments: tuple[tuple[str, bytes], ...] = ()
    ignore_eos: bool = False
    context_error: bool = False  # context_length_exceeded_behavior: "error" (else truncate)


def parse_chat(body: bytes, rejected: frozenset[str] = frozenset()) -> ChatRequest:
    """Parse and validate; raise InvalidRequest with a Fireworks-style message.

    `rejected`: fields this endpoint refuses although Fireworks accepts them (sim setting
    `rejected_fields`, e.g. `ignore_eos` to play a plain OpenAI-compatible server)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"Request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("Request body must be a JSON object")
    for key in data:
        if key not in ALLOWED_FIELDS or key in rejected:
            raise InvalidRequest(f"Extra inputs are not permitted, field: '{key}'")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("Field required: 'model' must be a non-empty string")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("Field required: 'messages' must be a non-empty list")
    segments: list[tuple[str, bytes]] = []
    prompt_tokens, last_tokens, last_user_text = _count_messages(messages, segments)
    tools = _tools(data.get("tools"))
    if tools:  # tools are prompt: they come first, so they are part of the cacheable prefix
        encoded_tools = orjson.dumps(tools)
        prompt_tokens += (len(encoded_tools) + 3) // 4
        segments.insert(0, ("tools", encoded_tools))
    behaviour = data.get("context_length_exceeded_behavior", "truncate")
    if behaviour not in ("truncate", "error"):
        raise InvalidRequest("'context_length_exceeded_behavior' must be 'truncate' or 'error'")
    return ChatRequest(
        tools=tools,
        tool_choice=_tool_choice(data.get("tool_choice"), tools),
        model=model,
        last_user_text=last_user_text,
        prompt_tokens=prompt_tokens,
        prefix_tokens=prompt_tokens - last_tokens,
        max_tokens=_max_tokens(data),
        stream=_opt_bool(data, "stream"),
        include_usage=_include_usage(data.get("stream_options")),
        perf_metrics=_opt_bool(data, "perf_metrics_in_response"),
        request_seed=_request_seed(data),
        segments=tuple(segments),
        ignore_eos=_opt_bool(data, "ignore_eos"),
        context_error=behaviour == "error",
    )


def _tools(tools: object) -> list[dict[str, Any]]:
    if tools is None or tools == []:  # whether Fireworks takes [] is not documented: accepted
        return []
    if not isinstance(tools, list):
        raise InvalidRequest("'tools': must be a list of function tools")
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(fn, dict):
            raise InvalidRequest(f"tools[{i}]: must be {{'type': 'function', 'function': {{...}}}}")
        name = fn.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise InvalidRequest(
                f"tools[{i}].function.name: {name!r} must match ^[a-zA-Z0-9_-]{{1,64}}$"
            )
        params = fn.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise InvalidRequest(f"tools[{i}].function.parameters: must be a JSON Schema object")
    return tools


def _tool_choice(choice: object, tools: list[dict[str, Any]]) -> Any:
    if choice is None or choice in TOOL_CHOICES:
        return choice
    fn = choice.get("function") if isinstance(choice, dict) else None
    name = fn.get("name") if isinstance(fn, dict) else None
    if not isinstance(choice, dict) or choice.get("type") != "function" or name is None:
        raise InvalidRequest(
            "'tool_choice': must be auto, none, required, any or "
            "{'type': 'function', 'function': {'name': ...}}"
        )
    if name not in {t["function"]["name"] for t in tools}:
        raise InvalidRequest(f"'tool_choice': function {name!r} is not among the tools")
    return choice


def _count_messages(messages: list, segments: list[tuple[str, bytes]]) -> tuple[int, int, str]:
    """(prompt tokens, tokens of the last message, text of the last user message).

    A message costs 4 tokens plus ceil(UTF-8 bytes of its text / 4): deterministic, and
    additive, so the tokens of all messages but the last form a shared prefix.
    """
    total = 0
    tokens = 0
    last_user = ""
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(f"messages[{i}]: must be an object")
        role = message.get("role")
        if role not in ROLES:
            raise InvalidRequest(f"messages[{i}].role: must be one of {sorted(ROLES)}")
        text = _content_text(message.get("content"), i)
        encoded = text.encode()
        segments.append((role, encoded))
        tokens = PER_MESSAGE_TOKENS + (len(encoded) + 3) // 4
        total += tokens
        if role == "user":
            last_user = text
    return total, tokens, last_user


def _content_text(content: object, i: int) -> str:
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise InvalidRequest(f"messages[{i}].content: parts must be typed objects")
            if part["type"] == "text":
                text = part.get("text")
                if not isinstance(text, str):
                    raise InvalidRequest(f"messages[{i}].content: text part needs 'text'")
                parts.append(text)
        return "\n".join(parts)
    raise InvalidRequest(f"messages[{i}].content: must be a string, a list of parts or null")


def _max_tokens(data: dict) -> int:
    if "max_tokens" in data and "max_completion_tokens" in data:
        raise InvalidRequest("Set either 'max_tokens' or 'max_completion_tokens', not both")
    for name in ("max_tokens", "max_completion_tokens"):
        value = data.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequest(f"'{name}' must be an integer >= 1")
        return value
    return DEFAULT_MAX_TOKENS


def _opt_bool(data: dict, name: str) -> bool:
    value = data.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidRequest(f"'{name}' must be a boolean")
    return value


def _include_usage(options: object) -> bool:
    if options is None:
        return False
    if not isinstance(options, dict):
        raise InvalidRequest("'stream_options' must be an object")
    return _opt_bool(options, "include_usage")


def _request_seed(data: dict) -> int:
    n = data.get("n")
    if n is not None and n != 1:
        raise InvalidRequest("The simulator only supports n=1")
    seed = data.get("seed")
    if seed is None:
        return 0
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidRequest("'seed' must be an integer")
    return seed
