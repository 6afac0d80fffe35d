"""Reporting when the runner's files cannot be written, after a real deploy to SeaweedFS.

The deploy itself succeeds; `GITHUB_STEP_SUMMARY` points into a folder that is gone
(an earlier step cleaned `RUNNER_TEMP`). The run must still say what it deployed, write
the step outputs, give exactly one `::error` naming the summary file, show no traceback
and no secret.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from pathlib import Path

from deployer.retries import RETRIES
from devtools.servers import Server
from tests.integration.conftest import RunAction
from tests.integration.test_s3store import local_file
from tests.integration.test_wire_failures import Scripted, s3_error, store_at


def test_unwritable_summary_after_a_real_deploy(
    seaweed: Server,
    run_action: RunAction,
    workspace: Path,
    deploy_inputs: dict[str, str],
    tmp_path: Path,
) -> None:
    """The files land, the log says so, outputs are written, one ::error names the file."""
    gone = tmp_path / "removed-by-an-earlier-step" / "step_summary"
    result = run_action(workspace, deploy_inputs, {"GITHUB_STEP_SUMMARY": str(gone)})
    log = result.stdout + result.stderr
    assert result.returncode == 1, log
    assert "Traceback" not in log
    shown = "\n".join(line for line in log.splitlines() if not line.startswith("::add-mask::"))
    assert seaweed.secret_key not in shown
    uploaded = int(result.outputs["uploaded-count"])
    assert uploaded > 0
    assert f"Uploaded {uploaded} files" in result.stdout  # the summary line, in the log
    listed = seaweed.client("s3").list_objects_v2(Bucket=deploy_inputs["bucket"])
    assert listed["KeyCount"] >= uploaded  # the deploy really happened
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1, log
    assert "title=Job summary not written" in errors[0]
    assert str(gone) in errors[0]
    assert "The deploy itself finished" in errors[0]


def test_the_wire_tells_progress_why_it_retries(tmp_path: Path) -> None:
    """S3 answers a PUT with 500 InternalError twice, then takes it: the retries are
    counted by reason for the progress line ("retried 2 requests: InternalError (HTTP
    500) x2"), and the upload succeeds."""
    answers = iter([500, 500, 200])

    def flaky(handler: BaseHTTPRequestHandler) -> None:
        handler.rfile.read(int(handler.headers.get("Content-Length", "0")))
        status = next(answers)
        if status != 200:
            s3_error(handler, status, "InternalError")
            return
        handler.send_response(200)
        handler.send_header("ETag", '"0cc175b9c0f1b6a831c399e269772661"')
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    with Scripted(flaky) as server:
        store = store_at(server.url, "site", tmp_path)
        fast = store._fast_path()
        assert fast is not None
        fast.sleep = lambda _seconds: None
        before = RETRIES.snapshot()
        store.put_file(local_file(tmp_path, "a.txt", b"a"))
        new = RETRIES.snapshot() - before
    assert new == {"InternalError (HTTP 500)": 2}
