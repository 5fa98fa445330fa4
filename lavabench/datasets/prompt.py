"""A rendered prompt: what the request path takes from a dataset (messages, reference, hash).

Stdlib only, so runner/plan can carry prompts without loading the dataset readers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    """One chat message as sent on the wire."""

    role: str
    content: str

    def as_dict(self) -> dict[str, str]:
        """The OpenAI-style message object."""
        return {"role": self.role, "content": self.content}


def messages_sha256(messages: Iterable[Message]) -> str:
    """sha256 of the canonical JSON of `messages`: identical prompts hash identically."""
    canonical = json.dumps(
        [m.as_dict() for m in messages],
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Prompt:
    """One rendered dataset item, ready to send; `reference` is None when it has no answer."""

    dataset: str
    item_id: str
    messages: tuple[Message, ...]
    reference: str | None
    prompt_sha256: str
    group: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()

    def message_dicts(self) -> list[dict[str, str]]:
        """`messages` as the list of dicts a chat-completions request body takes."""
        return [m.as_dict() for m in self.messages]
