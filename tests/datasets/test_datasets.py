from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lavabench.datasets.prompt import Message, messages_sha256
from lavabench.datasets.spec import DatasetSpec, dataset_sha256, load_prompts
from lavabench.errors import ConfigError, DatasetError

ROOT = Path(__file__).resolve().parents[2]
DEMO_FILE = ROOT / "datasets" / "demo-arith.jsonl"
GENERATOR = ROOT / "datasets" / "make_demo_arith.py"


@pytest.fixture(scope="module")
def demo_spec() -> DatasetSpec:
    cfg = OmegaConf.load(ROOT / "conf" / "dataset" / "demo.yaml")
    return DatasetSpec.from_mapping(cfg, ROOT)


def _write(tmp_path: Path, lines: list[str]) -> DatasetSpec:
    path = tmp_path / "data.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return DatasetSpec(name="t", path=str(path))


# --- the demo set ------------------------------------------------------------------------


def test_demo_config_loads_sixty_prompts(demo_spec: DatasetSpec) -> None:
    prompts = load_prompts(demo_spec)
    assert demo_spec.name == "demo-arith"
    assert demo_spec.path == str(DEMO_FILE)
    assert len(prompts) == 60
    assert len({p.item_id for p in prompts}) == 60
    rows = [json.loads(line) for line in DEMO_FILE.read_text(encoding="utf-8").splitlines()]
    for prompt, row in zip(prompts, rows, strict=True):
        assert prompt.dataset == "demo-arith"
        assert prompt.item_id == row["id"]
        assert [m.role for m in prompt.messages] == ["system", "user"]
        assert "The answer is N." in prompt.messages[0].content
        assert prompt.messages[1].content == row["question"]
        assert prompt.reference == row["answer"]


def test_prompt_hash_is_sha256_of_canonical_messages(demo_spec: DatasetSpec) -> None:
    prompt = load_prompts(demo_spec)[0]
    canonical = json.dumps(
        prompt.message_dicts(), ensure_ascii=False, separators=(",", ":"), sort_keys=True
    )
    assert prompt.prompt_sha256 == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert (
        messages_sha256([Message("user", "é")])
        == hashlib.sha256('[{"content":"é","role":"user"}]'.encode()).hexdigest()
    )


def test_prompt_hashes_are_stable_and_follow_the_template(demo_spec: DatasetSpec) -> None:
    first = [p.prompt_sha256 for p in load_prompts(demo_spec)]
    second = [p.prompt_sha256 for p in load_prompts(demo_spec)]
    assert first == second
    assert len(set(first)) == 60
    changed = load_prompts(replace(demo_spec, user_template="Question: {input}"))
    assert changed[0].messages[1].content.startswith("Question: ")
    assert not set(first) & {p.prompt_sha256 for p in changed}
    no_system = load_prompts(replace(demo_spec, system_prompt=None))
    assert [m.role for m in no_system[0].messages] == ["user"]
    assert not set(first) & {p.prompt_sha256 for p in no_system}


def test_demo_rows_are_well_formed() -> None:
    rows = [json.loads(line) for line in DEMO_FILE.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 60
    assert [r["id"] for r in rows] == [f"arith-{i:03d}" for i in range(1, 61)]
    for row in rows:
        assert set(row) == {"id", "question", "answer", "steps"}
        assert str(int(row["answer"])) == row["answer"]
        assert 1 <= row["steps"] <= 4
    assert {r["steps"] for r in rows} == {1, 2, 3, 4}


def test_no_demo_question_is_a_substring_of_another() -> None:
    questions = [json.loads(line)["question"] for line in DEMO_FILE.open(encoding="utf-8")]
    assert len(set(questions)) == len(questions)
    for i, a in enumerate(questions):
        for j, b in enumerate(questions):
            assert i == j or a not in b, (a, b)


def test_generator_is_deterministic_and_matches_the_committed_file(tmp_path: Path) -> None:
    outs = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    for out in outs:
        subprocess.run(
            [sys.executable, str(GENERATOR), "--out", str(out)],
            check=True,
            capture_output=True,
        )
    assert outs[0].read_bytes() == outs[1].read_bytes()
    assert outs[0].read_bytes() == DEMO_FILE.read_bytes(), (
        "datasets/demo-arith.jsonl is stale: run .venv/bin/python datasets/make_demo_arith.py"
    )
    other = tmp_path / "c.jsonl"
    subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(other), "--seed", "7"],
        check=True,
        capture_output=True,
    )
    assert other.read_bytes() != DEMO_FILE.read_bytes()


