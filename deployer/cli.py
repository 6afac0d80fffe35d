"""The one exit point: settings in, deploy, report out, an exit code.

Everything else raises `DeployError`; this module alone turns an error into an
`::error` annotation, a summary section and a non-zero exit code. Expected
errors never show a traceback; an unexpected one shows its (secret-scrubbed)
traceback only with `RUNNER_DEBUG=1` or `--debug`.

Exit codes: 0 deployed (or nothing to do), 1 the deploy failed or an input is
invalid, 2 the command line itself is malformed, 130 interrupted.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import traceback
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from deployer import __version__
from deployer.errors import DeployError
from deployer.github import Runner
from deployer.interface import INPUTS, OUTPUTS
from deployer.model import Outcome
from deployer.wording import for_local, used_names

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

    from deployer.aws import AnySession

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

# Ambient credentials are masked too: they are secrets whoever set them.
_AMBIENT_SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


class _UsageError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so `main` stays the one exit point."""

    _printed = ""

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        # `--help` and `--version` print, then exit: keep the text for `main` to print.
        self._printed += message

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        raise _UsageError(self._printed + (message or ""), status)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: error: {message}\n(see `{self.prog} --help`)", EXIT_USAGE)


# `--help` is read at a terminal: these inputs are described for local use there (the
# action's descriptions speak of repository secrets, OIDC and the workspace).
LOCAL_HELP = {
    "aws-access-key-id": "AWS access key ID. Prefer the standard `AWS_ACCESS_KEY_ID` "
    "variable, or `AWS_PROFILE`. Default: none; without keys the role (`--role-to-assume`) "
    "or the standard AWS credential chain is used.",
    "aws-secret-access-key": "AWS secret access key, with `--aws-access-key-id`. Prefer the "
    "standard `AWS_SECRET_ACCESS_KEY` variable. Default: none.",
    "role-to-assume": "ARN of an IAM role to assume with the credentials found (role "
    "chaining; GitHub OIDC exists only in GitHub Actions). Default: none.",
    "audience": "Audience of the GitHub OIDC token (in GitHub Actions only). "
    "Default: `sts.amazonaws.com`.",
    "source-dir": "Folder to publish, relative to the current folder, e.g. `dist`. "
    "Default: `.` (the current folder).",
}


def build_parser() -> argparse.ArgumentParser:
    env_lines = "\n".join(f"  {spec.flag:<28} {spec.env_var}" for spec in INPUTS if not spec.secret)
    parser = _Parser(
        prog="s3-cloudfront-deploy",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Publish a folder of static files to S3 by content and invalidate CloudFront for "
            "what changed.\nEvery flag can also come from an environment variable or a `.env` "
            "file in the current folder\n(flags win, then the environment, then `.env`)."
        ),
        epilog=(
            "Environment variables:\n" + env_lines + "\n"
            "Credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, "
            "AWS_PROFILE\n(the standard AWS chain). Endpoints: AWS_ENDPOINT_URL, "
            "AWS_ENDPOINT_URL_S3,\nAWS_ENDPOINT_URL_CLOUDFRONT, AWS_ENDPOINT_URL_STS.\n"
            "Outputs (in GitHub Actions): " + ", ".join(o.name for o in OUTPUTS) + "."
        ),
    )
    for spec in INPUTS:
        help_text = LOCAL_HELP.get(spec.name, spec.description).replace("%", "%%")
        if spec.secret:
            help_text += " Prefer the environment: command lines are visible to other users."
        if spec.boolean:
            parser.add_argument(
                spec.flag,
                dest=spec.name,
                nargs="?",
                const="true",
                default=None,
                metavar="true|false",
                help=help_text,
            )
        else:
            parser.add_argument(
                spec.flag, dest=spec.name, default=None, metavar="VALUE", help=help_text
            )
    parser.add_argument(
        "--env-file",
        default=None,
        metavar="PATH",
        help="Read settings from this file (UTF-8, `NAME=value` lines); it must exist. "
        "Default: `.env` in the current folder, when there is one.",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="Show tracebacks of unexpected errors (same as RUNNER_DEBUG=1).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _use_env_file(
    given: str | None,
    work_dir: Path,
    env: MutableMapping[str, str],
    process_env: MutableMapping[str, str],
    runner: Runner,
) -> dict[str, str]:
    """Merge `.env` (or `--env-file`) under the real environment, never over it; mask its
    secrets. Returns where each merged variable came from, for messages."""
    from deployer.envfile import DEFAULT_NAME, read_env_file  # noqa: PLC0415

    path = Path(given if given is not None else DEFAULT_NAME)
    read = read_env_file(
        path if path.is_absolute() else work_dir / path, explicit=given is not None
    )
    if read.warning:
        runner.warning(read.warning, title="Settings file not read")
    origins: dict[str, str] = {}
    for key, value in read.values.items():
        if key not in env:
            env[key] = value
            origins[key] = str(path)
            # botocore's credential chain reads os.environ itself.
            process_env.setdefault(key, value)
    _mask_early(runner, env)
    return origins


