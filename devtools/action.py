"""Run `entrypoint.py` the way the GitHub runner runs the container action.

The runner passes every declared input as `INPUT_<NAME>` (upper case, hyphens
kept; empty when unset), sets `GITHUB_*` / `RUNNER_*` / `CI`, and points
`GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY` at files. `run_entrypoint` does the
same in a subprocess with a clean environment (nothing `AWS_*` inherited) and
reads the outputs and the summary back. Used by the integration tests and the demo.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deployer.interface import INPUTS, INPUTS_BY_NAME

REPO_ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = REPO_ROOT / "entrypoint.py"
_run_numbers = itertools.count(1)
_HEREDOC_START = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)<<(.+)$")


@dataclass(frozen=True)
class ActionResult:
    """What one run left behind: exit code, log, step outputs and job summary."""

    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str

    def everything(self) -> str:
        """All text a user could ever see from this run, for leak checks."""
        parts = [self.stdout, self.stderr, self.summary]
        parts += [f"{k}={v}" for k, v in self.outputs.items()]
        return "\n".join(parts)

    def describe(self) -> str:
        """A readable dump for assertion messages."""
        return (
            f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}\n"
            f"--- outputs\n{self.outputs}\n--- summary\n{self.summary}"
        )


def parse_github_output(text: str) -> dict[str, str]:
    """Parse a `GITHUB_OUTPUT` file: `name=value` lines and `name<<DELIM` heredocs."""
    outputs: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        heredoc = _HEREDOC_START.match(line)
        if heredoc:
            name, delimiter = heredoc.group(1), heredoc.group(2)
            body: list[str] = []
            while i < len(lines) and lines[i] != delimiter:
                body.append(lines[i])
                i += 1
            if i >= len(lines):
                raise ValueError(f"GITHUB_OUTPUT: heredoc for `{name}` is not closed")
            i += 1  # the closing delimiter
            outputs[name] = "\n".join(body)
        elif "=" in line:
            name, _, value = line.partition("=")
            outputs[name] = value
        else:
            raise ValueError(f"GITHUB_OUTPUT: unreadable line {line!r}")
    return outputs


def input_env(inputs: Mapping[str, str]) -> dict[str, str]:
    """Every declared input as `INPUT_<NAME>` with its default, overridden by `inputs`."""
    unknown = sorted(set(inputs) - set(INPUTS_BY_NAME))
    if unknown:
        raise KeyError(f"not declared in deployer.interface.INPUTS: {unknown}")
    env = {spec.env_input: spec.default for spec in INPUTS}
    for name, value in inputs.items():
        env[INPUTS_BY_NAME[name].env_input] = value
    return env


def runner_env(
    workspace: Path,
    inputs: Mapping[str, str],
    *,
    runner_dir: Path,
    endpoints: Mapping[str, str],
    extra_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """A runner-like, clean environment. `endpoints` maps `s3`/`cloudfront`/`sts` to URLs."""
    home = runner_dir / "home"
    home.mkdir(parents=True, exist_ok=True)
    run_id = str(900000 + next(_run_numbers) + os.getpid() * 1000)
    env: dict[str, str] = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_OUTPUT": str(runner_dir / "output"),
        "GITHUB_STEP_SUMMARY": str(runner_dir / "summary"),
        "GITHUB_RUN_ID": run_id,
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_REPOSITORY": "octo-org/octo-site",
        "GITHUB_SHA": "0" * 40,
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_JOB": "deploy",
        "GITHUB_WORKFLOW": "Deploy",
        "RUNNER_OS": "Linux",
        "RUNNER_TEMP": str(runner_dir),
        # No instance metadata service here: do not let the credential chain wait for one.
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for service, url in endpoints.items():
        env[f"AWS_ENDPOINT_URL_{service.upper()}"] = url
    env.update(input_env(inputs))
    if extra_env:
        env.update(extra_env)
    return env


def _prepared_env(
    workspace: Path,
    inputs: Mapping[str, str],
    *,
    endpoints: Mapping[str, str],
    extra_env: Mapping[str, str] | None,
    runner_dir: Path | None,
) -> dict[str, str]:
    """`runner_env` plus the runner's empty GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files."""
    if runner_dir is None:
        runner_dir = Path(tempfile.mkdtemp(prefix="runner-"))
    runner_dir.mkdir(parents=True, exist_ok=True)
    env = runner_env(
        workspace, inputs, runner_dir=runner_dir, endpoints=endpoints, extra_env=extra_env
    )
    for name in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
        path = Path(env[name])
        if path.parent.is_dir():  # a test may point one into a folder that is gone
            path.write_text("")
    return env


def start_entrypoint(
    workspace: Path,
    inputs: Mapping[str, str],
    *,
    endpoints: Mapping[str, str],
    runner_dir: Path | None = None,
    capture: bool = False,
) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start `python entrypoint.py` in the background (own session), for tests that kill it.

    Returns the process and its environment (where GITHUB_OUTPUT and the summary live).
    Output is captured (`communicate()`) only with `capture`; otherwise discarded.
    """
    env = _prepared_env(
        workspace, inputs, endpoints=endpoints, extra_env=None, runner_dir=runner_dir
    )
    stream = subprocess.PIPE if capture else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, str(ENTRYPOINT)],
        cwd=workspace,
        env=env,
        stdout=stream,
        stderr=stream,
        text=True,
        start_new_session=True,
    )
    return proc, env


def run_entrypoint(
    workspace: Path,
    inputs: Mapping[str, str],
    *,
    endpoints: Mapping[str, str],
    extra_env: Mapping[str, str] | None = None,
    runner_dir: Path | None = None,
    timeout: float = 300.0,
) -> ActionResult:
    """Run `python entrypoint.py` in `workspace` as the runner would; return what it left."""
    env = _prepared_env(
        workspace, inputs, endpoints=endpoints, extra_env=extra_env, runner_dir=runner_dir
    )
    output_file = Path(env["GITHUB_OUTPUT"])
    summary_file = Path(env["GITHUB_STEP_SUMMARY"])
    proc = subprocess.run(
        [sys.executable, str(ENTRYPOINT)],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return ActionResult(
        returncode=proc.returncode,
        stdout=proc.stdout,
        stderr=proc.stderr,
        outputs=parse_github_output(output_file.read_text()) if output_file.is_file() else {},
        summary=summary_file.read_text() if summary_file.is_file() else "",
    )
