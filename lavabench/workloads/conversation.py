"""Pure: the `conversation` workload: sessions of N turns whose history grows with real answers.

Planning makes one Prompt per (session, turn), turn-major (every session's turn 0, then every
session's turn 1, ...), so the runner's in-order dispatch never waits for a turn that was not
sent yet. Turn 0's user message is `input_tokens` long (a unique marker first, as `fresh`);
each later turn appends the model's answer to turn k-1 and a new user message of
`user_tokens`. The history of one (model, session, repeat) lives in a `SessionBook`: the
sending side fills in answers as rows are made, and reads turn k's messages from it.

`target_prompt_tokens` of turn k is the planned size when every earlier answer is exactly its
`output_tokens` (which `ignore_eos` makes true): turn 0's target plus each earlier answer and
user message. Chat-template tokens per message come on top, so later turns run a little over.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lavabench.datasets.prompt import Prompt
from lavabench.workloads.spec import WorkloadSpec
from lavabench.workloads.synthetic import instruction
from lavabench.workloads.text import Calibration, Corpus, marker

SessionKey = tuple[str, str, int]  # (model, session id, repeat)


def conversation_prompts(spec: WorkloadSpec) -> list[Prompt]:
    """sessions x turns Prompts, turn-major; targets drawn per session and turn (seeded)."""
    n = spec.sessions * spec.turns
    first = spec.input_tokens.draw(spec.sessions, spec.seed)
    users = spec.user_tokens.draw(n, spec.seed + 2)
    outputs = spec.output_tokens.draw(n, spec.seed + 1)
    width, turn_width = len(str(spec.sessions - 1)), len(str(spec.turns - 1))
    prompts = []
    for turn in range(spec.turns):
        for s in range(spec.sessions):
            at = s * spec.turns
            size = first[s] + sum(outputs[at + k] + users[at + k + 1] for k in range(turn))
            session = f"s{s:0{width}d}"
            prompts.append(
                Prompt(
                    dataset=spec.name,
                    item_id=f"{session}-t{turn:0{turn_width}d}",
                    messages=(),
                    reference=None,
                    prompt_sha256="",
                    target_prompt_tokens=size,
                    target_output_tokens=outputs[at + turn],
                    session_id=session,
                    turn_index=turn,
                    metadata=(("user_tokens", str(users[at + turn] if turn else first[s])),),
                )
            )
    return prompts


@dataclass
class _History:
    messages: list[dict[str, str]] = field(default_factory=list)
    answered: int = -1  # the last turn whose answer (or failure) is in


class SessionBook:
    """Every session's history; turn k's messages are turns 0..k-1 with their answers, then
    turn k's user message. A failed turn leaves its user message out of the history (as an
    application retrying it would), so later turns still alternate user / assistant."""

    def __init__(self, spec: WorkloadSpec, nonce: str) -> None:
        self._spec = spec
        self._nonce = nonce if spec.fresh_nonce == "run" else f"seed{spec.seed}"
        self._corpus = Corpus(spec.seed)
        self._sessions: dict[SessionKey, _History] = {}
        self._pending: dict[tuple[SessionKey, int], dict[str, str]] = {}

    def messages(self, key: SessionKey, prompt: Prompt, calib: Calibration) -> list[dict[str, str]]:
        """Turn `prompt.turn_index` of session `key`: the history so far plus a new message."""
        history = self._sessions.setdefault(key, _History())
        if not history.messages and self._spec.system_prompt is not None:
            history.messages.append({"role": "system", "content": self._spec.system_prompt})
        turn = prompt.turn_index or 0
        tail = instruction(prompt.target_output_tokens or 1)
        user_tokens = int(dict(prompt.metadata).get("user_tokens", "1"))
        if turn == 0:
            head = marker(self._nonce, *key)
            size = calib.bytes_for(user_tokens) - len(head) - len(tail)
        else:
            head = f"Turn {turn}. "
            size = round(user_tokens / calib.per_byte) - len(head) - len(tail)
        text = head + self._corpus.slice(f"{key[1]}/{key[2]}/{turn}", size) + tail
        user = {"role": "user", "content": text}
        self._pending[(key, turn)] = user
        return [*history.messages, user]

    def answered(self, key: SessionKey, turn: int, answer: str | None) -> None:
        """Turn `turn` ended: its user message and `answer` join the history (None: failed)."""
        history = self._sessions.setdefault(key, _History())
        user = self._pending.pop((key, turn), None)
        if answer is not None and user is not None:
            history.messages += [user, {"role": "assistant", "content": answer}]
        history.answered = max(history.answered, turn)

    def history(self, key: SessionKey) -> list[dict[str, str]]:
        """The session's messages so far (tests, and the report of what was sent)."""
        return list(self._sessions.get(key, _History()).messages)
