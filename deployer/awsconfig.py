"""The AWS settings our own S3 requests honour as botocore does, read without botocore.

botocore looks a setting up in its environment variable first (set counts, even when
empty), then in the profile's section of the shared config file (`AWS_CONFIG_FILE`,
default `~/.aws/config`; the profile is `AWS_DEFAULT_PROFILE`, then `AWS_PROFILE`, then
`default`). Two such settings change where and how `deployer/s3wire.py` connects:

- `ca_bundle` (`AWS_CA_BUNDLE`), then `REQUESTS_CA_BUNDLE`, then the default bundle:
  the certificates an HTTPS endpoint is verified against (`ca_bundle`);
- `ignore_configured_endpoint_urls` (`AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`): `true`
  makes botocore ignore `AWS_ENDPOINT_URL*` (only an explicit endpoint counts).

Cheap on the start path: without the variables, one `stat` of a config file that
usually does not exist. Deliberately not followed: the credentials file (botocore also
merges its profiles' values), and a config file botocore cannot parse (botocore then
fails on its own, with its own error, when a HEAD or copy needs it).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CA_BUNDLE_VAR = "AWS_CA_BUNDLE"
REQUESTS_CA_BUNDLE_VAR = "REQUESTS_CA_BUNDLE"
IGNORE_ENDPOINTS_VAR = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"


def config_path(env: Mapping[str, str]) -> Path | None:
    """The shared config file botocore reads (it may not exist)."""
    named = env.get("AWS_CONFIG_FILE")
    if named is not None:
        return Path(os.path.expandvars(named)).expanduser() if named.strip() else None
    home = env.get("HOME", "").strip()
    return Path(home) / ".aws" / "config" if home else None


def profile_name(env: Mapping[str, str]) -> str:
    for name in ("AWS_DEFAULT_PROFILE", "AWS_PROFILE"):
        if name in env:
            return env[name]
    return "default"


def profile_value(env: Mapping[str, str], key: str) -> str | None:
    """`key` in the profile's section of the config file; None when absent or unreadable."""
    path = config_path(env)
    try:
        if path is None or not path.is_file() or path.stat().st_size == 0:
            return None
    except OSError:
        return None
    import configparser  # noqa: PLC0415  (only when a config file exists)
    import shlex  # noqa: PLC0415

    parser = configparser.RawConfigParser()
    try:
        parser.read([path])
    except (configparser.Error, UnicodeDecodeError, OSError):
        return None
    wanted = profile_name(env)
    found: str | None = None
    for section in parser.sections():  # as botocore's build_profile_map: the last one wins
        if section.startswith("profile"):
            try:
                parts = shlex.split(section)
            except ValueError:
                continue
            name = parts[1] if len(parts) == 2 else None
        else:
            name = section if section == "default" else None
        if name == wanted and parser.has_option(section, key):
            found = parser.get(section, key)
    return found


def setting(env: Mapping[str, str], variable: str, key: str) -> str | None:
    """A botocore config variable: the environment variable if set, else the profile's."""
    if variable in env:
        return env[variable]
    return profile_value(env, key)


def ignores_configured_endpoints(env: Mapping[str, str]) -> bool:
    """`AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` (or the profile's setting) is `true`, compared
    as botocore's `ensure_boolean` does (case-insensitive, nothing stripped)."""
    value = setting(env, IGNORE_ENDPOINTS_VAR, "ignore_configured_endpoint_urls")
    return value is not None and value.lower() == "true"


@dataclass(frozen=True, slots=True)
class CABundle:
    """The certificates HTTPS endpoints are verified against, and the setting that chose
    them (for messages: a path and a setting's name, never anything secret)."""

    path: str | None  # None: no bundle could be found (the system's certificates)
    source: str  # e.g. "`AWS_CA_BUNDLE`", or "the default bundle"


class BlankCABundleError(ValueError):
    """A CA bundle setting that is present but empty (botocore refuses it too)."""

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self.source = source


def ca_bundle(env: Mapping[str, str]) -> CABundle:
    """botocore's choice: `AWS_CA_BUNDLE`, else `ca_bundle` in the profile, else
    `REQUESTS_CA_BUNDLE`, else certifi's bundle if installed, else botocore's own.
    Raises BlankCABundleError for a setting that is present but blank."""
    value: str | None
    if CA_BUNDLE_VAR in env:
        value, source = env[CA_BUNDLE_VAR], f"`{CA_BUNDLE_VAR}`"
    else:
        value = profile_value(env, "ca_bundle")
        source = f"`ca_bundle` in {config_path(env)} (profile `{profile_name(env)}`)"
        if value is None and REQUESTS_CA_BUNDLE_VAR in env:
            value, source = env[REQUESTS_CA_BUNDLE_VAR], f"`{REQUESTS_CA_BUNDLE_VAR}`"
    if value is not None:
        if not value.strip():
            raise BlankCABundleError(source)
        return CABundle(value, source)
    return CABundle(_default_bundle(), "the default CA bundle")


def _default_bundle() -> str | None:
    """certifi's bundle if installed, else the one botocore ships (found without importing
    botocore), as botocore's `httpsession.get_cert_path` picks."""
    if importlib.util.find_spec("certifi") is not None:
        import certifi  # noqa: PLC0415

        return str(certifi.where())
    spec = importlib.util.find_spec("botocore")
    if spec is None or spec.origin is None:
        return None
    return str(Path(spec.origin).parent / "cacert.pem")
