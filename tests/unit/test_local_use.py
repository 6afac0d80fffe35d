"""Local runs: the `.env` file (encodings, folders, a missing `--env-file`), unknown
`S3CFD_*` names, fixes worded as the flag or variable the user used, `--help`."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.cli import EXIT_FAILED, EXIT_OK
from deployer.envfile import EnvFileError, read_env_file
from deployer.interface import INPUTS
from deployer.wording import for_local, used_names
from tests.unit.test_cli import run

KOREAN = "S3CFD_BUCKET=my-site\n# 배포 설정 (사이트)\nS3CFD_SOURCE_DIR=dist\n"


def errors_of(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error: ")]


def test_cp949_env_file_is_one_clear_error(tmp_path: Path) -> None:
    """A `.env` saved as CP949 by a Korean Windows editor: one error naming the file, the
    encoding and how to save it as UTF-8; no traceback, exit 1."""
    (tmp_path / ".env").write_bytes(KOREAN.encode("cp949"))
    code, text = run([], {}, tmp_path)
    assert code == EXIT_FAILED
    assert errors_of(text) == ["error: .env file is not UTF-8"]
    assert f"`{tmp_path / '.env'}` is not UTF-8 (byte 0xB9 on line 2)" in text
    assert "CP949" in text and "Save with Encoding > UTF-8" in text
    assert "iconv -f cp949 -t utf-8 .env > .env.utf8 && mv .env.utf8 .env" in text
    assert "Traceback" not in text


def test_utf16_and_bom_env_files(tmp_path: Path) -> None:
    """UTF-16 (PowerShell's `>`) is named as such; UTF-8 with a byte-order mark just works."""
    path = tmp_path / "deploy.env"
    path.write_bytes(KOREAN.encode("utf-16"))
    with pytest.raises(EnvFileError, match="saved as UTF-16"):
        read_env_file(path, explicit=True)
    path.write_bytes(KOREAN.encode("utf-8-sig"))
    read = read_env_file(path, explicit=True)
    assert read.values == {"S3CFD_BUCKET": "my-site", "S3CFD_SOURCE_DIR": "dist"}


def test_unreadable_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `.env` that cannot be read names the file, the cause and the fix."""
    path = tmp_path / ".env"
    path.write_text("S3CFD_BUCKET=x\n")

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(EnvFileError) as caught:
        read_env_file(path, explicit=False)
    assert caught.value.title == "Unreadable .env file"
    assert f"Could not read `{path}`: Permission denied" in caught.value.message
    assert "chmod u+r .env" in caught.value.message


def test_missing_env_file_flag_is_an_error(tmp_path: Path) -> None:
    """`--env-file` naming nothing is an error (the default `.env` may be absent)."""
    code, text = run(["--env-file", "deploy.env", "--bucket", "b"], {}, tmp_path)
    assert code == EXIT_FAILED
    assert errors_of(text) == ["error: `--env-file` not found"]
    assert f"`{tmp_path / 'deploy.env'}`, which does not exist" in text
    (tmp_path / "conf").mkdir()
    code, text = run(["--env-file", "conf"], {}, tmp_path)
    assert code == EXIT_FAILED
    assert errors_of(text) == ["error: `--env-file` is a folder"]


def test_env_folder_warns_unless_it_is_a_virtualenv(tmp_path: Path) -> None:
    """A default `.env` that is a folder: a warning (the run goes on); a virtualenv named
    `.env` is not ours and is skipped without a word."""
    (tmp_path / ".env").mkdir()
    code, text = run(["--bucket", "Bad_Bucket"], {}, tmp_path)
    assert code == EXIT_FAILED  # the bad bucket, not the folder
    assert "warning: Settings file not read" in text
    assert "is a folder, not a file" in text
    assert "Bad_Bucket" in text
    (tmp_path / ".env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    _, text = run(["--bucket", "Bad_Bucket"], {}, tmp_path)
    assert "warning" not in text


def test_unknown_s3cfd_names_are_errors_with_the_nearest_name(tmp_path: Path) -> None:
    """`S3CFD_BUKET` in `.env`, `S3CFD_DRY_RUNN` in the environment: one error listing
    both, each with the name it was probably meant to be; nothing else is done."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("hi")
    (tmp_path / ".env").write_text("S3CFD_BUKET=my-site\nS3CFD_SOURCE_DIR=site\n")
    code, text = run([], {"S3CFD_DRY_RUNN": "true", "S3CFD_DEBUG": "0"}, tmp_path)
    assert code == EXIT_FAILED
    assert "`S3CFD_BUKET`: is not a setting of s3-cloudfront-deploy (in `.env`); did you " in text
    assert "did you mean `S3CFD_BUCKET`? Rename it" in text
    assert "`S3CFD_DRY_RUNN`: is not a setting of s3-cloudfront-deploy; did you mean " in text
    assert "`S3CFD_DRY_RUN`" in text
    assert "S3CFD_DEBUG`:" not in text  # a known name, though not an input
    assert "AWS credentials" not in text  # stopped before credentials


def test_local_errors_name_the_flag_or_variable_used(tmp_path: Path) -> None:
    """Outside Actions a fix is a flag or a variable, never workflow YAML."""
    (tmp_path / "index.html").write_text("hi")
    code, text = run([], {}, tmp_path)
    assert code == EXIT_FAILED
    assert "error: Invalid setting `--bucket`" in text
    assert "is required; set `--bucket my-site-bucket`" in text
    assert "bucket: my-site-bucket" not in text
    _, text = run([], {"S3CFD_BUCKET": "s3://my-site/app"}, tmp_path)
    assert "error: Invalid setting `S3CFD_BUCKET`" in text
    assert "use `S3CFD_BUCKET=my-site` and put any folder in `--destination-prefix`" in text
    _, text = run(["--source-dir", "dist"], {"S3CFD_BUCKET": "ok-bucket"}, tmp_path)
    assert "`--source-dir`: `dist` does not exist; build the site first" in text
    assert "earlier step" not in text
    _, text = run(["--aws-access-key-id", "AKIAEXAMPLE", "--bucket", "b1b"], {}, tmp_path)
    assert "`--aws-secret-access-key`: is missing while `--aws-access-key-id` is set" in text
    assert "${{" not in text and "repository secret" not in text


def test_help_speaks_of_local_use(tmp_path: Path) -> None:
    """`--help` is for a terminal: no repository secrets, workspace or workflow syntax."""
    code, text = run(["--help"], {}, tmp_path)
    assert code == EXIT_OK
    for phrase in ("repository secret", "workspace", "${{", "repository itself", "id-token"):
        assert phrase not in text, phrase
    assert "relative to the current folder" in text
    assert "AWS_ACCESS_KEY_ID" in text


def test_for_local_rewrites_names_and_yaml_fixes() -> None:
    """Input names become the user's flag or variable; `name: value` fixes follow suit."""
    names = used_names({"bucket": "x"}, {"S3CFD_MAX_DELETE": "3"})
    assert names["bucket"] == "--bucket"
    assert names["max-delete"] == "S3CFD_MAX_DELETE"
    assert names["dry-run"] == "--dry-run"
    text = (
        "This deploy would delete 9 objects, more than `max-delete` (3). Raise `max-delete` "
        "to at least 9 (or set `delete-removed: false`). Check the `bucket` input; the "
        "`aws-access-key-id` and `role-to-assume` inputs are empty. Re-run the workflow. "
        "Write `*.html: no-cache`; keep `permissions: id-token: write`."
    )
    assert for_local(text, names) == (
        "This deploy would delete 9 objects, more than `S3CFD_MAX_DELETE` (3). Raise "
        "`S3CFD_MAX_DELETE` to at least 9 (or set `--delete-removed false`). Check "
        "`--bucket`; `--aws-access-key-id` and `--role-to-assume` are not set. Run it again. "
        "Write `*.html: no-cache`; keep `permissions: id-token: write`."
    )
    assert {spec.name for spec in INPUTS} == set(names)


def test_for_local_names_the_standard_aws_variables_and_no_secrets() -> None:
    """Keys from `AWS_ACCESS_KEY_ID` are called that; "repository secret" wording goes."""
    names = used_names({}, {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s"})
    text = (
        "S3 does not know the access key ID. Check the `aws-access-key-id` secret (the key "
        "may be deleted). The `aws-secret-access-key` secret does not match: re-create the "
        "secret with the bare value. Pass `aws-session-token` from repository secrets."
    )
    assert for_local(text, names) == (
        "S3 does not know the access key ID. Check the `AWS_ACCESS_KEY_ID` value (the key "
        "may be deleted). The `AWS_SECRET_ACCESS_KEY` value does not match: set it to the "
        "bare value. Pass `--aws-session-token`."
    )
