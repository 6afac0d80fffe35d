"""The CLI as the one exit point: usage, masking first, `.env`, errors as annotations.

Only paths that stop before any network call are exercised here; deploys run in
the integration tests against real servers.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from deployer.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, _report, main
from deployer.github import Runner
from deployer.interface import INPUTS
from deployer.model import Outcome
from tests.unit.test_report import deployed

ROOT = Path(__file__).resolve().parents[2]


def actions_env(tmp_path: Path, **inputs: str) -> dict[str, str]:
    """A runner-like environment: every input present, empty when unset."""
    env = {spec.env_input: spec.default for spec in INPUTS}
    out, summary = tmp_path / "output", tmp_path / "summary"
    out.touch()
    summary.touch()
    env.update(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(tmp_path),
            "GITHUB_OUTPUT": str(out),
            "GITHUB_STEP_SUMMARY": str(summary),
        }
    )
    for name, value in inputs.items():
        env["INPUT_" + name.upper().replace("_", "-")] = value
    return env


def run(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, env, stdout=out, cwd=cwd, process_env={})
    return code, out.getvalue()


def test_help_lists_every_input_flag(tmp_path: Path) -> None:
    """`--help` exits 0 and documents a flag and a variable for every input."""
    code, text = run(["--help"], {}, tmp_path)
    assert code == EXIT_OK
    for spec in INPUTS:
        assert spec.flag in text
        if not spec.secret:
            assert spec.env_var in text


def test_unknown_flag_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed command line exits 2 with a pointer to --help."""
    code, _ = run(["--no-such-flag"], {}, tmp_path)
    assert code == EXIT_USAGE
    assert "--help" in capsys.readouterr().err


def test_invalid_inputs_give_one_annotation_and_exit_1(tmp_path: Path) -> None:
    """Invalid inputs: exit 1, exactly one ::error naming each input, no traceback."""
    env = actions_env(tmp_path, bucket="Bad_Bucket", concurrency="0")
    code, text = run([], env, tmp_path)
    assert code == EXIT_FAILED
    errors = [line for line in text.splitlines() if line.startswith("::error")]
    assert len(errors) == 1
    assert "title=2 invalid inputs" in errors[0]
    assert "`bucket`" in errors[0]
    assert "`concurrency`" in errors[0]
    assert "Traceback" not in text
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "Nothing was written." in summary
    assert "uploaded-count<<" in Path(env["GITHUB_OUTPUT"]).read_text()


def test_secrets_are_masked_before_anything_else(tmp_path: Path) -> None:
    """The first lines are ::add-mask:: and the secret appears nowhere else."""
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYzzzzzz"
    env = actions_env(
        tmp_path,
        bucket="Bad_Bucket",
        aws_access_key_id="AKIAEXAMPLE1234",
        aws_secret_access_key=secret,
    )
    code, text = run([], env, tmp_path)
    assert code == EXIT_FAILED
    lines = text.splitlines()
    assert lines[0].startswith("::add-mask::")
    masked = [line for line in lines if line.startswith("::add-mask::")]
    assert f"::add-mask::{secret}" in masked
    others = "\n".join(line for line in lines if not line.startswith("::add-mask::"))
    assert secret not in others
    assert secret not in Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert secret not in Path(env["GITHUB_OUTPUT"]).read_text()


def test_dotenv_is_read_locally_under_the_real_environment(tmp_path: Path) -> None:
    """Outside Actions `.env` fills gaps; the real environment wins over it."""
    (tmp_path / ".env").write_text("S3CFD_BUCKET=Bad_From_Dotenv\nS3CFD_CONCURRENCY=0\n")
    code, text = run([], {"S3CFD_CONCURRENCY": "4"}, tmp_path)
    assert code == EXIT_FAILED
    assert "Bad_From_Dotenv" in text  # the bucket came from .env
    assert "concurrency" not in text  # 4 from the environment beat 0 from .env