def test_dataset_sha256_is_the_file_hash(tmp_path: Path) -> None:
    assert dataset_sha256(DEMO_FILE) == hashlib.sha256(DEMO_FILE.read_bytes()).hexdigest()
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(DEMO_FILE.read_bytes() + b"\n")
    assert dataset_sha256(copy) != dataset_sha256(DEMO_FILE)
    with pytest.raises(DatasetError, match="cannot read"):
        dataset_sha256(tmp_path / "absent.jsonl")


# --- validation --------------------------------------------------------------------------


def test_every_bad_row_is_reported_and_nothing_is_returned(tmp_path: Path) -> None:
    spec = _write(
        tmp_path,
        [
            '{"id": "a", "question": "fine", "answer": "1"}',  # 1 ok
            '{"id": "b", "question": "broken"',  # 2 invalid JSON
            '["not", "an", "object"]',  # 3
            '{"question": "no id"}',  # 4
            '{"id": "e", "question": "   "}',  # 5
            '{"id": "a", "question": "dup"}',  # 6
            '{"id": "g", "question": "q", "answer": [1]}',  # 7
            "",  # 8 blank lines are allowed
            '{"id": true, "question": "q"}',  # 9
            '{"id": "j", "question": 12}',  # 10
            '{"id": "k", "question": "q", "answer": NaN}',  # 11
            '{"id": "", "question": "q"}',  # 12
        ],
    )
    with pytest.raises(DatasetError) as err:
        load_prompts(spec)
    message = str(err.value)
    p = spec.path
    for expected in (
        f"{p}:2: row: not valid JSON",
        f"{p}:3: row: must be a JSON object, got an array",
        f"{p}:4: field 'id': missing",
        f"{p}:5: field 'question': is empty",
        f"{p}:6: field 'id': duplicate id 'a' (first used on line 1)",
        f"{p}:7: field 'answer': must be a string or number",
        f"{p}:9: field 'id': must be a string or integer, got a boolean",
        f"{p}:10: field 'question': must be a string, got int",
        f"{p}:11: row: not valid JSON (NaN is not a valid JSON number)",
        f"{p}:12: field 'id': is empty",
    ):
        assert expected in message
    assert f"{p}:1:" not in message
    assert f"{p}:8:" not in message
    assert "10 problem(s)" in message
    assert "dataset.id_field" in message  # says what to do
    # a file's JSON problems are listed before its row problems (lines are parsed as they
    # are validated, but the listing keeps this order)
    assert message.index(f"{p}:11: row") < message.index(f"{p}:3: row")


def test_problem_list_is_capped_at_twenty(tmp_path: Path) -> None:
    spec = _write(tmp_path, [json.dumps({"id": i}) for i in range(25)])
    with pytest.raises(DatasetError) as err:
        load_prompts(spec)
    message = str(err.value)
    assert f"{spec.path}:20: field 'question'" in message
    assert f"{spec.path}:21:" not in message
    assert "and 5 more" in message


def test_missing_file_names_path_and_resolved_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = DatasetSpec(name="t", path="nowhere/data.jsonl")
    with pytest.raises(DatasetError) as err:
        load_prompts(spec)
    message = str(err.value)
    assert "nowhere/data.jsonl" in message
    assert str(tmp_path.resolve() / "nowhere" / "data.jsonl") in message
    assert "dataset.path" in message


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="has no rows"):
        load_prompts(_write(tmp_path, ["", "  "]))


def test_row_values_are_normalised(tmp_path: Path) -> None:
    spec = _write(
        tmp_path,
        [
            '{"id": 7, "question": "q1", "answer": 42}',
            '{"id": "b", "question": "q2", "answer": 2.5}',
            '{"id": "c", "question": "q3"}',
            '{"id": "d", "question": "q4", "answer": null, "extra": {"ignored": true}}',
        ],
    )
    prompts = load_prompts(spec)
    assert [p.item_id for p in prompts] == ["7", "b", "c", "d"]
    assert [p.reference for p in prompts] == ["42", "2.5", None, None]


def test_custom_fields_and_template(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"qid": "x", "text": "2+2? {not a field}", "gold": "4"}\n')
    spec = DatasetSpec(
        name="t",
        path=str(path),
        id_field="qid",
        input_field="text",
        reference_field="gold",
        system_prompt="sys",
        user_template="Q: {input}\n{{literal}}",
    )
    (prompt,) = load_prompts(spec)
    assert prompt.item_id == "x"
    assert prompt.reference == "4"
    assert prompt.message_dicts() == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "Q: 2+2? {not a field}\n{literal}"},
    ]


# --- limit and shuffle -------------------------------------------------------------------


