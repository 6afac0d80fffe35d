"""The `.env` file of local runs: found, read as UTF-8, parsed; every problem named.

Decisions:
- `--env-file PATH` that does not exist, or is a folder, is an error: the user named a
  file, and running without its settings would deploy with the defaults.
- The default `.env` is optional. When it is a folder, it is a virtualenv more often
  than not (`python -m venv .env` is a common habit), so a folder holding `pyvenv.cfg`
  is skipped silently and any other folder gives a warning (the run goes on: the user
  did not ask for that folder to be read).
- The file must be UTF-8 (a byte-order mark is accepted): an editor that saved it in
  another encoding (CP949 from a Korean Windows editor, UTF-16 from PowerShell's `>`)
  gets one error that says how to save it as UTF-8, not a traceback.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from deployer.errors import DeployError

DEFAULT_NAME = ".env"


class EnvFileError(DeployError):
    """Raised when the `.env` file (or `--env-file`) cannot be used."""

    title = "Unusable .env file"


@dataclass(frozen=True, slots=True)
class EnvFile:
    """What was read: the values (empty when there is no file) and an optional warning."""

    path: Path | None
    values: dict[str, str]
    warning: str = ""


def read_env_file(path: Path, *, explicit: bool) -> EnvFile:
    """Read `path` (`explicit`: named by `--env-file`, so it must exist)."""
    if path.is_dir():
        if explicit:
            raise EnvFileError(
                f"`--env-file` names `{path}`, which is a folder. Name the settings file "
                "itself, e.g. `--env-file deploy.env`.",
                title="`--env-file` is a folder",
            )
        if (path / "pyvenv.cfg").is_file():  # a virtualenv named .env: not ours to read
            return EnvFile(None, {})
        return EnvFile(
            None,
            {},
            warning=f"`{path}` is a folder, not a file, so no settings were read from it. "
            "Put the settings in a file and name it with `--env-file`.",
        )
    if not path.exists():
        if explicit:
            raise EnvFileError(
                f"`--env-file` names `{path}`, which does not exist. Fix the path, or leave "
                "out `--env-file` to read `.env` from the current folder when there is one.",
                title="`--env-file` not found",
            )
        return EnvFile(None, {})
    try:
        data = path.read_bytes()
    except OSError as err:
        raise EnvFileError(
            f"Could not read `{path}`: {err.strerror or type(err).__name__}. Make it "
            f"readable (e.g. `chmod u+r {path.name}`), or name another file with `--env-file`.",
            title="Unreadable .env file",
        ) from None
    return EnvFile(path, parse(data, path))


def parse(data: bytes, path: Path) -> dict[str, str]:
    """The `KEY=value` pairs of a `.env` file's bytes (python-dotenv's syntax)."""
    from dotenv import dotenv_values  # noqa: PLC0415  (only needed for local runs)

    values = dotenv_values(stream=io.StringIO(decode(data, path)))
    return {key: value for key, value in values.items() if value is not None}


def decode(data: bytes, path: Path) -> str:
    """UTF-8 text (a byte-order mark dropped), or an error that says how to fix the file."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise EnvFileError(
            f"`{path}` is saved as UTF-16 (Windows PowerShell's `>` and `Out-File` write "
            "that); it must be UTF-8. Save it again as UTF-8 (VS Code: the encoding in the "
            "status bar > Save with Encoding > UTF-8), or in PowerShell write it with "
            "`Set-Content -Encoding utf8`.",
            title=".env file is not UTF-8",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise EnvFileError(
            f"`{path}` is not UTF-8 (byte 0x{data[err.start]:02X} on line {line}): it was "
            "saved in another encoding, such as CP949 (EUC-KR) by a Korean Windows editor. "
            "Save it again as UTF-8 (VS Code: the encoding in the status bar > Save with "
            "Encoding > UTF-8; Notepad: Save As > Encoding: UTF-8), or convert it: "
            f"`iconv -f cp949 -t utf-8 {path.name} > {path.name}.utf8 && "
            f"mv {path.name}.utf8 {path.name}`.",
            title=".env file is not UTF-8",
        ) from None