def _mask_early(runner: Runner, env: Mapping[str, str]) -> None:
    """Mask every secret before anything else is printed."""
    for spec in INPUTS:
        if spec.secret:
            for var in (spec.env_input, spec.env_var):
                value = env.get(var, "")
                if value.strip():
                    runner.mask(value.strip())
    for var in _AMBIENT_SECRETS:
        value = env.get(var, "")
        if value.strip():
            runner.mask(value.strip())


def _deploy(
    flags: Mapping[str, str | None],
    env: Mapping[str, str],
    cwd: Path,
    runner: Runner,
    outcome: Outcome,
    *,
    target: list[str],
    origins: Mapping[str, str],
) -> None:
    """Validate, authenticate and deploy; `target` gets [bucket, prefix] once known."""
    from deployer import early  # noqa: PLC0415

    # The first connections open (TCP, TLS) while pydantic is imported and the inputs
    # are checked; nothing is sent on them before (`early.py`).
    opened = early.open_early(flags, env)
    from deployer import deploy  # noqa: PLC0415  (keep `--help` fast)
    from deployer.credentials import describe, mask_keys, static_keys  # noqa: PLC0415
    from deployer.settings import load_settings  # noqa: PLC0415

    settings = load_settings(flags, env, cwd, origins=origins)
    outcome.dry_run = settings.dry_run
    target[:] = [settings.bucket, settings.destination_prefix]
    keys = static_keys(settings, env)
    if keys is None:
        # OIDC, an assumed role or the standard chain: AWS calls, and errors, come first.
        from deployer.auth import make_session  # noqa: PLC0415

        made = make_session(settings, env, runner.mask)
        runner.info(describe(settings, env))
        store, cdn = deploy.connect(settings, made, runner, env=env, early=opened)
    else:
        # Keys known up front sign the first requests; botocore comes only when needed.
        mask_keys(keys, runner.mask)
        runner.info(describe(settings, env))

        def session() -> AnySession:
            from deployer.auth import session_for_keys  # noqa: PLC0415

            return session_for_keys(keys, settings.aws_region)

        store, cdn = deploy.connect(settings, session, runner, keys=keys, env=env, early=opened)
    deploy.run(settings, store, cdn, runner, outcome)


def main(
    argv: Sequence[str],
    environ: Mapping[str, str],
    *,
    stdout: TextIO | None = None,
    cwd: Path | None = None,
    process_env: MutableMapping[str, str] | None = None,
) -> int:
    """Run one deploy. `environ` is read, never changed; `.env` values go into `process_env`."""
    out = stdout if stdout is not None else sys.stdout
    env = dict(environ)
    work_dir = cwd if cwd is not None else Path.cwd()
    runner = Runner(env, out)
    _mask_early(runner, env)

    try:
        args = vars(build_parser().parse_args(list(argv)))
    except _UsageError as usage:
        print(str(usage).rstrip(), file=out if usage.code == 0 else sys.stderr)
        return usage.code
    debug = bool(args.pop("debug")) or runner.debug_enabled
    env_file = args.pop("env_file")

    outcome = Outcome()
    error: DeployError | None = None
    target = ["", ""]  # bucket and prefix, for the report, as soon as settings are valid
    started = time.monotonic()
    try:
        origins: dict[str, str] = {}
        if not runner.in_actions:  # in Actions a committed `.env` never changes the inputs
            merged_into = process_env if process_env is not None else {}
            origins = _use_env_file(env_file, work_dir, env, merged_into, runner)
            names = used_names(args, env)
            runner.rephrase = lambda text: for_local(text, names)
        _deploy(args, env, work_dir, runner, outcome, target=target, origins=origins)
    except DeployError as err:
        error = err
    except KeyboardInterrupt:
        error = DeployError(
            "The deploy was interrupted. Files that landed stay; run it again "
            "to finish (unchanged files are not uploaded again).",
            title="Interrupted",
        )
    except Exception as err:  # the one place that reports bugs
        if debug:
            print(runner.scrub(traceback.format_exc()), file=sys.stderr)
        error = DeployError(
            f"Unexpected {type(err).__name__}: {runner.scrub(str(err))}. This is a bug in "
            "s3-cloudfront-deploy; re-run with `RUNNER_DEBUG=1` (or `--debug` locally) for a "
            "traceback and report it.",
            title="Unexpected error",
        )
    outcome.duration_s = time.monotonic() - started
    try:
        return _report(runner, outcome, error, bucket=target[0], prefix=target[1])
    except Exception as err:  # a bug in reporting must not hide the deploy's result
        if debug:
            print(runner.scrub(traceback.format_exc()), file=sys.stderr)
        if error is not None:
            runner.error(runner.scrub(error.message), title=error.title)
        runner.error(
            f"Unexpected {type(err).__name__} while reporting: {runner.scrub(str(err))}. The "
            f"deploy {'failed (see above)' if error else 'itself finished'}. This is a bug in "
            "s3-cloudfront-deploy; re-run with `RUNNER_DEBUG=1` (or `--debug` locally) for a "
            "traceback and report it.",
            title="Unexpected error",
        )
        return EXIT_FAILED


