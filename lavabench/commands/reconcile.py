"""`lavabench reconcile RUN_DIR`: what Lava billed for a run versus what the run recorded.

Reads `GET {gateway}/v1/requests?metadata_filters=[["run_id", <id>]]&limit=100&cursor=...`
(api-facts-detail.md §1.9) with the secret key from `LAVA_SECRET_KEY` (sent as a bearer
header, never printed or written), waits while records are `pending` (Lava writes them after
the response), matches each billed record to a row by `x-lava-request-id` (else the
provider's completion id), and reports per model: requests matched, tokens and cost recorded
vs billed (exact Decimals; money arrives as 10-decimal strings), and each mismatch beyond a
relative tolerance. Writes `<run_dir>/reconcile.json` so the report can show billed cost.

Every billed request of a run is one of ours, so each kind is matched and reported on its
own line: measured requests (`models`), warm-up requests (`warmup`: billed, kept out of
the statistics) and LLM-judge requests (`judge`, by `judge_lava_request_id`, priced with the
judge's own tokens). Before, warm-ups and judge requests showed as "billed but not
recorded" and a clean run read MISMATCH. Failed attempts that may have been billed (a 200
whose stream was cut: each row's `retry_lava_request_ids`, and an error row's own request
when it got a 200) are the `failed` line: per row, the billed records of those ids against
`retry_cost_pico_usd` (+ the error row's estimated cost); their tokens are not recorded
one by one, so only cost is compared.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from lavabench.errors import ConfigError, LavabenchError
from lavabench.records.reader import read_columns
from lavabench.records.store import read_run_json

RECONCILE_FILE = "reconcile.json"
PAGE_LIMIT = 100
MAX_PAGES = 10_000
_PICO = Decimal(10) ** 12
_COLUMNS = [
    "model",
    "model_id",
    "job_id",
    "is_warmup",
    "status",
    "lava_request_id",
    "response_id",
    "prompt_tokens",
    "completion_tokens",
    "cost_pico_usd",
    "response_cached",
    "judge_model",
    "judge_lava_request_id",
    "judge_prompt_tokens",
    "judge_completion_tokens",
    "judge_cost_pico_usd",
    "http_status",
    "retry_cost_pico_usd",
    "retry_lava_request_ids",
]


def gateway_url(info: dict[str, Any]) -> str:
    """The gateway base URL of a run (run.json endpoint.url up to `/v1/forward`)."""
    url = str((info.get("endpoint") or {}).get("url") or "")
    if "/v1/forward" not in url:
        raise ConfigError(
            "this run did not go through Lava's forward proxy (endpoint.url has no "
            "/v1/forward): nothing to reconcile; pass --base-url to force"
        )
    return url.split("/v1/forward", 1)[0]


def fetch_records(
    client: httpx.Client, base_url: str, secret_key: str, run_id: str
) -> list[dict[str, Any]]:
    """Every request record Lava holds for `run_id`, following the cursor."""
    out: list[dict[str, Any]] = []
    cursor: str | None = None
    headers = {"Authorization": f"Bearer {secret_key}"}
    for _ in range(MAX_PAGES):
        params = {"limit": str(PAGE_LIMIT), "metadata_filters": json.dumps([["run_id", run_id]])}
        if cursor:
            params["cursor"] = cursor
        resp = client.get(f"{base_url.rstrip('/')}/v1/requests", params=params, headers=headers)
        if resp.status_code in (401, 403):
            raise ConfigError(f"GET /v1/requests: {resp.status_code}: check LAVA_SECRET_KEY")
        if resp.status_code != 200:
            raise LavabenchError(f"GET /v1/requests: HTTP {resp.status_code}: {resp.text[:200]}")
        page = resp.json()
        out.extend(page.get("data") or [])
        cursor = page.get("next_cursor")
        if not page.get("has_more") or not cursor:
            return out
    raise LavabenchError(f"GET /v1/requests: more than {MAX_PAGES} pages")


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _differs(recorded: Decimal, billed: Decimal, tolerance: float) -> bool:
    return abs(billed - recorded) > Decimal(str(tolerance)) * max(abs(recorded), Decimal("1e-10"))


def _new_line() -> dict[str, Any]:
    return {
        "requests": 0, "matched": 0, "unmatched": 0, "pending": 0,
        "input_tokens_recorded": 0, "input_tokens_billed": 0,
        "output_tokens_recorded": 0, "output_tokens_billed": 0,
        "cost_recorded_usd": Decimal(0), "cost_billed_usd": Decimal(0),
    }  # fmt: skip


def _match(
    rows: list[dict[str, Any]],
    billed: list[dict[str, Any]],
    used: set[str],
    tolerance: float,
    mismatches: list[dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """Match one kind of rows to billed records; per-model lines, mismatches appended."""
    by_lava = {str(b["request_id"]): b for b in billed if b.get("request_id")}
    by_resp = {str(b["response_id"]): b for b in billed if b.get("response_id")}
    models: dict[str, dict[str, Any]] = {}
    for r in rows:
        m = models.setdefault(r["model"], _new_line())
        m["requests"] += 1
        b = by_lava.get(str(r.get("lava_request_id"))) or by_resp.get(str(r.get("response_id")))
        recorded = _dec(r.get("cost_pico_usd")) / _PICO
        m["cost_recorded_usd"] += recorded
        m["input_tokens_recorded"] += int(r.get("prompt_tokens") or 0)
        m["output_tokens_recorded"] += int(r.get("completion_tokens") or 0)
        if b is None:
            m["unmatched"] += 1
            continue
        used.add(str(b.get("request_id")))
        m["matched"] += 1
        if b.get("status") == "pending":
            m["pending"] += 1
        usage = b.get("model_usage") or {}
        cost = _dec(usage.get("total_cost", b.get("cost")))
        m["cost_billed_usd"] += cost
        tin, tout = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
        m["input_tokens_billed"] += tin
        m["output_tokens_billed"] += tout
        why = []
        if tin != int(r.get("prompt_tokens") or 0) or tout != int(r.get("completion_tokens") or 0):
            why.append("tokens")
        if _differs(recorded, cost, tolerance):
            why.append("cost")
        if why:
            mismatches.append(
                {
                    "job_id": r.get("job_id"),
                    "model": r["model"],
                    "lava_request_id": r.get("lava_request_id"),
                    "what": why,
                    "tokens_recorded": [r.get("prompt_tokens"), r.get("completion_tokens")],
                    "tokens_billed": [tin, tout],
                    "cost_recorded_usd": str(recorded),
                    "cost_billed_usd": str(cost),
                }
            )
    for m in models.values():
        m["cost_recorded_usd"] = str(m["cost_recorded_usd"])
        m["cost_billed_usd"] = str(m["cost_billed_usd"])
    return models


def _match_failed(
    failed: list[dict[str, Any]],
    billed: list[dict[str, Any]],
    used: set[str],
    tolerance: float,
    mismatches: list[dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """Billed failed attempts: one entry per row (its ids, their recorded cost together)."""
    by_lava = {str(b["request_id"]): b for b in billed if b.get("request_id")}
    models: dict[str, dict[str, Any]] = {}
    for r in failed:
        m = models.setdefault(r["model"], _new_line())
        recorded = _dec(r.get("cost_pico_usd")) / _PICO
        m["cost_recorded_usd"] += recorded
        cost = Decimal(0)
        for rid in r["ids"]:
            m["requests"] += 1
            b = by_lava.get(str(rid))
            if b is None:
                m["unmatched"] += 1
                continue
            used.add(str(rid))
            m["matched"] += 1
            m["pending"] += b.get("status") == "pending"
            usage = b.get("model_usage") or {}
            cost += _dec(usage.get("total_cost", b.get("cost")))
            m["input_tokens_billed"] += int(usage.get("input_tokens") or 0)
            m["output_tokens_billed"] += int(usage.get("output_tokens") or 0)
        m["cost_billed_usd"] += cost
        if _differs(recorded, cost, tolerance):
            mismatches.append(
                {"job_id": f"{r['job_id']}#failed", "model": r["model"],
                 "lava_request_id": ",".join(map(str, r["ids"])), "what": ["cost"],
                 "tokens_recorded": [None, None], "tokens_billed": [None, None],
                 "cost_recorded_usd": str(recorded), "cost_billed_usd": str(cost)}
            )  # fmt: skip
    for m in models.values():
        m["cost_recorded_usd"] = str(m["cost_recorded_usd"])
        m["cost_billed_usd"] = str(m["cost_billed_usd"])
    return models


def reconcile(
    rows: list[dict[str, Any]],
    billed: list[dict[str, Any]],
    tolerance: float,
    *,
    warmups: list[dict[str, Any]] | None = None,
    judges: list[dict[str, Any]] | None = None,
    failed: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Pure matching: our requests (measured, warm-up, judge; one dict per request) vs Lava's
    records. See the module docstring."""
    used: set[str] = set()
    mismatches: list[dict[str, Any]] = []
    lines = {
        "models": _match(rows, billed, used, tolerance, mismatches),
        "warmup": _match(warmups or [], billed, used, tolerance, mismatches),
        "judge": _match(judges or [], billed, used, tolerance, mismatches),
        "failed": _match_failed(failed or [], billed, used, tolerance, mismatches),
    }
    extra = [b.get("request_id") for b in billed if str(b.get("request_id")) not in used]
    ok = (
        not mismatches
        and not extra
        and all(
            m["unmatched"] == 0 and m["pending"] == 0
            for kind in lines.values()
            for m in kind.values()
        )
    )
    return {
        "ok": ok,
        "tolerance": tolerance,
        **lines,
        "mismatches": mismatches,
        "billed_not_recorded": extra,
        "billed_records": len(billed),
    }