def test_limit_and_shuffle_are_deterministic(demo_spec: DatasetSpec) -> None:
    ids = [p.item_id for p in load_prompts(demo_spec)]
    limited = [p.item_id for p in load_prompts(replace(demo_spec, limit=5))]
    assert limited == ids[:5]

    shuffled = [p.item_id for p in load_prompts(replace(demo_spec, shuffle=True, seed=1))]
    again = [p.item_id for p in load_prompts(replace(demo_spec, shuffle=True, seed=1))]
    other_seed = [p.item_id for p in load_prompts(replace(demo_spec, shuffle=True, seed=2))]
    assert shuffled == again
    assert sorted(shuffled) == sorted(ids)
    assert shuffled != ids
    assert other_seed != shuffled

    first_n = load_prompts(replace(demo_spec, shuffle=True, seed=1, limit=7))
    assert [p.item_id for p in first_n] == shuffled[:7]
    assert len(load_prompts(replace(demo_spec, limit=1000))) == 60


# --- spec construction -------------------------------------------------------------------


def test_from_mapping_resolves_relative_paths_only(tmp_path: Path) -> None:
    rel = DatasetSpec.from_mapping({"name": "x", "path": "sub/../d.jsonl"}, tmp_path)
    assert rel.path == str(tmp_path / "d.jsonl")
    absolute = str(tmp_path / "elsewhere.jsonl")
    assert DatasetSpec.from_mapping({"name": "x", "path": absolute}, "/unused").path == absolute


def test_from_mapping_defaults_and_options() -> None:
    spec = DatasetSpec.from_mapping(
        {"name": "x", "path": "/d.jsonl", "grader_options": {"abs_tol": 0.5}}, "/"
    )
    assert (spec.id_field, spec.input_field, spec.reference_field) == ("id", "question", "answer")
    assert spec.user_template == "{input}"
    assert spec.grader == "numeric"
    assert dict(spec.grader_options) == {"abs_tol": 0.5}
    with pytest.raises(TypeError):
        spec.grader_options["abs_tol"] = 1  # type: ignore[index]
    none_options = DatasetSpec.from_mapping(
        {"name": "x", "path": "/d", "grader_options": None}, "/"
    )
    assert dict(none_options.grader_options) == {}


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"user_template": "{input} for {name}"}, "dataset.user_template"),
        ({"user_template": "{}"}, "dataset.user_template"),
        ({"user_template": "{0}"}, "dataset.user_template"),
        ({"user_template": "no placeholder"}, "dataset.user_template"),
        ({"user_template": "{input"}, "dataset.user_template"),
        ({"user_template": "{input.upper}"}, "dataset.user_template"),
        ({"user_template": "{input:d}"}, "dataset.user_template"),
        ({"user_template": 3}, "dataset.user_template"),
        ({"limit": 0}, "dataset.limit"),
        ({"limit": "5"}, "dataset.limit"),
        ({"limit": True}, "dataset.limit"),
        ({"shuffle": "yes"}, "dataset.shuffle"),
        ({"seed": 1.5}, "dataset.seed"),
        ({"grader_options": [1]}, "dataset.grader_options"),
        ({"system_prompt": 5}, "dataset.system_prompt"),
        ({"id_field": ""}, "dataset.id_field"),
        ({"grader": None}, "dataset.grader"),
        ({"name": None}, "dataset.name"),
        ({"path": 12}, "dataset.path"),
        ({"sytem_prompt": "typo"}, "dataset.sytem_prompt"),
    ],
)
def test_from_mapping_rejects_bad_values(override: dict[str, object], key: str) -> None:
    config = {"name": "x", "path": "d.jsonl", **override}
    with pytest.raises(ConfigError) as err:
        DatasetSpec.from_mapping(config, "/")
    assert str(err.value).startswith(key)


def test_from_mapping_rejects_non_mapping() -> None:
    with pytest.raises(ConfigError, match=r"^dataset: must be a mapping"):
        DatasetSpec.from_mapping(["name"], "/")  # type: ignore[arg-type]


# --- other formats, folders, field mapping ----------------------------------------------


def test_headerless_csv_folder_with_groups_choices_and_json_reference(tmp_path: Path) -> None:
    folder = tmp_path / "test"
    folder.mkdir()
    (folder / "algebra_test.csv").write_text('"What is 1+1, really?",1,2,3,4,B\nQ2,a,b,c,d,D\n')
    (folder / "zoology_test.csv").write_text("Q3,w,x,y,z,A\n")
    spec = DatasetSpec(
        name="t",
        path=str(folder),
        columns=("question", "A", "B", "C", "D", "answer"),
        id_field=None,
        choices_field=("A", "B", "C", "D"),
        reference_fields=("answer", "choices"),
        user_template="About {group_words}: {input}\n{choices}",
    )
    prompts = load_prompts(spec)
    assert [p.item_id for p in prompts] == ["algebra/1", "algebra/2", "zoology/1"]
    assert (
        prompts[0].messages[-1].content
        == "About algebra: What is 1+1, really?\nA. 1\nB. 2\nC. 3\nD. 4"
    )
    assert json.loads(prompts[0].reference or "") == {
        "answer": "B",
        "choices": ["1", "2", "3", "4"],
    }


