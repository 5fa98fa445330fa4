"""`workload=` runs: the workload planned (pure, lavabench/workloads) and then sent.

Planning makes Jobs whose Prompts carry only targets; the texts are built when each request
is made (`WorkloadSender.make_request`), from the model's calibration, so no run holds all
its prompts at once. Before the first request each model is calibrated: two probe requests
(max_tokens 1) of different lengths give prompt tokens as a line in bytes of text, from the
server's own usage (a tokenizer of ours would be a guess). Rows get the workload's columns
(targets, prompt hash, how the output length was held, affinity) as they are written.

`ignore_eos` is sent when the workload asks for it; an endpoint that refuses it (400 naming
the field) gets the same request again without it, and so does every later request to that
model: the prompt's long-answer instruction then holds the length alone, and each row says
which (`output_control`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from lavabench.catalog import Model
from lavabench.config import LavabenchConf
from lavabench.datasets.prompt import Message, Prompt, messages_sha256
from lavabench.errors import ConfigError
from lavabench.records.schema import Record
from lavabench.runner.plan import Job
from lavabench.wire.client import Attempt, WireRequest
from lavabench.wire.endpoints import Endpoint
from lavabench.wire.protocol import chat_body
from lavabench.workloads.conversation import SessionBook, SessionKey, conversation_prompts
from lavabench.workloads.spec import WorkloadSpec, workload_spec
from lavabench.workloads.synthetic import SyntheticTexts, synthetic_prompts
from lavabench.workloads.text import Calibration
from lavabench.workloads.trace import read_trace, trace_prompts

log = logging.getLogger("lavabench")

PROBE_BYTES = (2_000, 20_000)
HASH_IN_THREAD_BYTES = (
    256 * 1024
)  # ~64k tokens: below, hashing on the loop costs < 0.2 ms  # ~500 and ~5,000 tokens: a line through both, cents on Fireworks


async def no_grade(job: Job, record: Record, answer_text: str) -> None:
    """Workloads measure latency and cost; there is nothing to grade."""


@dataclass
class WorkloadPlan:
    """A checked workload and its planned prompts (targets only)."""

    spec: WorkloadSpec
    prompts: list[Prompt]
    config: dict[str, Any] = field(default_factory=dict)  # as given (workload.*)
    calibration: dict[str, Calibration] = field(default_factory=dict)
    output_control: dict[str, str] = field(default_factory=dict)  # model -> how, once known

    def arrivals_s(self, jobs: Sequence[Job]) -> list[float] | None:
        """A trace's open-loop send times (recorded offset / speed), one per job; None for the
        other kinds (they take the run's load shape)."""
        if self.spec.kind != "trace":
            return None
        return [float(dict(j.prompt.metadata)["offset_s"]) / self.spec.speed for j in jobs]

    def describe(self) -> dict[str, Any]:
        """For run.json: the spec, each model's calibration and output control."""
        return {
            "name": self.spec.name,
            "kind": self.spec.kind,
            "items": len(self.prompts),
            "config": self.config,
            "calibration": {m: c.as_dict() for m, c in self.calibration.items()},
            "output_control": dict(self.output_control),
        }


def prepare_workload(
    raw: Mapping[str, Any],
    conf: LavabenchConf,
    models: list[Model],
    resolve: Callable[[str], Path],
) -> WorkloadPlan:
    """Check the workload against the run's settings; plan its prompts. Nothing is sent."""
    spec = workload_spec(raw)
    r = conf.runner
    upper = spec.output_upper
    if spec.kind != "trace" and (upper is None or upper > r.max_tokens):
        raise ConfigError(
            f"workload.output_tokens can reach {upper or 'any length'}, above "
            f"runner.max_tokens={r.max_tokens} (the budget's bound): give output_tokens a "
            f"max <= {r.max_tokens}, or raise runner.max_tokens"
        )
    if spec.kind == "synthetic":
        return WorkloadPlan(spec, synthetic_prompts(spec), dict(raw))
    if spec.kind == "conversation":
        if r.workers > 1 or r.load_sweep is not None or conf.resume or r.warmup_requests:
            raise ConfigError(
                "workload kind=conversation runs in one process from the first turn: drop "
                "runner.workers, load=sweep, runner.warmup_requests and resume= (a turn needs "
                "the answers before it)"
            )
        return WorkloadPlan(spec, conversation_prompts(spec), dict(raw))
    return _prepare_trace(spec, raw, conf, resolve)


def _prepare_trace(
    spec: WorkloadSpec, raw: Mapping[str, Any], conf: LavabenchConf, resolve: Callable[[str], Path]
) -> WorkloadPlan:
    r = conf.runner
    if r.repeats > 1 or r.warmup_requests or r.load_sweep is not None:
        raise ConfigError(
            "workload kind=trace replays the recorded times once: drop runner.repeats, "
            "runner.warmup_requests and load=sweep (speed with workload.speed)"
        )
    path = resolve(str(spec.path))
    requests = read_trace(path, spec.limit)
    default_max = spec.max_tokens or r.max_tokens
    for req in requests:
        if (req.max_tokens or default_max) > r.max_tokens:
            raise ConfigError(
                f"{path}:{req.line}: max_tokens={req.max_tokens} is above runner.max_tokens="
                f"{r.max_tokens} (the budget's bound): raise runner.max_tokens"
            )
    return WorkloadPlan(spec, trace_prompts(spec.name, requests, default_max), dict(raw))
    raise ConfigError(f"workload.kind={spec.kind} is not available yet")


class Sender(Protocol):
    async def send(self, request: WireRequest) -> Attempt: ...


@dataclass
class _Sent:
    request: WireRequest
    sha256: str
    max_tokens: int
    affinity: str | None


class WorkloadSender:
    """Builds each workload request at send time and stamps the workload's columns on rows."""

    def __init__(
        self, plan: WorkloadPlan, conf: LavabenchConf, endpoint: Endpoint, run_id: str
    ) -> None:
        self._plan = plan
        self._conf = conf
        self._endpoint = endpoint
        self._run_id = run_id
        self._texts = SyntheticTexts(plan.spec, nonce=run_id)
        self._book = SessionBook(plan.spec, run_id) if plan.spec.kind == "conversation" else None
        self._turns_built: set[tuple[SessionKey, int]] = set()
        self._done: dict[tuple[SessionKey, int], asyncio.Event] = {}
        self._answers: dict[str, str] = {}
        self._headers: dict[str, dict[str, str]] = {}
        self._sent: dict[str, _Sent] = {}
        self._refused: set[str] = set()  # model ids that refused ignore_eos
        self._stripped: set[int] = set()  # id() of requests sent without ignore_eos

    # --- calibration ---------------------------------------------------------------------

    async def calibrate(self, client: Sender, models: list[Model]) -> None:
        """Two probes per model (in parallel); a model whose probes fail keeps the default
        line and says so in run.json (its rows' prompt_tokens still show the truth). A trace
        is sent as recorded: nothing to calibrate."""
        if self._plan.spec.kind == "trace":
            return
        await asyncio.gather(*(self._calibrate_one(client, m) for m in models))

    async def _calibrate_one(self, client: Sender, model: Model) -> None:
        from lavabench.workloads.text import fit_calibration

        points = []
        for size in PROBE_BYTES:
            body = chat_body(model_id=model.id, messages=self._texts.probe(size), max_tokens=1,
                             stream=False, params=None)  # fmt: skip
            headers = self._headers_for(model.name)
            attempt = await client.send(WireRequest(self._endpoint.url, headers, body, False))
            usage = attempt.result.usage if attempt.result is not None else None
            tokens = (usage or {}).get("prompt_tokens")
            if attempt.error is not None or not isinstance(tokens, int):
                why = attempt.error.message if attempt.error is not None else "no prompt_tokens"
                log.warning("workload: %s not calibrated (%s): default line", model.name, why)
                self._plan.calibration[model.name] = Calibration(source=f"default ({why})")
                return
            points.append((size, tokens))
        self._plan.calibration[model.name] = fit_calibration(points)

    # --- requests ------------------------------------------------------------------------

    def make_request(self, job: Job) -> WireRequest | Awaitable[WireRequest]:
        """The job's request, built now from the model's calibration; a conversation's
        later turn is built once the turn before it has answered (the runner waits)."""
        calib = self._plan.calibration.get(job.model.name) or Calibration()
        if self._book is not None:
            return self._turn_request(job, calib)
        if self._plan.spec.kind == "trace":
            meta = dict(job.prompt.metadata)
            params = json.loads(meta["params_json"])
            return self._request(job, json.loads(meta["messages_json"]), params)
        return self._request(job, self._texts.messages(job.prompt, job.repeat, calib))

    async def _turn_request(self, job: Job, calib: Calibration) -> WireRequest:
        assert self._book is not None
        prompt = job.prompt
        key = (job.model.name, prompt.session_id or "", job.repeat)
        turn = prompt.turn_index or 0
        if (key, turn - 1) in self._turns_built:  # not built: skipped (circuit breaker)
            await self._turn_done(key, turn - 1).wait()
            if self._plan.spec.think_time_s:
                await asyncio.sleep(self._plan.spec.think_time_s)
        self._turns_built.add((key, turn))
        made = self._request(job, self._book.messages(key, prompt, calib))
        return made if isinstance(made, WireRequest) else await made

    def _turn_done(self, key: SessionKey, turn: int) -> asyncio.Event:
        event = self._done.get((key, turn))
        if event is None:
            event = self._done[(key, turn)] = asyncio.Event()
        return event

    async def grade(self, job: Job, record: Record, answer_text: str) -> None:
        """The runner's grade hook: keeps a conversation turn's answer for its history."""
        if self._book is not None:
            self._answers[job.job_id] = answer_text

    def _request(
        self, job: Job, messages: list[dict[str, Any]], recorded: dict[str, Any] | None = None
    ) -> WireRequest | Awaitable[WireRequest]:
        prompt, spec, r = job.prompt, self._plan.spec, self._conf.runner
        params = {**r.params, **(recorded or {})}
        if r.seed is not None:
            params["seed"] = r.seed + job.repeat
        if spec.ignore_eos:
            params["ignore_eos"] = True
        headers = self._headers_for(job.model.name)
        affinity = None if spec.affinity == "none" else spec.affinity
        # synthetic: one session (every item shares the prefix); conversation: each session
        key = "/".join(
            x for x in (spec.name, job.model.name, prompt.session_id, str(job.repeat)) if x
        )
        if affinity == "prompt_cache_key":
            params["prompt_cache_key"] = key
        elif affinity == "header":
            headers = {**headers, "x-session-affinity": key}
        max_tokens = prompt.target_output_tokens or r.max_tokens
        body = chat_body(model_id=job.model.id, messages=messages, max_tokens=max_tokens,
                         stream=r.stream, params=params)  # fmt: skip
        request = WireRequest(self._endpoint.url, headers, body, r.stream)
        if len(body) > HASH_IN_THREAD_BYTES:
            return self._hashed_later(job, request, messages, max_tokens, affinity)
        self._sent[job.job_id] = _Sent(request, _sha256(messages), max_tokens, affinity)
        return request

    async def _hashed_later(
        self, job: Job, request: WireRequest, messages: list[dict[str, Any]],
        max_tokens: int, affinity: str | None,
    ) -> WireRequest:  # fmt: skip
        # sha256 of a 100k-token prompt is ~0.3-0.8 ms; hashlib releases the GIL, so in a
        # thread the loop keeps stamping the tokens of the requests in flight meanwhile
        sha = await asyncio.to_thread(_sha256, messages)
        self._sent[job.job_id] = _Sent(request, sha, max_tokens, affinity)
        return request

    def _headers_for(self, model: str) -> dict[str, str]:
        headers = self._headers.get(model)
        if headers is None:
            headers = self._endpoint.headers_for(
                run_id=self._run_id, model=model, dataset=self._plan.spec.name
            )
            self._headers[model] = headers
        return headers

    # --- the client and the sink ---------------------------------------------------------

    def client(self, inner: Sender) -> Sender:
        """`inner`, falling back to no `ignore_eos` for a model that refuses it."""
        return _IgnoreEosFallback(inner, self)

    def sink(self, inner: Any) -> Any:
        """`inner`, with the workload's columns stamped on each row first."""
        return _Stamp(inner, self)

    def stamp(self, record: Record) -> None:
        sent = self._sent.pop(record.job_id, None)
        record.workload_kind = self._plan.spec.kind
        answer = self._answers.pop(record.job_id, None)
        if self._book is not None and record.session_id is not None:
            key = (record.model, record.session_id, record.repeat)
            turn = record.turn_index or 0
            self._book.answered(key, turn, answer if record.status == "ok" else None)
            self._turn_done(key, turn).set()
        if sent is None:  # never sent (no request was built): targets only
            return
        record.prompt_sha256 = sent.sha256
        record.max_tokens = sent.max_tokens
        record.session_affinity = sent.affinity
        if self._plan.spec.kind == "trace":
            return  # replayed as recorded: no output control of ours
        if self._plan.spec.ignore_eos:
            stripped = id(sent.request) in self._stripped
            self._stripped.discard(id(sent.request))
            control = "instruction" if stripped else "ignore_eos"
        else:
            control = "instruction"
        record.output_control = self._plan.output_control[record.model] = control


class _IgnoreEosFallback:
    def __init__(self, inner: Sender, owner: WorkloadSender) -> None:
        self._inner = inner
        self._owner = owner

    async def send(self, request: WireRequest) -> Attempt:
        owner = self._owner
        if not owner._plan.spec.ignore_eos:
            return await self._inner.send(request)
        model = _model_id(request.body)
        if model in owner._refused:
            return await self._inner.send(self._without(request))
        attempt = await self._inner.send(request)
        error = attempt.error
        if attempt.http_status == 400 and error is not None and "ignore_eos" in error.message:
            owner._refused.add(model)
            log.warning("workload: %s refuses ignore_eos: the prompt's instruction alone "
                        "holds the output length from now on", model)  # fmt: skip
            return await self._inner.send(self._without(request))
        return attempt

    def _without(self, request: WireRequest) -> WireRequest:
        body = orjson.loads(request.body)
        body.pop("ignore_eos", None)
        self._owner._stripped.add(id(request))
        return WireRequest(request.url, request.headers, orjson.dumps(body), request.stream)


def _sha256(messages: list[dict[str, Any]]) -> str:
    """messages_sha256 for text messages; a trace's other content (parts) hashes as JSON."""
    if all(isinstance(m.get("content"), str) for m in messages):
        return messages_sha256(Message(m["role"], m["content"]) for m in messages)
    canonical = json.dumps(messages, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _model_id(body: bytes) -> str:
    # the model id sits near the start of every body chat_body writes
    head = body[:512]
    start = head.find(b'"model":"')
    if start < 0:
        return str(orjson.loads(body).get("model"))
    end = head.find(b'"', start + 9)
    return head[start + 9 : end].decode()


class _Stamp:
    def __init__(self, inner: Any, owner: WorkloadSender) -> None:
        self._inner = inner
        self._owner = owner

    def write(self, record: Record) -> None:
        self._owner.stamp(record)
        self._inner.write(record)

    def __getattr__(self, name: str) -> Any:  # the wrapped sink's other methods (StepSink)
        return getattr(self._inner, name)