def request_rows(df: Any) -> tuple[list[dict[str, Any]], ...]:
    """(measured, warm-up, judge) request dicts from a run's rows: what was sent to Lava."""
    sent = df[~df["response_cached"].fillna(False).astype(bool) & (df["status"] == "ok")]
    warm = sent["is_warmup"].fillna(False).astype(bool)
    judged = df[df["judge_lava_request_id"].notna()] if "judge_lava_request_id" in df else df[:0]
    judges = [
        {
            "model": str(r["judge_model"]),
            "job_id": f"{r['job_id']}#judge",
            "lava_request_id": r["judge_lava_request_id"],
            "response_id": None,
            "prompt_tokens": r["judge_prompt_tokens"],
            "completion_tokens": r["judge_completion_tokens"],
            "cost_pico_usd": r["judge_cost_pico_usd"],
        }
        for r in judged.to_dict("records")
    ]
    return sent[~warm].to_dict("records"), sent[warm].to_dict("records"), judges


def failed_attempts(df: Any) -> list[dict[str, Any]]:
    """Per row, the requests that failed but may have been billed, with their recorded cost:
    its earlier attempts (`retry_lava_request_ids`, `retry_cost_pico_usd`) and, for an error
    row that got a 200 (a cut stream), the row's own request and estimated cost."""
    out = []
    for r in df[~df["response_cached"].fillna(False).astype(bool)].to_dict("records"):
        retry_ids = r.get("retry_lava_request_ids")  # an array from Arrow, or None
        ids = [] if retry_ids is None else [str(i) for i in retry_ids]
        cost = int(r.get("retry_cost_pico_usd") or 0) if ids else 0
        if r["status"] != "ok" and r.get("http_status") == 200 and r.get("lava_request_id"):
            ids.append(r["lava_request_id"])
            cost += int(r.get("cost_pico_usd") or 0)
        if ids:
            out.append({"model": r["model"], "job_id": r["job_id"], "ids": ids,
                        "cost_pico_usd": cost})  # fmt: skip
    return out