def test_malformed_csv_and_json_rows_name_file_line_and_field(tmp_path: Path) -> None:
    bad_csv = tmp_path / "x.csv"
    bad_csv.write_text("question,answer\nok,1\nonly-one-column\n,3\n")
    with pytest.raises(DatasetError) as err:
        load_prompts(DatasetSpec(name="t", path=str(bad_csv), id_field=None))
    message = str(err.value)
    assert f"{bad_csv}:3: row: has 1 columns, expected 2" in message
    assert f"{bad_csv}:4: field 'question': is empty" in message

    bad_json = tmp_path / "y.json"
    bad_json.write_text(json.dumps({"examples": [{"input": "a", "target": "b"}, {"target": 1}]}))
    spec = DatasetSpec(
        name="t",
        path=str(bad_json),
        records_key="examples",
        id_field=None,
        input_field="input",
        reference_field="target",
    )
    with pytest.raises(DatasetError, match=r"y\.json:examples\[1\]: field 'input': missing"):
        load_prompts(spec)

    wrong_type = tmp_path / "z.jsonl"
    wrong_type.write_text('{"id": 1, "question": "q", "options": "A B"}\n')
    spec = DatasetSpec(name="t", path=str(wrong_type), choices_field="options")
    with pytest.raises(
        DatasetError, match=r"z\.jsonl:1: field 'options': must be a non-empty list"
    ):
        load_prompts(spec)


def test_reference_pattern_and_reference_fields(tmp_path: Path) -> None:
    path = tmp_path / "g.jsonl"
    path.write_text(
        '{"question": "q1", "answer": "work\\n#### 1,234"}\n{"question": "q2", "answer": "no marker"}\n'
    )
    spec = DatasetSpec(name="t", path=str(path), id_field=None, reference_pattern=r"####\s*(.+)$")
    with pytest.raises(DatasetError, match=r"g\.jsonl:2: field 'answer': does not match"):
        load_prompts(spec)
    path.write_text('{"question": "q1", "answer": "work\\n#### 1,234"}\n')
    assert load_prompts(spec)[0].reference == "1,234"
    with pytest.raises(ConfigError, match=r"^dataset\.reference_pattern"):
        DatasetSpec(name="t", path="p", reference_pattern="no group")


def test_few_shot_turns_come_from_the_named_split(tmp_path: Path) -> None:
    (tmp_path / "test.jsonl").write_text('{"id": 1, "question": "2+2?", "answer": "4"}\n')
    (tmp_path / "dev.jsonl").write_text(
        '{"question": "1+1?", "answer": "2"}\n{"question": "1+2?", "answer": "3"}\n'
    )
    spec = DatasetSpec(
        name="t",
        path=str(tmp_path / "test.jsonl"),
        few_shot_path=str(tmp_path / "dev.jsonl"),
        few_shot_n=1,
        few_shot_answer_template="The answer is {reference}.",
    )
    (prompt,) = load_prompts(spec)
    assert prompt.message_dicts() == [
        {"role": "user", "content": "1+1?"},
        {"role": "assistant", "content": "The answer is 2."},
        {"role": "user", "content": "2+2?"},
    ]
    with pytest.raises(ConfigError, match=r"^dataset\.few_shot_path"):
        DatasetSpec(name="t", path="p", few_shot_n=2)


def test_data_path_resolves_against_mirror_then_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("LAVABENCH_DATA_MIRROR", raising=False)
    monkeypatch.setenv("LAVABENCH_DATA_CACHE", str(tmp_path / "cache"))
    spec = DatasetSpec.from_mapping({"name": "x", "path": None, "data_path": "a/b.jsonl"}, "/")
    assert spec.path == str(tmp_path / "cache" / "a" / "b.jsonl")
    monkeypatch.setenv("LAVABENCH_DATA_MIRROR", str(tmp_path / "mirror"))
    spec = DatasetSpec.from_mapping({"name": "x", "path": None, "data_path": "a/b.jsonl"}, "/")
    assert spec.path == str(tmp_path / "mirror" / "a" / "b.jsonl")
