"""The code-execution grader: sandboxed subprocess, limits, timeout, no network."""

from __future__ import annotations

import json
import time

import pytest

from lavabench.errors import ConfigError, DatasetError
from lavabench.grading.code import build_program, extract_code, network_isolation
from lavabench.grading.registry import check_grader, get_grader

code = get_grader("code")
REF = json.dumps(
    {
        "prompt": 'import math\n\ndef area(r):\n    """Area of a circle."""\n',
        "test": "def check(f):\n    assert abs(f(1) - math.pi) < 1e-9\n    assert f(0) == 0\n",
        "entry_point": "area",
    }
)


def test_completion_and_whole_function_both_pass() -> None:
    assert code("    return math.pi * r * r\n", REF, {}).correct is True
    fenced = "Here you go:\n```python\ndef area(r):\n    return math.pi * r ** 2\n```\nDone."
    assert code(fenced, REF, {}).extracted == "passed"
    program = build_program(fenced, json.loads(REF))
    assert program.startswith("import math\n") and "check(area)" in program


def test_wrong_solution_fails_with_the_error_name() -> None:
    grade = code("    return 2 * r\n", REF, {})
    assert grade.correct is False
    assert grade.extracted == "failed: AssertionError"
    assert code("", REF, {}).extracted == "failed: empty response"


def test_infinite_loop_is_killed_at_the_timeout() -> None:
    start = time.perf_counter()
    grade = code("    while True:\n        pass\n", REF, {"timeout_s": 1})
    assert time.perf_counter() - start < 5
    assert grade.correct is False
    assert grade.extracted is not None
    assert grade.extracted.startswith(("timeout", "killed"))


def test_memory_limit() -> None:
    grade = code("    x = bytearray(2 << 30)\n    return 0\n", REF, {"memory_mb": 256})
    assert grade.correct is False
    assert grade.extracted == "failed: MemoryError"


def test_no_network_when_isolation_is_available() -> None:
    if not network_isolation():
        pytest.skip("unshare -n is not permitted on this host; network isolation unavailable")
    probe = (
        "    import socket\n    s = socket.socket()\n    s.settimeout(1)\n"
        "    s.connect(('127.0.0.1', 9))\n"
    )
    grade = code(probe, REF, {})
    assert grade.correct is False
    assert grade.extracted is not None and "Error" in grade.extracted


def test_runs_in_a_temp_dir_not_the_callers(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code("    open('left-behind.txt', 'w').write('x')\n    return math.pi * r * r\n", REF, {})
    assert not (tmp_path / "left-behind.txt").exists()


def test_extract_code_prefers_the_block_defining_the_entry_point() -> None:
    text = "```python\nprint('usage')\n```\n```python\ndef area(r):\n    return 1\n```"
    assert extract_code(text, "area").startswith("def area")
    assert extract_code("    return 1\n", "area") == "    return 1\n"


def test_bad_reference_and_options() -> None:
    with pytest.raises(DatasetError, match="entry_point"):
        code("x", json.dumps({"test": "t"}), {})
    with pytest.raises(DatasetError, match="JSON"):
        code("x", "not json", {})
    with pytest.raises(ConfigError, match=r"^dataset\.grader_options\.timeout"):
        check_grader("code", {"timeout": 1})
    with pytest.raises(ConfigError, match=r"^dataset\.grader_options\.memory_mb"):
        check_grader("code", {"memory_mb": "lots"})


WRONG_AREA = "def area(r):\n    return 2 * r\n"
RIGHT_AREA = "import math\n\ndef area(r):\n    return math.pi * r * r\n"


@pytest.mark.parametrize(
    ("tail", "status"),
    [
        # HumanEval's harness execs the program as a non-main module: the model's own
        # tests must not run, and exiting cleanly before the check must not pass.
        (
            "\nimport unittest\nif __name__ == '__main__':\n    unittest.main()\n",
            "failed: AssertionError",
        ),
        ("\nimport unittest\nunittest.main()\n", "failed: SystemExit"),
        ("\nimport sys\nsys.exit()\n", "failed: SystemExit"),
        ("\nimport os\nos._exit(0)\n", "failed: exited before the check finished"),
    ],
)
def test_a_wrong_solution_cannot_exit_its_way_to_a_pass(tail: str, status: str) -> None:
    fenced = f"```python\n{WRONG_AREA}{tail}```"
    grade = code(fenced, REF, {})
    assert (grade.correct, grade.extracted) == (False, status)


def test_an_interactive_main_block_does_not_break_a_right_solution() -> None:
    main = "\nif __name__ == '__main__':\n    r = float(input('radius? '))\n    print(area(r))\n"
    grade = code(f"```python\n{RIGHT_AREA}{main}```", REF, {})
    assert (grade.correct, grade.extracted) == (True, "passed")
