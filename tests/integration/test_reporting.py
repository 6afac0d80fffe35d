"""Reporting when the runner's files cannot be written, after a real deploy to SeaweedFS.

The deploy itself succeeds; `GITHUB_STEP_SUMMARY` points into a folder that is gone
(an earlier step cleaned `RUNNER_TEMP`). The run must still say what it deployed, write
the step outputs, give exactly one `::error` naming the summary file, show no traceback
and no secret.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from devtools.action import ENTRYPOINT, parse_github_output, runner_env
from devtools.servers import Server


def test_unwritable_summary_after_a_real_deploy(
    seaweed: Server,
    moto_aws: Server,
    workspace: Path,
    deploy_inputs: dict[str, str],
    tmp_path: Path,
) -> None:
    """The files land, the log says so, outputs are written, one ::error names the file."""
    runner_dir = tmp_path / "runner"
    gone = runner_dir / "removed-by-an-earlier-step" / "step_summary"
    env = runner_env(
        workspace,
        deploy_inputs,
        runner_dir=runner_dir,
        endpoints={"s3": seaweed.endpoint, "cloudfront": moto_aws.endpoint},
        extra_env={"GITHUB_STEP_SUMMARY": str(gone)},
    )
    Path(env["GITHUB_OUTPUT"]).write_text("")
    proc = subprocess.run(
        [sys.executable, str(ENTRYPOINT)],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 1, log
    assert "Traceback" not in log
    shown = "\n".join(line for line in log.splitlines() if not line.startswith("::add-mask::"))
    assert seaweed.secret_key not in shown
    outputs = parse_github_output(Path(env["GITHUB_OUTPUT"]).read_text())
    uploaded = int(outputs["uploaded-count"])
    assert uploaded > 0
    assert f"Uploaded {uploaded} files" in proc.stdout  # the summary line, in the log
    listed = seaweed.client("s3").list_objects_v2(Bucket=deploy_inputs["bucket"])
    assert listed["KeyCount"] >= uploaded  # the deploy really happened
    errors = [line for line in proc.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1, log
    assert "title=Job summary not written" in errors[0]
    assert str(gone) in errors[0]
    assert "The deploy itself finished" in errors[0]
