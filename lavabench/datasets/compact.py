"""`PromptTable`: a dataset's rendered prompts packed into one byte buffer, Prompts on access.

Why: a run holds every prompt from start to end, and as Python objects a short item costs
~850 B (a Prompt, its Message objects, five strings, the hex hash; bench_memory at 100,000
items: +110 MB). Packed, an item is its UTF-8 fields as compact JSON plus a 32-byte hash and
an 8-byte offset. Messages that repeat across items (the system prompt, few-shot turns) are
stored once and referred to by number; so are groups and the per-dataset JSON options.

Reading position i decodes that item into a new, equal Prompt (field for field the one that
was packed: `tests/datasets/test_compact.py`), so every consumer keeps the Prompt API.
Prompts that cannot be packed (a hash that is not sha256 hex, text orjson cannot encode)
are kept as objects: correctness first, compactness where it is free. Stdlib and orjson only.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

import orjson

from lavabench.datasets.prompt import Message, Prompt

_SHA_BYTES = 32


class PromptTable(Sequence[Prompt]):
    """Prompts of one dataset, in order, stored packed (see the module docstring)."""

    def __init__(self, prompts: Iterable[Prompt] = ()) -> None:
        self._blob = bytearray()
        self._offsets = array("q", [0])
        self._sha = bytearray()
        self._interned: list[str] = []  # values many items share (dataset names, groups, options)
        self._values: dict[tuple[str, Any], int] = {}
        self._messages: list[Message] = []  # interned non-final messages
        self._message_ids: dict[Message, int] = {}
        self._loose: dict[int, Prompt] = {}  # prompts kept as objects (see module docstring)
        for prompt in prompts:
            self.append(prompt)

    def _intern(self, kind: str, value: Any) -> int | None:
        if value is None:
            return None
        key = (kind, value)
        found = self._values.get(key)
        if found is None:
            found = self._values[key] = len(self._interned)
            self._interned.append(value)
        return found

    def _message_ref(self, message: Message) -> int:
        found = self._message_ids.get(message)
        if found is None:
            found = self._message_ids[message] = len(self._messages)
            self._messages.append(message)
        return found

    def append(self, prompt: Prompt) -> None:
        """Pack one prompt at the end."""
        index = len(self)
        try:
            sha = bytes.fromhex(prompt.prompt_sha256)
            if len(sha) != _SHA_BYTES or sha.hex() != prompt.prompt_sha256:
                raise ValueError("not a lower-case sha256 hex digest")
            *shared, last = prompt.messages or (None,)
            fields: list[Any] = [
                prompt.item_id,
                [self._message_ref(m) for m in shared],
                None if last is None else [last.role, last.content],
                prompt.reference,
                self._intern("dataset", prompt.dataset),
                self._intern("group", prompt.group),
                self._intern("json", prompt.tool_choice_json),
                self._intern("json", prompt.response_format_json),
                prompt.tools_json,
                [list(pair) for pair in prompt.metadata],
                prompt.target_prompt_tokens,
                prompt.target_output_tokens,
                prompt.session_id,
                prompt.turn_index,
            ]
            while len(fields) > 4 and fields[-1] in (None, []):
                fields.pop()  # trailing defaults cost nothing
            encoded = orjson.dumps(fields)
        except (ValueError, TypeError, orjson.JSONEncodeError):
            self._loose[index] = prompt
            encoded, sha = b"", bytes(_SHA_BYTES)
        self._blob += encoded
        self._offsets.append(len(self._blob))
        self._sha += sha

    def _prompt(self, i: int) -> Prompt:
        loose = self._loose.get(i)
        if loose is not None:
            return loose
        view = memoryview(self._blob)[self._offsets[i] : self._offsets[i + 1]]
        f = orjson.loads(view)
        f += [None] * (14 - len(f))
        messages = [self._messages[ref] for ref in f[1]]
        if f[2] is not None:
            messages.append(Message(f[2][0], f[2][1]))
        value = self._interned
        return Prompt(
            dataset=value[f[4]],
            item_id=f[0],
            messages=tuple(messages),
            reference=f[3],
            prompt_sha256=self._sha[i * _SHA_BYTES : (i + 1) * _SHA_BYTES].hex(),
            group=None if f[5] is None else value[f[5]],
            metadata=tuple((k, v) for k, v in f[9] or ()),
            tools_json=f[8],
            tool_choice_json=None if f[6] is None else value[f[6]],
            response_format_json=None if f[7] is None else value[f[7]],
            target_prompt_tokens=f[10],
            target_output_tokens=f[11],
            session_id=f[12],
            turn_index=f[13],
        )

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @overload
    def __getitem__(self, index: int) -> Prompt: ...

    @overload
    def __getitem__(self, index: slice) -> list[Prompt]: ...

    def __getitem__(self, index: int | slice) -> Prompt | list[Prompt]:
        if isinstance(index, slice):
            return [self._prompt(i) for i in range(len(self))[index]]
        n = len(self)
        if not -n <= index < n:
            raise IndexError("PromptTable index out of range")
        return self._prompt(index % n)

    def __iter__(self) -> Iterator[Prompt]:
        for i in range(len(self)):
            yield self._prompt(i)

    def nbytes(self) -> int:
        """Bytes held by the packed buffers (not the interned values): for tests and benches."""
        return len(self._blob) + self._offsets.itemsize * len(self._offsets) + len(self._sha)


def pack_prompts(prompts: Sequence[Prompt] | Iterable[Prompt]) -> PromptTable:
    """A PromptTable of these prompts, in order."""
    return PromptTable(prompts)
