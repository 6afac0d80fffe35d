"""The CloudFront part of a deploy, which `deploy.py` only calls: each distribution
looked up before any write (the key prefix its origin serves, and the site's address),
then, once the files have landed, one invalidation per distribution and, with
`wait-for-invalidation`, the waits. Several distributions are called at once (`fanout`):
one round trip for all."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from deployer import fanout, invalidation
from deployer.errors import DeployError
from deployer.model import Distribution, InvalidationResult, Outcome
from deployer.report import plural
from deployer.settings import Settings

ALL_PATHS = ("/*",)


class CDN(Protocol):
    """CloudFront, as the deploy sees it. Implemented by `cloudfront.CloudFrontCDN`."""

    def distribution(self, distribution_id: str, bucket: str) -> Distribution:
        """The key prefix served at `/` (`""` for the bucket root; None when unknown) and
        the site's address. Raises for a distribution that does not exist."""
        ...

    def invalidate(
        self, distribution_id: str, paths: Sequence[str], caller_reference: str
    ) -> InvalidationResult: ...

    def wait(self, distribution_id: str, invalidation_id: str, timeout_s: float) -> str: ...


class CloudFrontStep:
    """One run's CloudFront calls and what they found (the origins' key prefixes)."""

    def __init__(
        self,
        settings: Settings,
        cdn: CDN,
        outcome: Outcome,
        info: Callable[[str], None],
        warn: Callable[[str, str], None],
        *,
        clock: Callable[[], float],
    ) -> None:
        self.settings, self.cdn, self.outcome = settings, cdn, outcome
        self.info, self.warn, self.clock = info, warn, clock
        self.origins: dict[str, str | None] = {}  # distribution -> key prefix it serves

    def look_up(self) -> dict[str, Distribution]:
        """Each distribution's origin key prefix and address, looked up at once
        (`fanout`); raises for a distribution that does not exist. None looked up with
        `invalidation: none`."""
        if self.settings.invalidation == "none":
            return {}
        ids, bucket = self.settings.distribution_ids, self.settings.bucket
        looked_up: dict[str, Distribution] = {}
        for dist, found in zip(
            ids, fanout.each(lambda dist: self.cdn.distribution(dist, bucket), ids), strict=True
        ):
            if isinstance(found, Exception):
                raise found
            looked_up[dist] = found
        return looked_up

    def found(self, found: Mapping[str, Distribution]) -> None:
        """The first distribution's address goes to the report; each one's origin prefix
        is kept for its invalidation paths."""
        first = next(iter(found.values()), None)
        if first is not None and first.site_url:
            self.outcome.site_url = first.site_url
            self.outcome.site_prefix = first.origin_prefix or ""
        self.origins = {dist: info.origin_prefix for dist, info in found.items()}

    def invalidate(self, keys: Sequence[str], *, changed: bool) -> DeployError | None:
        """One invalidation per distribution, created at once (`fanout`); returns the
        first error after trying them all."""
        settings, outcome = self.settings, self.outcome
        if not settings.distribution_ids or not changed:
            return None
        if settings.invalidation == "none":
            self.info("Invalidation skipped (`invalidation: none`)")
            return None
        first_error: DeployError | None = None
        planned: list[tuple[str, tuple[str, ...]]] = []
        for dist in settings.distribution_ids:
            try:
                paths = self.paths_for(dist, keys)
            except DeployError as err:
                first_error = first_error or err
                continue
            if not paths:
                self.info(f"Nothing to invalidate on `{dist}`")
                continue
            planned.append((dist, paths))

        def create(dist_paths: tuple[str, tuple[str, ...]]) -> InvalidationResult:
            dist, paths = dist_paths
            ref = invalidation.caller_reference(settings.run_id, settings.run_attempt, dist, paths)
            return self.cdn.invalidate(dist, paths, ref)

        results: list[InvalidationResult] = []
        all_paths: list[str] = []
        for (dist, paths), result in zip(planned, fanout.each(create, planned), strict=True):
            if isinstance(result, DeployError):
                first_error = first_error or result
                continue
            if isinstance(result, Exception):
                raise result
            all_paths.extend(p for p in paths if p not in all_paths)
            outcome.invalidation_paths = tuple(all_paths)
            if settings.dry_run:
                self.info(f"Would invalidate {plural(len(paths), 'path')} on `{dist}`")
                continue
            self.info(
                f"Invalidation `{result.invalidation_id}` on `{dist}`: {plural(len(paths), 'path')}"
            )
            results.append(result)
            outcome.invalidations.append(result)
        if settings.wait_for_invalidation and results:
            self.wait_all(results)
        return first_error

    def paths_for(self, dist: str, keys: Sequence[str]) -> tuple[str, ...]:
        settings = self.settings
        if settings.invalidation == "all":
            return ALL_PATHS
        origin = self.origins.get(dist)
        if origin is None:
            self.warn(
                f"Could not tell which folder of `{settings.bucket}` distribution "
                f"`{dist}` serves (no access to its configuration, or none of its "
                "origins is the bucket's S3 domain); invalidation paths assume it "
                "serves the bucket root. Allow `cloudfront:GetDistribution`, or "
                "use `invalidation: all` if that assumption is wrong.",
                "Origin path unknown",
            )
            origin = ""
        return invalidation.paths_for(
            keys, origin_path=origin, max_paths=settings.invalidation_max_paths
        )

    def wait_all(self, results: Sequence[InvalidationResult]) -> None:
        """Wait for every invalidation (at once) within one shared `wait_timeout_s`.

        Never an error: the files are deployed and the invalidations created, so the
        record must still be written. A timeout or a failed status check is a warning.
        """
        timeout = self.settings.wait_timeout_s
        deadline = self.clock() + timeout
        self.info(
            f"Waiting for {plural(len(results), 'invalidation')} to complete "
            f"(at most {timeout:.0f} s)"
        )

        def wait(result: InvalidationResult) -> str:
            remaining = max(0.0, deadline - self.clock())
            return self.cdn.wait(result.distribution_id, result.invalidation_id, remaining)

        for result, status in zip(results, fanout.each(wait, results), strict=True):
            if isinstance(status, DeployError):
                self.warn(
                    f"Could not check invalidation `{result.invalidation_id}` on "
                    f"`{result.distribution_id}`: {status.message} It was created and "
                    "finishes on its own.",
                    "Invalidation status unknown",
                )
                continue
            if isinstance(status, Exception):
                raise status
            index = self.outcome.invalidations.index(result)
            self.outcome.invalidations[index] = replace(result, status=status)
            if status.lower() != "completed":
                self.warn(
                    f"Invalidation `{result.invalidation_id}` on "
                    f"`{result.distribution_id}` is still {status} after {timeout:.0f} "
                    "s (`wait-for-invalidation`); it finishes on its own.",
                    "Invalidation still in progress",
                )
            else:
                self.info(f"Invalidation `{result.invalidation_id}` completed")
