"""The nightly workflow example parses and has the expected jobs and steps."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_workflow_is_valid_yaml_with_expected_jobs() -> None:
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "nightly.yml").read_text())
    assert "schedule" in wf[True] and "workflow_dispatch" in wf[True]  # YAML 1.1: on -> True
    assert set(wf["jobs"]) == {"nightly"}
    steps = wf["jobs"]["nightly"]["steps"]
    runs = "\n".join(s.get("run", "") for s in steps)
    for command in ("lavabench run", "lavabench history add", "lavabench compare",
                    "lavabench report", "lavabench reconcile", "GITHUB_STEP_SUMMARY"):  # fmt: skip
        assert command in runs, command
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("actions/upload-artifact") for u in uses)
    env = wf["jobs"]["nightly"]["env"]
    assert env["LAVA_SECRET_KEY"] == "${{ secrets.LAVA_SECRET_KEY }}"
    assert "aks_" not in (ROOT / ".github" / "workflows" / "nightly.yml").read_text()


def test_make_nightly_target_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "\nnightly:" in makefile and "lavabench compare" in makefile
