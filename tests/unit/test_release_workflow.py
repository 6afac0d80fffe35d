"""release.yml: both architectures, pinned by digest, attested, and the major tag moved last."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
PINNED_USES = re.compile(
    r"^\s*(?:-\s+)?uses:\s+([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v\d+\.\d+\.\d+$"
)


def _workflow() -> dict[str, Any]:
    document = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _jobs() -> dict[str, dict[str, Any]]:
    jobs = _workflow()["jobs"]
    assert isinstance(jobs, dict)
    return jobs


def _needs(job: dict[str, Any]) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def _ancestors(name: str) -> set[str]:
    jobs = _jobs()
    seen: set[str] = set()
    stack = _needs(jobs[name])
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(_needs(jobs[current]))
    return seen


def _steps_text(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in job.get("steps", []))


def _job_running(command: str) -> str:
    found = [name for name, job in _jobs().items() if command in _steps_text(job)]
    assert len(found) == 1, f"{command!r} runs in {found}"
    return found[0]


def test_every_remote_action_is_pinned_by_commit_with_its_version() -> None:
    """`uses: owner/repo@<40 hex> # vX.Y.Z` for every action; the CI call is local."""
    for line in WORKFLOW.read_text(encoding="utf-8").splitlines():
        if re.match(r"^\s*(?:-\s+)?uses:", line) and "./.github/workflows/" not in line:
            assert PINNED_USES.match(line), line


def test_no_default_permissions_and_each_job_asks_for_its_own() -> None:
    """Top-level `permissions: {}`; every job names its permissions; write only where needed."""
    assert _workflow()["permissions"] == {}
    writers: dict[str, set[str]] = {}
    for name, job in _jobs().items():
        assert "permissions" in job, name
        writers[name] = {scope for scope, level in job["permissions"].items() if level == "write"}
        if "uses" not in job:
            assert job.get("timeout-minutes"), name
    assert {name for name, scopes in writers.items() if "contents" in scopes} == {
        _job_running("gh release create"),
        _job_running("git/refs/tags/$MAJOR"),
    }


def test_the_image_is_built_for_both_architectures_with_provenance_and_sbom() -> None:
    """amd64 + arm64, pushed; BuildKit provenance and SBOM; a signed provenance attestation."""
    steps = _jobs()["image"]["steps"]
    build = next(s for s in steps if "docker/build-push-action@" in s.get("uses", ""))
    assert set(build["with"]["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert build["with"]["push"] is True
    assert build["with"]["provenance"] == "mode=max"
    assert build["with"]["sbom"] is True
    attest = next(s for s in steps if "actions/attest-build-provenance@" in s.get("uses", ""))
    assert attest["with"]["subject-digest"] == "${{ steps.build.outputs.digest }}"
    assert attest["with"]["push-to-registry"] is True
    permissions = _jobs()["image"]["permissions"]
    assert permissions["id-token"] == permissions["attestations"] == "write"


def test_the_release_commit_is_pinned_by_digest_with_the_script() -> None:
    """The release job runs scripts/pin_image.py with the pushed digest before tagging."""
    release = _jobs()[_job_running("scripts/pin_image.py")]
    text = _steps_text(release)
    assert 'pin_image.py "$IMAGE@$DIGEST"' in text
    assert text.index("pin_image.py") < text.index('refs/tags/$TAG"')
    assert any(
        step.get("env", {}).get("DIGEST") == "${{ needs.image.outputs.digest }}"
        for step in release["steps"]
    )


def test_the_major_tag_moves_only_after_everything_else_succeeded() -> None:
    """The job that moves vN needs every other job (transitively) and skips pre-releases."""
    major = _job_running("git/refs/tags/$MAJOR")
    assert _ancestors(major) == set(_jobs()) - {major}
    assert _jobs()[major]["if"] == "needs.check.outputs.prerelease == 'false'"
    assert _ancestors(_job_running("scripts/pin_image.py")) >= {"ci", "image", "verify"}


def test_the_pushed_image_is_pulled_and_checked_on_both_architectures() -> None:
    """The verify job runs on an x64 and an arm64 runner and checks the attestation."""
    verify = _jobs()["verify"]
    runners = {entry["runner"]: entry["arch"] for entry in verify["strategy"]["matrix"]["include"]}
    assert runners == {"ubuntu-24.04": "amd64", "ubuntu-24.04-arm": "arm64"}
    assert "gh attestation verify" in _steps_text(verify)
