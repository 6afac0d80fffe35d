"""The request layer's failure paths against real servers (SeaweedFS, behind
`devtools.faultproxy` where a fault is needed) and scripted loopback servers where no
real server shows the behaviour: each failure ends at once in one error that names
the cause and the fix, and is compared with what botocore does where it matters.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployer.s3 import S3Error
from devtools.faultproxy import FaultProxy
from devtools.servers import Server
from tests.integration.test_s3store import local_file, make_store

# -- CA bundles --------------------------------------------------------------------------


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key, made by openssl."""
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed to make a test certificate")
    cert, key = tmp_path / "ca.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt"),
            *("ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def https_seaweed(seaweed: Server, certificate: tuple[Path, Path]) -> Iterator[FaultProxy]:
    """SeaweedFS behind an HTTPS endpoint whose certificate no default bundle trusts."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    proxy = FaultProxy(seaweed.endpoint, tls=context).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def no_ca_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))


@pytest.mark.usefixtures("no_ca_settings")
@pytest.mark.parametrize("wire", [True, False], ids=["wire", "botocore"])
def test_an_untrusted_certificate_is_named_and_not_retried(
    seaweed: Server, bucket: str, tmp_path: Path, https_seaweed: FaultProxy, wire: bool
) -> None:
    """A private CA's certificate: one error saying the certificate is not trusted and
    which setting fixes it; the wire does not retry (no backoff at all)."""
    store = make_store(seaweed, bucket, tmp_path, endpoint=https_seaweed.url, wire=wire)
    sleeps: list[float] = []
    if wire:
        fast = store._fast_path()
        assert fast is not None
        fast.sleep = sleeps.append
    with pytest.raises(S3Error) as caught:
        store.list_objects("")
    message = str(caught.value)
    assert caught.value.title == "Untrusted TLS certificate"
    assert "self-signed certificate" in message
    assert "`AWS_CA_BUNDLE`" in message and "`ca_bundle` in the AWS config file" in message
    assert https_seaweed.url.split("//")[1] in message
    assert sleeps == []
    assert https_seaweed.stats.requests.total() == 0  # nothing reached the server


@pytest.mark.usefixtures("no_ca_settings")
@pytest.mark.parametrize("setting", ["AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "config"])
def test_each_ca_bundle_setting_is_honoured(
    seaweed: Server,
    bucket: str,
    tmp_path: Path,
    https_seaweed: FaultProxy,
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
) -> None:
    """With the CA named by any of botocore's three settings, the wire lists and uploads
    over HTTPS (and botocore's client, for a HEAD, trusts the same CA)."""
    cert = str(certificate[0])
    if setting == "config":
        config = tmp_path / "aws-config"
        config.write_text(f"[default]\nca_bundle = {cert}\n")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    else:
        monkeypatch.setenv(setting, cert)
    store = make_store(seaweed, bucket, tmp_path, endpoint=https_seaweed.url)
    file = local_file(tmp_path, "index.html", b"<h1>over https</h1>")
    assert store.put_file(file) == file.md5
    assert [o.key for o in store.list_objects("")] == ["index.html"]
    state = store.head("index.html")  # botocore
    assert state is not None and state.md5 == file.md5


@pytest.mark.usefixtures("no_ca_settings")
def test_a_wrong_ca_bundle_names_the_setting(
    seaweed: Server,
    bucket: str,
    tmp_path: Path,
    https_seaweed: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bundle that does not exist, or a bundle of other CAs: the error names the setting."""
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    store = make_store(seaweed, bucket, tmp_path, endpoint=https_seaweed.url)
    with pytest.raises(S3Error) as missing:
        store.list_objects("")
    assert missing.value.title == "CA bundle problem"
    assert "missing.pem" in str(missing.value) and "`AWS_CA_BUNDLE`" in str(missing.value)

    import certifi

    monkeypatch.setenv("AWS_CA_BUNDLE", certifi.where())  # public CAs only
    store = make_store(seaweed, bucket, tmp_path, endpoint=https_seaweed.url)
    with pytest.raises(S3Error) as other:
        store.list_objects("")
    assert other.value.title == "Untrusted TLS certificate"
    assert "(from `AWS_CA_BUNDLE`)" in str(other.value)
