"""The built-in specs against the public sets in ../shared/datasets (used as the mirror)."""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lavabench.datasets.prompt import Prompt
from lavabench.datasets.spec import DatasetSpec, load_prompts
from lavabench.grading.mathans import math_equal
from lavabench.grading.registry import check_grader, get_grader
from tests.conftest import ROOT, SHARED_DATASETS

pytestmark = pytest.mark.skipif(
    not SHARED_DATASETS.is_dir(),
    reason=f"public datasets not found at {SHARED_DATASETS} (present in CI)",
)
BUILT_IN = ["gsm8k", "mmlu", "math500", "humaneval", "bbh", "agieval", "ifeval"]
BFCL_SPECS = sorted(p.stem for p in (ROOT / "conf" / "dataset").glob("bfcl_*.yaml"))
BUILT_IN += BFCL_SPECS


@pytest.fixture(autouse=True)
def mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAVABENCH_DATA_MIRROR", str(SHARED_DATASETS))


def spec_for(name: str, **overrides: object) -> DatasetSpec:
    cfg = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "dataset" / f"{name}.yaml"))
    assert isinstance(cfg, dict)
    cfg.update(overrides)
    return DatasetSpec.from_mapping(cfg, ROOT)  # type: ignore[arg-type]


def load(name: str, **overrides: object) -> tuple[DatasetSpec, list[Prompt]]:
    spec = spec_for(name, **overrides)
    return spec, load_prompts(spec)


@pytest.mark.parametrize("name", BUILT_IN)
def test_built_in_spec_loads_and_every_reference_is_gradable(name: str) -> None:
    spec, prompts = load(name)
    assert spec.path.startswith(str(SHARED_DATASETS.resolve()))
    grader = check_grader(spec.grader, spec.grader_options)
    for p in prompts:
        assert p.reference is not None
        grader("", p.reference, spec.grader_options)
    assert len({p.item_id for p in prompts}) == len(prompts)
    sources = spec.source["files"] if spec.source else []
    assert sources and all(
        f["url"].startswith("https://") and len(f["sha256"]) == 64 for f in sources
    )


def test_gsm8k_references_for_all_rows() -> None:
    _, prompts = load("gsm8k")
    assert len(prompts) == 1319
    rows = [json.loads(x) for x in (SHARED_DATASETS / "gsm8k" / "test.jsonl").open()]
    numeric = get_grader("numeric")
    for p, row in zip(prompts, rows, strict=True):
        expected = int(row["answer"].split("####")[-1].strip().replace(",", ""))
        assert int(p.reference.replace(",", "")) == expected  # type: ignore[union-attr]
        assert numeric(f"... so\n#### {expected}", p.reference, {}).correct
    assert sum("," in (p.reference or "") for p in prompts) == 14


def test_mmlu_letters_subjects_and_few_shot() -> None:
    _, prompts = load("mmlu", data_path="mmlu/sample200/test", path=None)
    assert len(prompts) == 200
    letters = Counter(json.loads(p.reference or "")["answer"] for p in prompts)
    assert letters == {"A": 40, "B": 57, "C": 52, "D": 51}
    assert len({p.group for p in prompts}) == 50
    first = prompts[0]
    assert first.item_id.startswith(f"{first.group}/")
    assert "\nA. " in first.messages[-1].content and first.messages[-1].content.endswith("Answer:")
    _, five_shot = load("mmlu", data_path="mmlu/sample200/test", path=None, few_shot_n=5)
    roles = [m.role for m in five_shot[0].messages]
    assert roles == ["system"] + ["user", "assistant"] * 5 + ["user"]
    assert five_shot[0].messages[2].content in {f"Answer: {x}" for x in "ABCD"}
    assert five_shot[0].prompt_sha256 != first.prompt_sha256
    _, full = load("mmlu")
    assert len(full) == 14079


def test_agieval_letters() -> None:
    _, prompts = load("agieval")
    assert Counter(p.group for p in prompts) == {
        "aqua-rat": 254,
        "lsat-ar": 230,
        "lsat-lr": 510,
        "sat-math": 220,
    }
    for p in prompts:
        ref = json.loads(p.reference or "")
        assert ref["label"] in "ABCDE"
        assert len(ref["choices"]) in (4, 5)
    lsat = next(p for p in prompts if p.group == "lsat-ar")
    assert lsat.messages[-1].content.startswith(dict(lsat.metadata)["passage"][:40])
    assert "\n(A)" in lsat.messages[-1].content


def test_math500_normaliser_agrees_with_reference_and_solution() -> None:
    _, prompts = load("math500")
    rows = [json.loads(x) for x in (SHARED_DATASETS / "math500" / "test.jsonl").open()]
    grader = get_grader("math")
    disagree = []
    for p, row in zip(prompts, rows, strict=True):
        assert grader(f"\\boxed{{{row['answer']}}}", p.reference, {}).correct
        assert math_equal(row["answer"], row["answer"])
        if not grader(row["solution"], p.reference, {}).correct:
            disagree.append(row["unique_id"])
    assert disagree == []


def test_bbh_targets_and_groups() -> None:
    spec, prompts = load("bbh")
    assert len(prompts) == 6511
    assert len({p.group for p in prompts}) == 27
    exact = get_grader("exact")
    wrong = 0
    for p in prompts:
        grade = exact(
            f"Thinking... So the answer is {p.reference}.", p.reference, spec.grader_options
        )
        wrong += not grade.correct
    assert wrong == 0


def test_ifeval_json_format_prompts() -> None:
    spec, prompts = load("ifeval")
    assert len(prompts) == 541
    ifeval = get_grader("ifeval")
    json_only = [
        p
        for p in prompts
        if json.loads(p.reference or "")["instruction_id_list"] == ["detectable_format:json_format"]
    ]
    assert json_only
    for p in json_only:
        assert ifeval('```json\n{"ok": true}\n```', p.reference, spec.grader_options).correct
        assert ifeval("Here you go: {ok}", p.reference, spec.grader_options).correct is False


def test_humaneval_canonical_solutions_all_pass_in_parallel() -> None:
    spec, prompts = load("humaneval")
    assert len(prompts) == 164
    code = get_grader("code")

    def grade(p: Prompt) -> bool | None:
        ref = json.loads(p.reference or "")
        completion = "```python\n" + ref["prompt"] + ref["canonical_solution"] + "\n```"
        return code(completion, p.reference, spec.grader_options).correct

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(grade, prompts))
    elapsed = time.perf_counter() - start
    failed = [p.item_id for p, ok in zip(prompts, results, strict=True) if not ok]
    assert failed == []
    print(f"humaneval: 164 canonical solutions graded in {elapsed:.1f}s on 2 workers")


def test_data_root_missing_file_names_pull(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAVABENCH_DATA_MIRROR", str(tmp_path))
    spec = spec_for("gsm8k")
    assert spec.path == str(tmp_path / "gsm8k" / "test.jsonl")
    from lavabench.errors import DatasetError

    with pytest.raises(DatasetError, match="not found"):
        load_prompts(spec)


def test_bfcl_specs_cover_every_category_and_send_renamed_tools() -> None:
    assert len(BFCL_SPECS) == 11
    total = 0
    for name in BFCL_SPECS:
        _spec, prompts = load(name)
        total += len(prompts)
        for p in prompts:
            tools = json.loads(p.tools_json) if p.tools_json else []
            assert all("." not in t["function"]["name"] for t in tools)
            assert '"type": "dict"' not in json.dumps([t["function"]["parameters"] for t in tools])
    assert total == 3491  # the README's count of questions
