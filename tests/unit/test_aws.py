"""Client factories: the data loader limited to our services, no boto3 on the start path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import botocore.session
import pytest
from botocore.exceptions import UnknownServiceError

from deployer.aws import SERVICES, ServicesLoader, prepare_session, s3_client
from deployer.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def settings(tmp_path: Path) -> Settings:
    (tmp_path / "index.html").write_text("<h1>hi</h1>")
    return load_settings({"bucket": "my-site", "endpoint-url": "http://127.0.0.1:9"}, {}, tmp_path)


def test_loader_knows_exactly_the_three_services() -> None:
    """The session lists s3, cloudfront and sts, and refuses any other service by name."""
    session = prepare_session(botocore.session.Session())
    assert isinstance(session.get_component("data_loader"), ServicesLoader)
    assert session.get_available_services() == list(SERVICES)
    with pytest.raises(UnknownServiceError):
        session.create_client("ec2", region_name="us-east-1")


def test_clients_are_built_from_botocore_models(tmp_path: Path) -> None:
    """The S3 client built through the limited loader is botocore's usual client."""
    session = prepare_session(botocore.session.Session())
    session.set_credentials("AKIAEXAMPLE", "secret")
    client = s3_client(session, settings(tmp_path), env={})
    assert client.meta.service_model.service_name == "s3"
    assert client.meta.endpoint_url == "http://127.0.0.1:9"
    assert client.can_paginate("list_objects_v2")


def test_data_path_is_still_searched(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`AWS_DATA_PATH` (botocore's extra model folders) is honoured as botocore does."""
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path / "models"))
    loader = prepare_session(botocore.session.Session()).get_component("data_loader")
    assert str(tmp_path / "models") in loader.search_paths


def test_start_path_does_not_import_boto3() -> None:
    """Everything the CLI imports up to the first request leaves boto3 and s3transfer out."""
    code = (
        "import sys\n"
        "import deployer.cli, deployer.auth, deployer.aws, deployer.deploy, deployer.s3\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 's3transfer')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert done.stdout.strip() == "[]"


def test_keys_known_up_front_need_no_botocore_client(tmp_path: Path) -> None:
    """With static keys and an address resolved by `endpoints`, connecting makes neither
    a botocore session nor a client: the session factory is never called."""
    (tmp_path / "index.html").write_text("<h1>hi</h1>")
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from deployer import deploy\n"
        "from deployer.credentials import Keys\n"
        "from deployer.settings import load_settings\n"
        "flags = {'bucket': 'my-site', 'endpoint-url': 'http://127.0.0.1:9'}\n"
        "settings = load_settings(flags, {}, Path(sys.argv[1]))\n"
        "class Log:\n"
        "    def info(self, text): pass\n"
        "def no_session(): raise AssertionError('session made')\n"
        "keys = Keys('AKIAEXAMPLE', 'secret', None)\n"
        "store, cdn = deploy.connect(settings, no_session, Log(), keys=keys, env={})\n"
        "assert store._fast_path() is not None\n"
        "print(sorted(m for m in ('botocore.client', 'botocore.session') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
