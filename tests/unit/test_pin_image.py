"""scripts/pin_image.py: only `runs.image` changes, byte for byte; bad references are refused."""

from __future__ import annotations

import difflib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

from scripts.pin_image import PinError, parse_reference, pin, pin_file

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "pin_image.py"
DIGEST = "sha256:" + "0123456789abcdef" * 4
REFERENCE = f"ghcr.io/octo-org/s3-cloudfront-deploy@{DIGEST}"
PINNED = f"docker://{REFERENCE}"


def changed_lines(before: str, after: str) -> list[str]:
    """The lines a unified diff shows as removed or added."""
    diff = difflib.unified_diff(before.splitlines(True), after.splitlines(True), n=0)
    return [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def test_the_repository_action_yml_changes_in_its_image_line_only() -> None:
    """The real action.yml: one line differs, and YAML reads the pinned image back."""
    before = (ROOT / "action.yml").read_text(encoding="utf-8")
    after = pin(before, REFERENCE)
    assert changed_lines(before, after) == ["-  image: Dockerfile\n", f"+  image: {PINNED}\n"]
    document = yaml.safe_load(after)
    assert document["runs"] == {"using": "docker", "image": PINNED}
    assert {k: v for k, v in document.items() if k != "runs"} == {
        k: v for k, v in yaml.safe_load(before).items() if k != "runs"
    }


def test_comments_quoting_order_and_crlf_are_kept() -> None:
    """Quotes, a trailing comment, CRLF endings and a missing final newline survive."""
    before = (
        "# header comment\r\n"
        "name: x   # trailing\r\n"
        "runs:\r\n"
        "    # the image\r\n"
        "    image:   'Dockerfile'   # built from source on main\r\n"
        '    using: "docker"\r\n'
        "    args: ['--image', 'keep']\r\n"
        "branding: {icon: box}"
    )
    after = pin(before, REFERENCE)
    assert after == before.replace("'Dockerfile'", f"'{PINNED}'")
    double = before.replace("'Dockerfile'", '"Dockerfile"')
    assert pin(double, REFERENCE) == before.replace("'Dockerfile'", f'"{PINNED}"')


def test_repinning_replaces_an_earlier_digest_and_is_idempotent() -> None:
    """A pinned file pins again to another digest; the same digest twice is a no-op."""
    first = pin("runs:\n  using: docker\n  image: Dockerfile\n", REFERENCE)
    other = REFERENCE.replace("0123", "fedc")
    assert pin(first, other) == f"runs:\n  using: docker\n  image: docker://{other}\n"
    assert pin(first, REFERENCE) == first


def test_image_keys_outside_runs_or_deeper_are_left_alone() -> None:
    """Only the key directly under the top-level `runs:` is the action's image."""
    before = (
        "inputs:\n"
        "  image:\n"
        "    description: an input that happens to be called image\n"
        "runs:\n"
        "  using: docker\n"
        "  env:\n"
        "    image: keep-me\n"
        "  image: Dockerfile\n"
        "outputs: {}\n"
    )
    after = pin(before, REFERENCE)
    assert changed_lines(before, after) == ["-  image: Dockerfile\n", f"+  image: {PINNED}\n"]


@pytest.mark.parametrize(
    "text",
    [
        "name: x\nruns:\n  using: composite\n  steps: []\n",
        "name: x\nimage: Dockerfile\n",
        "runs:\n  using: docker\n  image: Dockerfile\n  image: other\n",
    ],
    ids=["no-image", "image-not-under-runs", "two-image-lines"],
)
def test_a_file_without_exactly_one_runs_image_is_refused(text: str) -> None:
    """No image under `runs:` (or two of them): an error, not a guess."""
    with pytest.raises(PinError, match="image:"):
        pin(text, REFERENCE)


def test_references_with_a_valid_digest_are_accepted() -> None:
    """Registry host with a port, nested paths, an explicit docker:// in front."""
    assert parse_reference(REFERENCE) == PINNED
    assert parse_reference(PINNED) == PINNED
    local = f"localhost:5000/team/sub.group/deploy_tool@{DIGEST}"
    assert parse_reference(local) == f"docker://{local}"
    assert parse_reference(f"s3-cloudfront-deploy@{DIGEST}") == (
        f"docker://s3-cloudfront-deploy@{DIGEST}"
    )


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("ghcr.io/octo-org/s3-cloudfront-deploy:v1.2.3", "has no valid digest"),
        ("ghcr.io/octo-org/s3-cloudfront-deploy", "has no valid digest"),
        ("ghcr.io/octo-org/s3-cloudfront-deploy@sha256:abc", "has no valid digest"),
        (f"ghcr.io/octo-org/s3-cloudfront-deploy@{DIGEST.upper()}", "has no valid digest"),
        ("ghcr.io/octo-org/s3-cloudfront-deploy@sha512:" + "ab" * 64, "has no valid digest"),
        (f"ghcr.io/octo-org/s3-cloudfront-deploy@{DIGEST}x", "has no valid digest"),
        (f"ghcr.io/octo-org/s3-cloudfront-deploy:v1@{DIGEST}", "tag next to its digest"),
        (f"ghcr.io/Octo-Org/S3-Deploy@{DIGEST}", "is not an image name"),
        (f"ghcr.io/octo org/deploy@{DIGEST}", "is not an image name"),
        (f"@{DIGEST}", "is not an image name"),
        (f"ghcr.io/octo-org/deploy@{DIGEST}\nimage: evil", "has no valid digest"),
    ],
)
def test_references_without_a_valid_digest_are_refused(reference: str, message: str) -> None:
    """Tags, short or upper-case digests, other algorithms, bad names, injected lines."""
    with pytest.raises(PinError, match=message):
        parse_reference(reference)


def test_the_command_rewrites_in_place_and_keeps_the_mode(tmp_path: Path) -> None:
    """Run as the release workflow runs it: the file changes in place, mode kept."""
    action = tmp_path / "action.yml"
    original = (ROOT / "action.yml").read_bytes()
    action.write_bytes(original)
    action.chmod(0o640)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--file", str(action), REFERENCE],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{action}: image: Dockerfile -> image: {PINNED}\n"
    assert action.read_bytes() == original.replace(
        b"  image: Dockerfile\n", f"  image: {PINNED}\n".encode()
    )
    assert action.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["action.yml"]


def test_the_command_refuses_a_tag_with_one_error_and_changes_nothing(tmp_path: Path) -> None:
    """Exit 2, one `error:` line naming the reference and the fix, the file untouched."""
    action = tmp_path / "action.yml"
    action.write_bytes((ROOT / "action.yml").read_bytes())
    before = action.read_bytes()
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--file", str(action), "ghcr.io/o/r:v1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("error:") == 1
    assert "'ghcr.io/o/r:v1' has no valid digest" in proc.stderr
    assert "IMAGE@sha256:DIGEST" in proc.stderr
    assert action.read_bytes() == before


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are not rewritten."""
    action = tmp_path / "action.yml"
    action.write_bytes(b"runs:\n  image: Dockerfile\n# \xff\n")
    with pytest.raises(PinError, match="not UTF-8"):
        pin_file(action, REFERENCE)
    assert action.read_bytes() == b"runs:\n  image: Dockerfile\n# \xff\n"
