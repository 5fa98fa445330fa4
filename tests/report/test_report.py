"""report.py: files for a run with failures and a one-model run; the page in real headless
Chromium (no console errors, every figure has a size, a screenshot as a test artifact)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lavabench.cli import main
from lavabench.records.reader import read_runs
from lavabench.report.page import write_report
from tests.analysis.test_analysis_frontier import make_rows, write_run

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "results" / "test-artifacts"
PRICES = {"a": ("0.1", "0.4"), "b": ("0.9", "0.9"), "c": ("2", "8")}
FIGURES = {"quality_vs_price", "quality_vs_blended_price", "latency_ecdf", "speed", "cost"}


def _run_with_failures(tmp_path: Path) -> Path:
    rows = make_rows(
        {
            "a": {"acc": 0.7, "pico": 100, "errors": 5},
            "b": {"acc": 0.95, "pico": 900, "ttft": 0.4},
            "c": {"acc": 0.9, "pico": 5000, "ttft": 0.8, "errors": 2},
        }
    )
    return write_run(tmp_path / "run-fail", rows, PRICES)


def test_report_files_for_a_run_with_failures(tmp_path: Path) -> None:
    run = _run_with_failures(tmp_path)
    page = write_report(read_runs([run]), run / "report", run_dirs=[run], min_quality=0.8)
    out = page.parent
    names = {p.stem for p in out.glob("*.png")}
    assert {*FIGURES, "reliability"} <= names and names == {p.stem for p in out.glob("*.svg")}
    assert all(p.stat().st_size > 5000 for p in out.glob("*.png"))
    html = page.read_text()
    assert html.count("data:image/png;base64,") == len(names)  # self-contained
    assert "(simulated)" in html and "pick:      b" in html
    summary = json.loads((out / "summary.json").read_text())
    assert summary["simulated"] is True and summary["pick"]["model"] == "b"
    a = next(m for m in summary["models"] if m["model"] == "a")
    assert a["ttft_p99_s"] == "inf" and a["errors"] == 5 and a["on_frontier"] is True
    assert "| model |" in (out / "summary.md").read_text()


def test_report_for_one_model_and_several_datasets(tmp_path: Path) -> None:
    rows = make_rows({"a": {"acc": 0.9}}, dataset="d1")
    run1 = write_run(tmp_path / "one", rows, PRICES, simulated=False)
    run2 = write_run(tmp_path / "two", make_rows({"a": {"acc": 0.5}}, dataset="d2"), PRICES)
    page = write_report(read_runs([run1]), run1 / "report", run_dirs=[run1])
    assert "(simulated)" not in page.read_text()
    assert {*FIGURES} <= {p.stem for p in page.parent.glob("*.png")}
    page = write_report(read_runs([run1, run2]), tmp_path / "both", run_dirs=[run1, run2])
    assert {"quality_vs_price_d1", "quality_vs_price_d2"} <= {
        p.stem for p in page.parent.glob("*.png")
    }


def test_cli_report_latest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = write_run(tmp_path / "results" / "r1", make_rows({"a": {}}), PRICES)
    new = _run_with_failures(tmp_path / "results")
    os.utime(old / "records.parquet", (time.time() - 100, time.time() - 100))
    assert main(["report", "--latest", "--results", str(tmp_path / "results")]) == 0
    assert capsys.readouterr().out.strip() == str(new / "report" / "index.html")
    assert (new / "report" / "index.html").exists() and not (old / "report").exists()


def _chromium() -> tuple[str, str]:
    """Paths of chromium and chromedriver; installs Debian's packages when missing (root)."""
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium/chromium-driver missing and cannot apt-get install (not root)")
    start = time.monotonic()
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium", "chromium-driver"]):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
        if done.returncode != 0:
            pytest.skip(f"installing chromium failed: {' '.join(cmd)}: {done.stderr[-500:]}")
    print(f"chromium installed in {time.monotonic() - start:.0f} s")
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip("chromium installed but not on PATH")
    return browser, driver


_LAYOUT_JS = """
const top = s => { const e = document.querySelector(s); return e && e.getBoundingClientRect().top; };
const t = document.querySelector('#models');
return {card: top('#decision'), figure: top('figure'),
        headline: document.querySelector('#decision h2').textContent,
        headers: [...t.tHead.rows[0].cells].map(c => c.textContent),
        rows: [...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.textContent))};
"""
_MODELS_JS = (
    "return [...document.querySelectorAll('#models tbody tr')].map(r => r.cells[0].textContent)"
)


