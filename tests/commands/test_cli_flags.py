"""The command line as its users expect: Hydra's own flags on `lavabench run`, `--help` on
every command, no heavy import for `lavabench --help`, and no credential in printed config.

Each case is one `lavabench ...` process (tests/conftest.py run_cli), as a user types it;
`--cfg` runs in this process (cli_in_process: the same main and output, no interpreter
start-up), since Hydra composes and prints it without touching logging.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from lavabench.cli import COMMANDS, main
from tests.conftest import ROOT, cli_in_process, run_cli

CREDENTIAL_VARS = ("LAVA_SECRET_KEY", "LAVA_FORWARD_TOKEN", "FIREWORKS_API_KEY")


def _ok(args: list[str], *, in_process: bool = False, **kwargs: object) -> str:
    proc = (cli_in_process if in_process else run_cli)(args, **kwargs)  # type: ignore[operator]
    assert proc.returncode == 0, (args, proc.stdout[-2000:], proc.stderr[-2000:])
    return proc.stdout


def test_run_help_shows_the_preamble_and_config_groups() -> None:
    out = _ok(["run", "--help"])
    assert out.startswith("lavabench run: benchmark")
    for group in ("endpoint: direct, lava, sim", "load: closed, constant, poisson, sweep"):
        assert group in out
    assert "dataset: " in out and "gsm8k" in out
    assert "LAVA_SECRET_KEY" in out  # where credentials come from, told up front
    assert "Powered by Hydra" not in out  # our template, not Hydra's default


def test_run_hydra_help_is_hydras() -> None:
    out = _ok(["run", "--hydra-help"])
    assert "Hydra (" in out and "hydra/launcher:" in out and "--cfg,-c" in out


def test_run_cfg_prints_the_composed_config() -> None:
    out = _ok(["run", "--cfg", "job", "--resolve", "runner.concurrency=7"], in_process=True)
    assert "runner:\n  concurrency: 7\n" in out and "endpoint:\n  kind: sim\n" in out
    assert "${" not in out  # --resolve: run_id and the rest resolved, not interpolations
    out = _ok(["run", "--cfg", "hydra"], in_process=True)
    assert out.startswith("hydra:\n") and "      hydra/help: lavabench\n" in out
    assert "\nrunner:" not in out  # only the hydra node
    out = _ok(["run", "--cfg", "job", "--package", "endpoint", "endpoint=lava"], in_process=True)
    assert out.startswith("# @package endpoint\nkind: lava\n")


def test_run_info_defaults() -> None:
    out = _ok(["run", "--info", "defaults"])
    assert "hydra/help/lavabench" in out and "endpoint/sim" in out


def test_multirun_is_the_long_form_of_m(tmp_path: Path) -> None:
    out = _ok(["run", "--multirun", "--dry-run", "model=gpt-oss-20b", f"results_dir={tmp_path}"])
    assert "job   0 completed" in out and "manifest:" in out
    (sweep,) = tmp_path.glob("sweep-*")
    assert (sweep / "manifest.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--multirun", "--info", "config"], "--multirun runs a sweep"),
        (["-m", "--cfg", "job"], "--multirun runs a sweep"),
        (["--resolve"], "--resolve goes with --cfg"),
        (["--cfg", "job", "runner.concurency=3"], "did you mean runner.concurrency"),
    ],
)
def test_run_flag_mistakes_are_sentences(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """What Hydra answers with a traceback (or exit 1, "decided no") is exit 2 and a line."""
    assert main(["run", *args]) == 2
    assert message in capsys.readouterr().err


def test_run_shell_completion_install_and_query() -> None:
    script = _ok(["run", "--shell-completion", "install=bash"])
    assert "hydra_bash_completion" in script and script.rstrip().endswith(" lavabench")
    # what the installed script runs on <TAB>: `lavabench -sc query=bash` with the line
    groups = _ok(["-sc", "query=bash"], env={"COMP_LINE": "lavabench run endpoint="})
    assert set(groups.split()) == {"endpoint=direct", "endpoint=lava", "endpoint=sim"}


def test_shell_completion_of_the_command_word(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COMP_LINE", "lavabench re")
    assert main(["-sc", "query=bash"]) == 0
    assert set(capsys.readouterr().out.split()) == {"report", "reconcile"}
    monkeypatch.setenv("COMP_LINE", "lavabench report ")
    assert main(["-sc", "query=bash"]) == 0
    assert capsys.readouterr().out.strip() == ""  # file names: bash's own default


def test_cfg_never_prints_a_credential() -> None:
    """A fake credential in every variable lavabench reads; none may appear in the printed
    config (the names of the variables may, and for endpoint=direct must)."""
    fake = "fake" + secrets.token_hex(12)  # made here: no key-shaped literal in the repo
    env = dict.fromkeys(CREDENTIAL_VARS, fake)
    for endpoint in ("lava endpoint.byok=true", "direct"):
        proc = cli_in_process(
            ["run", "--cfg", "all", "--resolve", *f"endpoint={endpoint}".split()], env=env
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "endpoint:\n  kind: " in proc.stdout  # the config was printed
        assert fake not in proc.stdout + proc.stderr, endpoint
        # where the credential comes from: the variables' names are printed
        if endpoint.startswith("lava"):
            assert "secret_key_env: LAVA_SECRET_KEY" in proc.stdout
            assert "forward_token_env: LAVA_FORWARD_TOKEN" in proc.stdout
            assert "provider_key_env: FIREWORKS_API_KEY" in proc.stdout
    assert "api_key_env: FIREWORKS_API_KEY" in proc.stdout  # direct: where its key comes from


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - {"run"}))
def test_every_command_answers_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert out.startswith(f"usage: lavabench {command}"), out[:500]
    assert len(out.split("\n\n")[1].strip()) > 20  # a description, not only the usage


def test_top_level_help_imports_nothing_heavy() -> None:
    code = (
        "import sys, lavabench.cli as c; c.main(['--help']); "
        "print(sorted(m for m in ('hydra', 'omegaconf', 'pandas', 'pyarrow', 'matplotlib', "
        "'scipy', 'aiohttp', 'httpx') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert "run [OVERRIDES]" in proc.stdout


def test_run_start_up_imports_no_pandas_scipy_or_matplotlib() -> None:
    """Every `lavabench run` process imports the config and the run command's module before
    it sends anything (tests spawn ~100 of them): scipy (about a second of imports on 2
    cores) and matplotlib wait until something needs them, pandas until the end-of-run table."""
    heavy = "('pandas', 'pyarrow', 'scipy', 'matplotlib')"
    code = (
        "import sys, lavabench.config; "
        f"print(sorted(m for m in {heavy} if m in sys.modules)); "
        "import lavabench.commands.run.command; "
        f"print(sorted(m for m in {heavy} if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    config_only, run_command = proc.stdout.strip().splitlines()[-2:]
    assert config_only == "[]"
    assert not {"pandas", "scipy", "matplotlib"} & set(eval(run_command)), run_command
