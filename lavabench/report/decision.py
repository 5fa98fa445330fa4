"""Pure: the decision card, the first thing on the page and in summary.md.

It renders analysis.pick's PickResult (the pick, the runner-up, the bar, cost per 1,000
items, the accuracy bound and how sure), never a decision of its own. When no model
qualifies it says so and names the closest one: the candidate whose accuracy lower bound
came nearest the bar, with why it failed. The full reasoning (every cheaper model, paired
differences) stays format_pick's text, shown under the card.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

from lavabench.analysis.pick import Candidate, PickResult
from lavabench.report.formatting import ms, percent, usd


@dataclass(frozen=True)
class Card:
    """The card as lines of plain facts: a headline, then (label, text) pairs."""

    headline: str
    qualifies: bool
    facts: list[tuple[str, str]]


def _cost(c: Candidate) -> str:
    basis = str(getattr(c, "cost_basis", "server"))
    if math.isnan(c.usd_per_1k_items):
        return "cost unknown"
    return usd(c.usd_per_1k_items) + " per 1k items" + (" (est.)" if "estim" in basis else "")


def _confidence(result: PickResult) -> float:
    """The one-sided confidence of each bound pick used: 1 - alpha/K."""
    return 1 - result.alpha / max(1, len(result.candidates))


def _bar(result: PickResult) -> str:
    parts = [f"accuracy lower bound ≥ {percent(result.min_quality)}"]
    if result.max_p90_ttft_s is not None:
        parts.append(f"TTFT p90 < {ms(result.max_p90_ttft_s)}")
    if result.max_p90_e2e_s is not None:
        parts.append(f"E2E p90 < {ms(result.max_p90_e2e_s)}")
    scope = f" on {result.dataset}" if result.dataset else ""
    return ", ".join(parts) + scope


def _bound(c: Candidate, result: PickResult) -> str:
    text = (
        f"accuracy {percent(c.accuracy)}, at least {percent(c.accuracy_lower)} with "
        f"{percent(_confidence(result))} confidence (one-sided, α/K over "
        f"K={len(result.candidates)} models)"
    )
    if not math.isnan(c.ttft_p90_upper_s):
        text += f"; TTFT p90 ≤ {ms(c.ttft_p90_upper_s)}"
    if not math.isnan(c.e2e_p90_upper_s):
        text += f"; E2E p90 ≤ {ms(c.e2e_p90_upper_s)}"
    return text


def closest(result: PickResult) -> Candidate | None:
    """When none qualifies: the candidate whose accuracy lower bound came nearest the bar."""
    if not result.candidates:
        return None
    return max(result.candidates, key=lambda c: (c.accuracy_lower, -c.usd_per_1k_items))


def decision_card(result: PickResult) -> Card:
    pick, runner_up = result.pick, result.runner_up
    facts: list[tuple[str, str]] = [("quality bar", _bar(result))]
    if pick is None:
        near = closest(result)
        if near is None:
            return Card("No model qualifies: no graded answers", False, facts)
        facts += [
            ("closest", f"{near.model}: {_cost(near)}"),
            ("its bound", _bound(near, result)),
            ("why not", "; ".join(near.reasons) or "—"),
        ]
        headline = f"No model qualifies (closest: {near.model})"
        return Card(headline, False, _cost_caveats(result, facts))
    facts += [("cost", _cost(pick)), ("how sure", _bound(pick, result))]
    if runner_up is None:
        facts.append(("runner-up", "none qualifies"))
    else:
        facts.append(
            (
                "runner-up",
                f"{runner_up.model}: {_cost(runner_up)}, {percent(runner_up.accuracy)} accuracy",
            )
        )
    cheaper = len(result.rejected_cheaper)
    if cheaper:
        facts.append(("cheaper, rejected", f"{cheaper} model(s), reasons below"))
    return Card(f"Pick: {pick.model}", True, _cost_caveats(result, facts))


def _cost_caveats(result: PickResult, facts: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """What the cost ranking leaves out or folds in (analysis.pick says; older results
    lack these attributes, hence getattr)."""
    if getattr(result, "cost_includes_grading", False):
        facts.append(("cost includes", "the judge's requests (grading spend)"))
    unranked = [c.model for c in getattr(result, "cost_unknown", None) or []]
    if unranked:
        facts.append(("not ranked", f"{', '.join(unranked)}: cost unknown (answers without usage)"))
    return facts


def card_html(card: Card) -> str:
    state = "ok" if card.qualifies else "none"
    rows = "".join(
        f"<tr><th>{html.escape(label)}</th><td>{html.escape(text)}</td></tr>"
        for label, text in card.facts
    )
    return (
        f"<section id='decision' class='card {state}'><h2>{html.escape(card.headline)}</h2>"
        f"<table class='facts'>{rows}</table></section>"
    )


def card_markdown(card: Card) -> list[str]:
    lines = [f"### {'✅' if card.qualifies else '⚠️'} {card.headline}", ""]
    lines += [f"- **{label}:** {text}" for label, text in card.facts]
    return [*lines, ""]