def reconcile_run(
    run_dir: Path | str,
    *,
    secret_key: str,
    base_url: str | None = None,
    wait_s: float = 60.0,
    tolerance: float = 0.01,
    poll_s: float = 1.0,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, Any]:
    """Fetch, wait for pending records up to `wait_s`, match, write reconcile.json."""
    if not secret_key:
        raise ConfigError("reconcile needs LAVA_SECRET_KEY (the secret key reads /v1/requests)")
    run_dir = Path(run_dir)
    info = read_run_json(run_dir)
    run_id = str(info.get("run_id") or run_dir.name)
    base = base_url or gateway_url(info)
    df = read_columns(run_dir, _COLUMNS).to_pandas()
    rows, warmups, judges = request_rows(df)
    failed = failed_attempts(df) if "retry_lava_request_ids" in df else []
    expected = {
        str(r["lava_request_id"]) for r in [*rows, *warmups, *judges] if r.get("lava_request_id")
    } | {str(i) for f in failed for i in f["ids"]}
    deadline = time.monotonic() + wait_s
    with httpx.Client(timeout=30.0, transport=transport) as client:
        while True:
            billed = fetch_records(client, base, secret_key, run_id)
            ids = {str(b.get("request_id")) for b in billed}
            pending = any(b.get("status") == "pending" for b in billed)
            if (not pending and expected <= ids) or time.monotonic() >= deadline:
                break
            time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
    report = reconcile(rows, billed, tolerance, warmups=warmups, judges=judges, failed=failed)
    report.update({"run_id": run_id, "gateway": base, "waited_until_pending_cleared": not pending})
    (run_dir / RECONCILE_FILE).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report