def _report(
    runner: Runner, outcome: Outcome, error: DeployError | None, *, bucket: str, prefix: str
) -> int:
    """Log, outputs and summary; then the deploy's error (if any) and any file that could
    not be written, each as one `::error`. Never raises for a file the runner gave us."""
    from deployer import report  # noqa: PLC0415

    unwritten: list[str] = []
    _write_file(
        runner, "GITHUB_OUTPUT", unwritten, lambda: runner.set_outputs(report.outputs(outcome))
    )
    if runner.in_actions:
        for title, rows in report.sections(outcome):
            with runner.group(title):
                for row in rows:
                    runner.info(row)
        markdown = report.summary_markdown(outcome, bucket=bucket, prefix=prefix, error=error)
        _write_file(
            runner, "GITHUB_STEP_SUMMARY", unwritten, lambda: runner.write_summary(markdown)
        )
    elif text := report.terminal_report(outcome).rstrip("\n"):
        runner.info(text)
    if error is None or (unwritten and outcome.plan is not None):
        # What happened is in the log even when the summary could not be written.
        runner.info(report.summary_line(outcome))
    if error is not None:
        runner.error(runner.scrub(error.message), title=error.title)
    if unwritten:
        deployed = (
            "The deploy failed (see the error above)" if error else "The deploy itself finished"
        )
        runner.error(
            runner.scrub(
                f"{' and '.join(unwritten)}. {deployed}; its result is in this log. This is a "
                "problem of the runner or of an earlier step that changed or removed these "
                "files: re-run the job, and check no step deletes the runner's file-command "
                "files."
            ),
            title=_unwritten_title(unwritten),
        )
    if error is not None and error.title == "Interrupted":
        return EXIT_INTERRUPTED
    return EXIT_FAILED if error is not None or unwritten else EXIT_OK


def _unwritten_title(unwritten: Sequence[str]) -> str:
    if len(unwritten) > 1:
        return "Step outputs and job summary not written"
    return (
        "Step outputs not written" if "GITHUB_OUTPUT" in unwritten[0] else "Job summary not written"
    )


def _write_file(
    runner: Runner, variable: str, unwritten: list[str], write: Callable[[], object]
) -> None:
    """Run `write`; an OSError becomes a line of `unwritten` naming the file and the cause."""
    try:
        write()
    except OSError as err:
        path = err.filename if err.filename is not None else "?"
        unwritten.append(
            f"`{variable}` (`{path}`) could not be written: {err.strerror or type(err).__name__}"
        )


def console_main() -> None:
    """Entry point of the `s3-cloudfront-deploy` console script."""
    try:
        code = main(sys.argv[1:], os.environ, process_env=os.environ)
        sys.stdout.flush()
    except BrokenPipeError:  # `s3-cloudfront-deploy --help | head`: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_OK
    # The run is over: the interpreter's last garbage collection would walk every object
    # left (the scan's files, the listing, the modules) only to free memory the process is
    # about to give back whole. Frozen objects are skipped: 30-45 ms less at exit for a
    # 2,000-file deploy, measured (`bench/run.py`), ~7% of a no-change deploy. Finalizers
    # of objects freed by reference count still run; every file written is closed already.
    gc.disable()
    gc.freeze()
    sys.exit(code)