@pytest.mark.timeout(480)
def test_page_in_headless_chromium(tmp_path: Path) -> None:
    browser, driver_path = _chromium()
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    run = _run_with_failures(tmp_path)
    page = write_report(read_runs([run]), run / "report", run_dirs=[run])
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1300,2000",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.get(page.as_uri())
        sizes = driver.execute_script(
            "return [...document.querySelectorAll('img, svg')].map(e => "
            "[e.complete === undefined || e.complete, e.naturalWidth || 0, "
            "e.getBoundingClientRect().width, e.getBoundingClientRect().height])"
        )
        layout = driver.execute_script(_LAYOUT_JS)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "report.png"))
        driver.find_element("css selector", "#models th:nth-child(3)").click()  # accuracy
        by_accuracy = driver.execute_script(_MODELS_JS)
        logs = driver.get_log("browser")
        assert "lavabench report" in driver.title
    finally:
        driver.quit()
    # the decision first: the card is on screen above the first figure, and says the pick
    assert layout["card"] is not None and layout["card"] < layout["figure"], layout
    assert layout["headline"] == "Pick: b"
    # table cells carry their units
    cells = dict(zip(layout["headers"], zip(*layout["rows"], strict=True), strict=False))
    assert all(c.endswith(" %") for c in cells["accuracy"]), cells
    assert all(c.endswith((" ms", " s", "∞")) for c in cells["TTFT p50"]), cells
    assert all(c.startswith("$") for c in cells["$ / 1k items"]), cells
    assert by_accuracy == ["a", "c", "b"]  # sorted without a network: 70 %, 90 %, 96 %
    assert len(sizes) == len(list(page.parent.glob("*.png"))) >= 6
    assert all(ok and natural > 0 and w > 0 and h > 0 for ok, natural, w, h in sizes), sizes
    assert [e for e in logs if e["level"] == "SEVERE"] == []
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000


def test_figures_drawn_in_forked_workers_equal_a_serial_draw(tmp_path: Path) -> None:
    """The figure workers (a server forked before the work, warmed, one drawer per core)
    write the same PNG bytes, in the same page order, as drawing the figures one by one in
    this process."""
    from lavabench.analysis.tables import model_table, prepare
    from lavabench.report.page import draw_job
    from lavabench.report.workers import FigureWorkers

    run = _run_with_failures(tmp_path)
    runs = read_runs([run])
    prepared = prepare(runs.rows)
    table = model_table(runs, prepared=prepared)
    drawn = {}
    for cores in (1, 2):
        out = tmp_path / f"cores-{cores}"
        out.mkdir()
        job = draw_job(runs, prepared, table, out)
        # two figures keep the test fast; the lighter one is first on the page, the heavier
        # starts first in the workers: the page order must come back anyway
        tasks = [t for t in job.tasks if t.builder in ("reliability", "cost")][::-1]
        job = dataclasses.replace(job, tasks=tasks)
        with FigureWorkers(cores) as workers:
            assert (workers._conn is not None) == (cores == 2)  # served, or drawn here
            workers.draw(job)
            drawn[cores] = [d for task in workers.results()[0] for d in task]
        assert {p.stem for p in out.glob("*.svg")} == {n for n, _, _ in drawn[cores]}
    assert [n for n, _, _ in drawn[1]] == ["reliability", "cost"]
    assert drawn[1] == drawn[2]
    assert (tmp_path / "cores-2" / "cost.png").read_bytes() == drawn[1][1][2]


def test_a_dead_figure_worker_raises_instead_of_hanging(tmp_path: Path) -> None:
    import signal

    from lavabench.report.workers import DrawJob, FigureWorkers

    with FigureWorkers(2) as workers:
        os.kill(workers._proc.pid, signal.SIGKILL)
        workers.draw(DrawJob(tmp_path, False, ["a"], []))
        with pytest.raises(RuntimeError, match="figure worker died"):
            workers.results()


def test_a_process_that_never_closes_its_figure_workers_still_exits(tmp_path: Path) -> None:
    """multiprocessing joins the (non-daemon) server at exit; the server waits for its pipe
    to close: without FigureWorkers' own exit hook that would hang forever."""
    code = (
        "import sys, types\n"  # a warm-up that costs nothing: the test is about the exit
        "sys.modules['lavabench.report.figures'] = types.SimpleNamespace(warm_up=lambda: None)\n"
        "from lavabench.report.workers import FigureWorkers\n"
        "workers = FigureWorkers(2)\n"
        "raise SystemExit(3)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], timeout=30, capture_output=True)
    assert proc.returncode == 3, proc.stderr
