"""The prompt hash: orjson's canonical bytes equal json.dumps' (so no stored hash changes)."""

from __future__ import annotations

import hashlib
import json
import random

from lavabench.datasets.prompt import Message, messages_sha256


def _reference(messages: list[Message]) -> str:
    canonical = json.dumps([m.as_dict() for m in messages], ensure_ascii=False,
                           separators=(",", ":"), sort_keys=True)  # fmt: skip
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def test_hash_equals_the_json_dumps_definition_on_awkward_text() -> None:
    rnd = random.Random(0)
    alphabet = ['"', "\\", "/", "\n", "\r", "\t", "\x00", "\x1f", "\x7f", "é", "\u2028",
                "\u2029", "\U0001f600", "\ufeff", "a", " ", "<", "&", "'"]  # fmt: skip
    for _ in range(300):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 40)))
        messages = [Message("system", "be brief"), Message("user", text)]
        assert messages_sha256(messages) == _reference(messages)