def format_reconcile(report: dict[str, Any]) -> str:
    """Human lines: one per model, then the mismatches (first 20)."""
    lines = [f"reconcile run {report.get('run_id')}: {'OK' if report['ok'] else 'MISMATCH'}"]
    named = [("", m, line) for m, line in report["models"].items()]
    named += [("warm-up ", m, line) for m, line in (report.get("warmup") or {}).items()]
    named += [("judge ", m, line) for m, line in (report.get("judge") or {}).items()]
    named += [("failed ", m, line) for m, line in (report.get("failed") or {}).items()]
    for kind, model, m in named:
        lines.append(
            f"  {kind + model:28s} matched {m['matched']}/{m['requests']} pending {m['pending']}  "
            f"tokens in {m['input_tokens_recorded']}/{m['input_tokens_billed']} "
            f"out {m['output_tokens_recorded']}/{m['output_tokens_billed']}  "
            f"cost ${m['cost_recorded_usd']} recorded / ${m['cost_billed_usd']} billed"
        )
    for mm in report["mismatches"][:20]:
        lines.append(
            f"  mismatch {mm['job_id']} ({', '.join(mm['what'])}): cost "
            f"{mm['cost_recorded_usd']} vs {mm['cost_billed_usd']}, tokens "
            f"{mm['tokens_recorded']} vs {mm['tokens_billed']}"
        )
    if report["billed_not_recorded"]:
        lines.append(f"  billed but not recorded: {len(report['billed_not_recorded'])}")
    return "\n".join(lines)


def main(args: list[str]) -> int:
    """Read back Lava's billing records for a run and match them to ours (reconcile.py)."""

    parser = argparse.ArgumentParser(
        prog="lavabench reconcile",
        description="Read back what Lava billed for a run ($LAVA_SECRET_KEY) and match it to "
        "the recorded requests. Exit 0 matched, 1 mismatch or unmatched requests.",
    )
    parser.add_argument("run_dir", type=Path, help="results/<run_id>")
    parser.add_argument("--base-url", default=None, help="gateway URL (default: run.json)")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for pending")
    parser.add_argument("--tolerance", type=float, default=0.01, help="relative cost tolerance")
    opts = parser.parse_args(args)
    report = reconcile_run(
        opts.run_dir,
        secret_key=os.environ.get("LAVA_SECRET_KEY", ""),
        base_url=opts.base_url,
        wait_s=opts.wait,
        tolerance=opts.tolerance,
    )
    print(format_reconcile(report))
    return 0 if report["ok"] else 1