def test_dotenv_is_ignored_in_actions(tmp_path: Path) -> None:
    """In Actions a committed `.env` never changes the inputs."""
    (tmp_path / ".env").write_text("S3CFD_CONCURRENCY=0\n")
    env = actions_env(tmp_path, bucket="Bad_Bucket")
    code, text = run([], env, tmp_path)
    assert code == EXIT_FAILED
    assert "concurrency" not in text


def test_flag_beats_environment(tmp_path: Path) -> None:
    """A flag overrides the same setting from the environment."""
    code, text = run(["--bucket", "Flag_Bucket"], {"S3CFD_BUCKET": "env-bucket"}, tmp_path)
    assert code == EXIT_FAILED
    assert "Flag_Bucket" in text


def test_unwritable_runner_files_give_one_error_each_and_keep_the_deploy_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """GITHUB_OUTPUT and GITHUB_STEP_SUMMARY in a folder that is gone: no traceback, the
    deploy's own error still reported, one more ::error naming both files, secrets masked."""
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYqqqqqq"
    env = actions_env(
        tmp_path,
        bucket="Bad_Bucket",
        aws_access_key_id="AKIAEXAMPLE1234",
        aws_secret_access_key=secret,
    )
    gone = tmp_path / "runner-files-removed"
    env["GITHUB_OUTPUT"] = str(gone / f"output-{secret}")
    env["GITHUB_STEP_SUMMARY"] = str(gone / "summary")
    code, text = run([], env, tmp_path)
    assert code == EXIT_FAILED
    errors = [line for line in text.splitlines() if line.startswith("::error")]
    assert len(errors) == 2, text
    assert "title=Invalid input `bucket`" in errors[0]
    assert "title=Step outputs and job summary not written" in errors[1]
    assert "GITHUB_OUTPUT" in errors[1] and "GITHUB_STEP_SUMMARY" in errors[1]
    assert str(gone / "summary") in errors[1]
    assert "No such file or directory" in errors[1]
    assert "Traceback" not in text + capsys.readouterr().err
    assert secret not in "\n".join(errors)
    assert "output-***" in errors[1]
    assert "Uploaded 0 files" not in text  # nothing was planned: no summary line


def test_unwritable_summary_after_success_still_reports_the_result(tmp_path: Path) -> None:
    """A deploy that worked, then a summary file that cannot be written: the summary line
    and the outputs are written, then one ::error naming the summary file, exit 1."""

    env = actions_env(tmp_path)
    (tmp_path / "summary").unlink()
    (tmp_path / "summary").mkdir()  # a folder where the file should be: IsADirectoryError
    out = io.StringIO()
    outcome: Outcome = deployed()
    code = _report(Runner(env, out), outcome, None, bucket="my-site", prefix="")
    text = out.getvalue()
    assert code == EXIT_FAILED
    assert "Uploaded 4 files (12.4 KB; 1 header-only update), deleted 1" in text
    errors = [line for line in text.splitlines() if line.startswith("::error")]
    assert len(errors) == 1
    assert "title=Job summary not written" in errors[0]
    assert str(tmp_path / "summary") in errors[0]
    assert "The deploy itself finished" in errors[0]
    assert "uploaded-count<<" in Path(env["GITHUB_OUTPUT"]).read_text()


@pytest.mark.parametrize("script", ["entrypoint.py", "-m deployer"])
def test_the_program_exits_without_a_last_garbage_collection(script: str) -> None:
    """Both ways in (the container's `entrypoint.py`, the command) end through
    `console_main`, which freezes what is left before exiting: the interpreter's last
    collection would otherwise walk every object of the run (30-45 ms for 2,000 files)."""
    probe = (
        "import atexit, gc, runpy, sys; "
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0, gc.isenabled())); "
        "sys.argv = ['x', '--version']; "
        + (
            "runpy.run_module('deployer', run_name='__main__')"
            if script.startswith("-m")
            else f"runpy.run_path({str(ROOT / script)!r}, run_name='__main__')"
        )
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert "frozen True False" in done.stdout
