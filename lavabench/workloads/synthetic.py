"""Pure: the `synthetic` workload: N items of drawn target lengths, texts built at send time.

Planning draws only the targets (input and output tokens per item, seeded), so a plan of
10,000 items of 100k tokens holds 20,000 integers, not 4 GB of text; `SyntheticTexts` builds
one item's messages when its request is made, from the model's calibration.

A user message is `[prefix][marker][unique text][instruction]`:
- `fresh`: no prefix; the marker (hash of nonce, item, repeat) is the very first thing, so no
  two prompts share even their first token or cache block;
- `shared_prefix`: the first `prefix_tokens` tokens are the same for every item of the seed,
  then the marker and unique text;
- `repeat`: no marker: item i's text depends on (seed, i) only, so repeats hit the cache.
The instruction asks for a long answer in every mode, so the prompt is the same whether the
endpoint accepts `ignore_eos` or the run had to fall back on the instruction alone.
`fresh_nonce: run` (default) puts the run id in the marker, so a nightly run never hits the
cache the previous night left; `seed` makes prompts bit-identical across runs.
"""

from __future__ import annotations

from lavabench.datasets.prompt import Prompt
from lavabench.workloads.spec import WorkloadSpec
from lavabench.workloads.text import Calibration, Corpus, marker

MAX_PROMPT_BYTES = 16 << 20  # 4M tokens at the simulator's 4 bytes a token


def synthetic_prompts(spec: WorkloadSpec) -> list[Prompt]:
    """One Prompt per item: targets only (messages are built at send time)."""
    inputs = spec.input_tokens.draw(spec.items, spec.seed)
    outputs = spec.output_tokens.draw(spec.items, spec.seed + 1)
    width = len(str(spec.items - 1))
    return [
        Prompt(
            dataset=spec.name,
            item_id=f"{i:0{width}d}",
            messages=(),
            reference=None,
            prompt_sha256="",
            target_prompt_tokens=t_in,
            target_output_tokens=t_out,
        )
        for i, (t_in, t_out) in enumerate(zip(inputs, outputs, strict=True))
    ]


def instruction(output_tokens: int) -> str:
    """Asks for an answer at least as long as the target (the fallback when `ignore_eos` is
    refused; words run a little over one token each, so the model stops at max_tokens)."""
    return f"\n\nNow write a long essay of at least {output_tokens} words about the text above."


class SyntheticTexts:
    """Builds the messages of one synthetic item for one model's calibration."""

    def __init__(self, spec: WorkloadSpec, nonce: str) -> None:
        self._spec = spec
        self._nonce = nonce if spec.fresh_nonce == "run" else f"seed{spec.seed}"
        self._corpus = Corpus(spec.seed)

    def messages(self, prompt: Prompt, repeat: int, calib: Calibration) -> list[dict[str, str]]:
        """The chat messages of `prompt` (repeat `repeat`), sized by `calib`."""
        s = self._spec
        target = prompt.target_prompt_tokens or 1
        total = min(calib.bytes_for(target), MAX_PROMPT_BYTES)
        tail = instruction(prompt.target_output_tokens or 1)
        head = ""
        if s.cache_mode == "shared_prefix":
            head = self._corpus.head(calib.bytes_for(s.prefix_tokens))
        if s.cache_mode != "repeat":
            head += marker(self._nonce, prompt.item_id, repeat)
        key = f"{prompt.item_id}" if s.cache_mode == "repeat" else f"{prompt.item_id}/{repeat}"
        body = self._corpus.slice(key, total - len(head) - len(tail))
        return self._wrap(head + body + tail)

    def probe(self, text_bytes: int) -> list[dict[str, str]]:
        """A calibration probe: the workload's message shape with `text_bytes` of text."""
        return self._wrap(self._corpus.slice(f"probe/{text_bytes}", text_bytes))

    def _wrap(self, user: str) -> list[dict[str, str]]:
        if self._spec.system_prompt is None:
            return [{"role": "user", "content": user}]
        return [
            {"role": "system", "content": self._spec.system_prompt},
            {"role": "user", "content": user},
        ]
