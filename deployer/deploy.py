"""Orchestration over two narrow protocols (`Store`, `CDN`): the order that keeps a site whole.

1. scan the source folder (content MD5s, headers), while at the same time
2. the bucket is listed under the prefix and each distribution's origin looked up
   (a wrong `distribution-id` fails before any write); then the deploy record is
   read, unless the listing shows it holds what this run expects (`known_record`);
3. HEAD (in parallel) only the objects the listing and record cannot vouch for;
4. plan (pure), removed fingerprinted assets kept for their grace period or pruned
   after it (`retention.py`), then refuse before any write if `max-delete` would be
   exceeded;
5. upload new and changed assets in parallel;
6. only if every asset landed: upload HTML and other entry files;
7. only if every upload landed: delete removed objects (and pruned ones), 1,000 per
   request;
8. invalidate, per distribution, the paths that changed (what landed, on failure);
9. optionally wait for the invalidations;
10. only after all of that: write the new deploy record (see `record.py`).

Dry-run is not an `if` spread through this code: `DryRunStore` and `DryRunCDN`
wrap the real ones, pass reads through and turn writes into no-ops.
`outcome` is filled as the deploy goes, so a failure still reports what happened.
"""

from __future__ import annotations

import bisect
import heapq
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, closing
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Protocol, TypeVar

from deployer import (
    ahead,
    cdnstep,
    concurrency,
    listing,
    local,
    parts,
    plan,
    record,
    retention,
    workers,
)
from deployer.cdnstep import CDN
from deployer.concurrency import Change, Window
from deployer.errors import DeployError, MaxDeleteExceeded, RemoteError, TransferError, some
from deployer.globs import matches_any
from deployer.model import (
    Action,
    Distribution,
    InvalidationResult,
    LocalFile,
    ObjectState,
    Outcome,
    Plan,
    RemoteObject,
    Upload,
)
from deployer.progress import Progress
from deployer.report import format_bytes, plural
from deployer.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from deployer.aws import AnySession
    from deployer.credentials import Keys
    from deployer.early import Early

_T = TypeVar("_T")
DELETE_BATCH = 1000
DELETE_PARALLEL = 8
EXTRA_THREADS = 5  # beside the window's workers: the listing, CloudFront look-ups, and
# `ahead.while_listing` while the first page is awaited


class Store(Protocol):
    """The bucket, as the deploy sees it. Implemented by `s3.S3Store`."""

    def list_objects(
        self, prefix: str, after: str = "", until: str | None = None
    ) -> list[RemoteObject]:
        """Objects under `prefix` with `after` < key <= `until` (no bound: "" / None)."""
        ...

    def first_page(self, prefix: str) -> tuple[list[RemoteObject], bool]:
        """The first page of objects under `prefix`, and whether it is all of them."""
        ...

    def prepare(self) -> None:
        """Open one connection ahead of need (TCP and TLS handshakes); never raises."""
        ...

    def link_time(self) -> float | None:
        """Seconds the first answered request took, its connection opened for it (about
        two round trips); None when not known."""
        ...

    def link_waited(self) -> float | None:
        """Seconds the first answer has been awaited so far (`link_time` will be at least
        that); None before the first request and once it is answered, or when not known."""
        ...

    def head(self, key: str) -> ObjectState | None:
        """None when the object no longer exists. Raises `ReadDenied`-like `DeployError`s."""
        ...

    def get_record(self, key: str) -> bytes | None: ...

    def put_record(self, key: str, body: record.Encoded) -> None: ...

    def put_file(self, file: LocalFile, lanes: parts.Lanes | None = None) -> str:
        """Upload bytes and headers; return the new ETag. A large file's parts run on
        `lanes` (the deploy's window and pool) beside the calling thread."""
        ...

    def copy_headers(self, file: LocalFile) -> str:
        """Replace the headers of an object whose bytes already match; return the new ETag."""
        ...

    def delete(self, keys: Sequence[str]) -> list[tuple[str, str]]:
        """Delete keys; return the (key, reason) pairs that could not be deleted."""
        ...


class Log(Protocol):
    """Progress and warnings. Implemented by `github.Runner`."""

    def info(self, msg: str, /) -> None: ...

    def warning(self, msg: str, /, title: str | None = None) -> None: ...

    def progress(self, msg: str, /) -> None: ...

    def debug(self, msg: str, /) -> None: ...

    def group(self, title: str, /) -> AbstractContextManager[None]: ...


class DryRunStore:
    """Reads pass through to the real store; writes do nothing."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    def list_objects(
        self, prefix: str, after: str = "", until: str | None = None
    ) -> list[RemoteObject]:
        return self.inner.list_objects(prefix, after, until)

    def first_page(self, prefix: str) -> tuple[list[RemoteObject], bool]:
        return self.inner.first_page(prefix)

    def prepare(self) -> None:
        self.inner.prepare()

    def link_time(self) -> float | None:
        return self.inner.link_time()

    def link_waited(self) -> float | None:
        return self.inner.link_waited()

    def head(self, key: str) -> ObjectState | None:
        return self.inner.head(key)

    def get_record(self, key: str) -> bytes | None:
        return self.inner.get_record(key)

    def put_record(self, key: str, body: record.Encoded) -> None:
        return None

    def put_file(self, file: LocalFile, lanes: parts.Lanes | None = None) -> str:
        return file.md5

    def copy_headers(self, file: LocalFile) -> str:
        return file.md5

    def delete(self, keys: Sequence[str]) -> list[tuple[str, str]]:
        return []


class DryRunCDN:
    """Reads pass through; no invalidation is created."""

    def __init__(self, inner: CDN) -> None:
        self.inner = inner

    def distribution(self, distribution_id: str, bucket: str) -> Distribution:
        return self.inner.distribution(distribution_id, bucket)

    def invalidate(
        self, distribution_id: str, paths: Sequence[str], caller_reference: str
    ) -> InvalidationResult:
        return InvalidationResult(distribution_id, "", tuple(paths), "dry-run")

    def wait(self, distribution_id: str, invalidation_id: str, timeout_s: float) -> str:
        return "dry-run"


class LazyCDN:
    """Makes the real CDN (its botocore client) on first use: a run without
    `distribution-id` never pays for it, and one with it pays in a worker thread, off
    the path to the first S3 request (a client costs ~40 ms of CPU to create)."""

    def __init__(self, make: Callable[[], CDN]) -> None:
        self._get = _once(make)

    def distribution(self, distribution_id: str, bucket: str) -> Distribution:
        return self._get().distribution(distribution_id, bucket)

    def invalidate(
        self, distribution_id: str, paths: Sequence[str], caller_reference: str
    ) -> InvalidationResult:
        return self._get().invalidate(distribution_id, paths, caller_reference)

    def wait(self, distribution_id: str, invalidation_id: str, timeout_s: float) -> str:
        return self._get().wait(distribution_id, invalidation_id, timeout_s)


def connect(
    settings: Settings,
    session: AnySession | Callable[[], AnySession],
    log: Log,
    *,
    keys: Keys | None = None,
    env: Mapping[str, str] | None = None,
    early: Early | None = None,
) -> tuple[Store, CDN]:
    """The real store and CDN for these settings (wrapped for a dry run).

    `early`: connections opened before the settings were validated (`early.py`), handed
    to the store's wire when they go where it does, closed otherwise.

    `session` may be a function that makes it. With `keys` known up front
    (`credentials.static_keys`) and a bucket address `endpoints.s3_target` resolves, the
    store lists and uploads through `s3wire` signed with those keys, and the botocore
    session and clients are made only if something needs them (a HEAD, a copy,
    CloudFront): a small no-change deploy never imports botocore's client machinery.
    """
    from deployer.endpoints import s3_target  # noqa: PLC0415
    from deployer.s3 import S3Store, make_wire  # noqa: PLC0415
    from deployer.s3wire import CredentialSource  # noqa: PLC0415

    get_session = _once(session if callable(session) else (lambda: session))

    def s3_client() -> S3Client:
        from deployer.aws import s3_client  # noqa: PLC0415

        return s3_client(get_session(), settings)

    def cloudfront() -> CDN:
        from deployer.aws import cloudfront_client  # noqa: PLC0415
        from deployer.cloudfront import CloudFrontCDN  # noqa: PLC0415

        return CloudFrontCDN(cloudfront_client(get_session(), settings))

    credentials: CredentialSource | None
    wire = None
    if keys is not None:
        credentials = keys
        target = s3_target(settings, os.environ if env is None else env)
        wire = make_wire(target, credentials) if target is not None else None
    else:
        credentials = get_session().get_credentials()
    if early is not None:
        early.hand_over(wire)
    store: Store = S3Store(
        s3_client,
        settings.bucket,
        credentials=credentials,
        wire=wire,
        warn=lambda text: log.warning(text, title="Wrong region"),
    )
    cdn: CDN = LazyCDN(cloudfront)
    if settings.dry_run:
        log.info("Dry run: nothing will be written, deleted or invalidated.")
        return DryRunStore(store), DryRunCDN(cdn)
    return store, cdn


def _once(make: Callable[[], _T]) -> Callable[[], _T]:
    """`make()` called on first use only (thread-safe), its result kept."""
    made: list[_T] = []
    lock = threading.Lock()

    def get() -> _T:
        with lock:
            if not made:
                made.append(make())
            return made[0]

    return get


def short_reason(err: BaseException) -> str:
    """A few words for the per-file failure list."""
    short = getattr(err, "short", None)
    if isinstance(short, str) and short:
        return short
    if isinstance(err, DeployError):
        return err.title
    return type(err).__name__


def _run_parallel(
    pool: ThreadPoolExecutor,
    items: Sequence[Upload],
    work: Callable[[Upload], None],
    on_error: Callable[[Upload, BaseException], None],
    progress: Progress,
    *,
    window: Window,
) -> None:
    """Run `work` on every item; errors go to `on_error`; progress lines while waiting."""
    with closing(workers.in_parallel(pool, work, items, progress.tick, window)) as results:
        for item, err, _ in results:
            if err is not None:
                on_error(item, err)
            progress.step(item.file.size if item.action is Action.PUT else 0)


def run(
    settings: Settings,
    store: Store,
    cdn: CDN,
    log: Log,
    outcome: Outcome,
    *,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
) -> None:
    """Deploy `settings.source_dir` to the bucket. Raises `DeployError` on failure.

    `clock` times progress and waits; `wall_clock` (seconds since the epoch) dates the
    removal of retained assets."""
    concurrency.limit_malloc_arenas()
    _Deployment(settings, store, cdn, log, outcome, clock=clock, now=int(wall_clock())).run()


class _Deployment:
    """One run's state, so each step is a small method."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        cdn: CDN,
        log: Log,
        outcome: Outcome,
        *,
        clock: Callable[[], float],
        now: int,
    ) -> None:
        self.settings, self.store, self.cdn = settings, store, cdn
        self.log, self.outcome, self.clock, self.now = log, outcome, clock, now
        self.lock = threading.Lock()
        self.etags: dict[str, str] = {}  # key -> ETag of what this run wrote
        self.cloudfront = cdnstep.CloudFrontStep(
            settings, cdn, outcome, log.info, self.warn, clock=clock
        )
        self.window = Window(concurrency.controller_for(settings.concurrency), on_change=self.moved)
        self.opening: ahead.Ahead | None = None  # connections opened ahead, once the pool runs

    def run(self) -> None:
        settings, store, log, outcome = self.settings, self.store, self.log, self.outcome
        outcome.dry_run = settings.dry_run
        outcome.distribution_ids = settings.distribution_ids
        outcome.invalidation = settings.invalidation
        prefix = settings.destination_prefix

        with workers.deploy_pool(concurrency.most(settings.concurrency) + EXTRA_THREADS) as pool:
            # 1-2. Scan (hashing, local CPU and disk) while the bucket is listed
            # (network): neither waits for the other. The first page of the listing is
            # the first request; connections open (TCP, TLS) while the folder is walked,
            # as many as the uploads need (`ahead.py`); the rest of the listing, in ranges
            # cut at the local keys (`listing.py`), starts as soon as the walk has found
            # them.
            opening = ahead.Ahead(
                lambda: self.window.reach,
                partial(pool.submit, store.prepare),
                partial(_daemon, store.prepare),
            )
            self.opening = opening
            paged = threading.Event()  # the first page came (or failed)
            listed = listing.Listing(
                partial(store.list_objects, prefix),
                pool.submit(self.first_page, opening, prefix, paged),
                pool.submit,
            )
            for _ in range(ahead.FIRST):
                pool.submit(store.prepare)
            # While the first page is on its way, a far link opens the window's
            # connections (`ahead.while_listing`).
            pool.submit(ahead.while_listing, opening, store.link_waited, self.window.floor, paged)
            looked_up = pool.submit(self.cloudfront.look_up)

            def walked(keys: list[str]) -> None:
                if settings.record_key not in keys:
                    bisect.insort(keys, settings.record_key)
                listed.start(keys)
                opening.walked(keys)

            try:
                scan = local.scan(
                    settings.source_dir,
                    prefix,
                    settings.exclude,
                    settings.content_type,
                    settings.cache_control,
                    on_walked=walked,
                )
            except BaseException:
                looked_up.cancel()
                listed.cancel()
                paged.set()  # `while_listing` ends even if the first page never ran
                raise
            for text in scan.warnings:
                self.warn(text, "Skipped file")
            total_bytes = sum(f.size for f in scan.files)
            log.info(
                f"Found {plural(len(scan.files), 'file')} ({format_bytes(total_bytes)}) in "
                f"`{_display_source(settings)}`"
                + (f"; {scan.excluded} excluded" if scan.excluded else "")
            )
            # Drained from the list as it is indexed (with the scan's strings shared), so the
            # listing is not held twice at once.
            remote = plan.index_listing(_drain(listed.result()), scan.files)
            log.info(
                f"Listed {plural(len(remote), 'object')} under s3://{settings.bucket}/{prefix}"
            )
            record_entries, record_current = self.known_record(scan.files, remote)
            # A wrong `distribution-id` fails here, before any write.
            self.cloudfront.found(looked_up.result())

            # 3. HEAD only what the listing and the record cannot vouch for.
            to_head = plan.keys_to_head(scan.files, remote, record_entries)
            heads = self.head_all(pool, to_head)

            # 4. Plan, and refuse before any write.
            the_plan = plan.make_plan(
                scan.files,
                remote,
                record_entries,
                heads,
                prefix=prefix,
                delete_removed=settings.delete_removed,
                keep=lambda rel: matches_any(rel, settings.exclude),
                record_key=settings.record_key,
            )
            the_plan = retention.apply(
                the_plan,
                record_entries,
                prefix=prefix,
                keep_s=settings.keep_removed_assets,
                now=self.now,
                max_delete=settings.max_delete,
                retainable=lambda rel: retention.is_retainable(rel, settings.cache_control),
            )
            outcome.plan = the_plan
            _log_plan(the_plan, log)
            if len(the_plan.deletes) > settings.max_delete:
                raise MaxDeleteExceeded(len(the_plan.deletes), settings.max_delete)
            self.unvouch_header_copies(the_plan, record_entries)

            # 5-6. Assets, then entry files only when every asset landed.
            self.upload_phase(pool, "assets", the_plan.assets)
            if not outcome.failed:
                self.upload_phase(pool, "HTML and entry files", the_plan.entries)
            elif the_plan.entries:
                count = len(the_plan.entries)
                held = some(f"`{u.file.key}`" for u in the_plan.entries)
                self.warn(
                    f"{plural(count, 'HTML or entry file was', 'HTML and entry files were')}"
                    f" not uploaded ({held}) "
                    "because some assets failed: the live pages keep referring to "
                    "assets that exist.",
                    "Entry files held back",
                )
            log.debug(
                f"Requests in flight: at most {self.window.peak} at once, limit now "
                f"{self.window.limit} (`concurrency: {settings.concurrency or 'auto'}`)"
            )

        # 7. Deletes, only when every upload landed.
        delete_error: DeployError | None = None
        if not outcome.failed:
            delete_error = self.delete_phase(the_plan.deletes)
        elif the_plan.deletes:
            self.warn(
                f"{plural(len(the_plan.deletes), 'deletion was', 'deletions were')} skipped "
                "because some uploads failed.",
                "Deletions skipped",
            )

        # 8-9. Invalidate what landed; optionally wait.
        complete = not outcome.failed and delete_error is None
        keys = the_plan.invalidate_keys if complete else _landed_keys(the_plan, outcome)
        changed = bool(outcome.uploaded or outcome.deleted or keys)
        invalidation_error = self.cloudfront.invalidate(keys, changed=changed)

        if outcome.failed:
            raise TransferError(outcome.failed)
        if delete_error is not None:
            raise delete_error
        if invalidation_error is not None:
            raise invalidation_error

        # 10. The record, last, only after a complete deploy.
        if settings.dry_run:
            return

        # Compared and encoded straight from the files: no dict of the new record, whose
        # ~90 bytes per file would add to the encoded body at the run's memory peak.
        def new_record() -> Iterator[tuple[str, ObjectState]]:
            kept = retention.record_entries(the_plan.retained, record_entries, remote)
            live = _new_record(scan.files, remote, self.etags)
            return heapq.merge(live, kept, key=lambda item: item[0])

        if record_current and _same_entries(new_record(), record_entries):
            return
        try:
            store.put_record(settings.record_key, record.prepared(new_record))
        except DeployError as err:
            self.warn(
                f"The deploy succeeded but its record `{settings.record_key}` could not be "
                f"written ({short_reason(err)}). The next deploy checks objects with HEAD "
                "requests instead and may invalidate more than needed. Allow `s3:PutObject` "
                "on the record's key.",
                "Deploy record not written",
            )

    # -- steps ---------------------------------------------------------------------------

    def unvouch_header_copies(self, the_plan: Plan, entries: Mapping[str, ObjectState]) -> None:
        """Before the first header-only copy, stop the record vouching for those headers.

        A server-side copy that replaces only the metadata keeps the object's ETag, so
        if this run were killed mid-copy the old record would still vouch (same ETag)
        for headers the object no longer has. Rewriting those entries with unknown
        headers first makes the next run HEAD them, and invalidate them.
        """
        keys = [
            u.file.key
            for u in the_plan.uploads
            if u.action is Action.COPY and u.file.key in entries
        ]
        if not keys or self.settings.dry_run:
            return
        pending = dict(entries)
        for key in keys:
            pending[key] = replace(entries[key], headers=None)
        try:
            self.store.put_record(self.settings.record_key, record.prepared_from(pending))
        except DeployError as err:
            self.warn(
                f"The deploy record could not be updated before changing headers "
                f"({short_reason(err)}); if this run is interrupted, re-run with "
                "`invalidation: all` to be sure every header change is served.",
                "Deploy record not written",
            )

    def first_page(
        self, opening: ahead.Ahead, prefix: str, paged: threading.Event
    ) -> listing.FirstPage:
        """The listing's first page. Its time on the wire tells how far the bucket is: on a
        slow link the window starts wider (`concurrency.py`). What it holds tells how many
        uploads are certain, and so how many connections to open ahead (`ahead.py`).
        `paged` is set when it has come, or failed."""
        try:
            page = self.store.first_page(prefix)
        finally:
            paged.set()
        took = self.store.link_time()
        if took is not None:
            self.log.debug(f"First answer from S3 after {took * 1000:.0f} ms on the wire")
            self.window.seed(took)
        opening.listed(page)
        return page

    def moved(self, change: Change) -> None:
        """The window's limit changed: say so at debug level (`RUNNER_DEBUG=1`, `--debug`),
        and open the connections its new reach needs (`ahead.py`)."""
        rate = f", ~{change.rate:.0f} requests/s" if change.rate else ""
        self.log.debug(f"Requests in flight: {change.old} -> {change.new} ({change.reason}{rate})")
        if self.opening is not None:
            self.opening.moved()

    def warn(self, text: str, title: str) -> None:
        with self.lock:
            self.outcome.warnings.append(text)
        self.log.warning(text, title=title)

    def known_record(
        self, files: Sequence[LocalFile], listing: Mapping[str, RemoteObject]
    ) -> tuple[dict[str, ObjectState], bool]:
        """The last completed deploy's record, and whether it is known cleanly.

        Read only when the listing shows it: a first deploy saves a GET (listing is
        strongly consistent, so an unlisted record would be a 404 anyway). And not
        read when its bytes are already known: the record that a completed deploy
        of these files would have written, if the bucket is as it left it, is
        encoded and its MD5 compared with the record's listed ETag (a single PUT's
        ETag is the MD5 of its body). Equal means the same bytes, so the same
        entries; anything else (another deploy since, a run killed part-way, an
        ETag that is not an MD5) means a GET as before.
        """
        listed = listing.get(self.settings.record_key)
        if listed is None:
            return {}, False
        if plan.is_plain_md5(listed.etag):
            expected = _completed_record(files, listing)
            if record.md5(expected) == listed.etag:
                return expected, True
        return self.read_record()

    def read_record(self) -> tuple[dict[str, ObjectState], bool]:
        """The last completed deploy's record, and whether it was read cleanly."""
        key = self.settings.record_key
        try:
            body = self.store.get_record(key)
        except RemoteError as err:
            if not _denied(err):
                raise
            self.warn(
                f"Could not read the deploy record `{key}` (access denied). Objects "
                "whose ETag is not a plain MD5 are checked with HEAD requests instead. "
                "Allow `s3:GetObject` on the bucket's objects.",
                "Deploy record unreadable",
            )
            return {}, False
        if body is None:
            return {}, False
        entries, problem = record.decode(body)
        if problem:
            self.warn(problem, "Deploy record ignored")
            return entries, False
        return entries, record.is_current(body)  # an older version is rewritten

    def head_all(self, pool: ThreadPoolExecutor, keys: Sequence[str]) -> dict[str, ObjectState]:
        if not keys:
            return {}
        self.log.info(
            f"Checking {plural(len(keys), 'object')} whose ETag does not prove the content (HEAD)"
        )
        heads: dict[str, ObjectState] = {}
        denied = 0
        progress = Progress(
            self.log, "Checked", len(keys), self.clock, limit=lambda: self.window.limit
        )
        with closing(
            workers.in_parallel(pool, self.store.head, keys, progress.tick, self.window)
        ) as results:
            for key, err, state in results:
                if err is None:
                    if state is not None:
                        heads[key] = state
                elif isinstance(err, RemoteError) and _denied(err):
                    denied += 1
                else:
                    raise err
                progress.step()
        if denied:
            self.warn(
                f"HEAD was denied for {plural(denied, 'object')}, so their content cannot be "
                "verified and they are uploaded again. Allow `s3:GetObject` on the "
                "bucket's objects to avoid that.",
                "HEAD denied",
            )
        return heads

    def upload_phase(self, pool: ThreadPoolExecutor, what: str, uploads: Sequence[Upload]) -> None:
        if not uploads:
            return
        outcome = self.outcome
        # A large file's parts take slots of the same window, on helpers from the same pool.
        lanes = parts.Lanes(self.window, pool.submit, parts.HELPERS)

        def work(upload: Upload) -> None:
            if upload.action is Action.COPY:
                etag = self.store.copy_headers(upload.file)
            else:
                etag = self.store.put_file(upload.file, lanes)
            with self.lock:
                outcome.uploaded.append(upload)
                if upload.action is Action.PUT:
                    outcome.uploaded_bytes += upload.file.size
                # Usually the ETag is the MD5: hold that string once.
                self.etags[upload.file.key] = upload.file.md5 if etag == upload.file.md5 else etag

        def on_error(upload: Upload, err: BaseException) -> None:
            if not isinstance(err, Exception):
                raise err
            reason = short_reason(err)
            with self.lock:
                outcome.failed.append((upload.file.key, reason))
            self.log.warning(
                f"Could not upload `{upload.file.key}`: {reason}", title="Upload failed"
            )

        label = f"{'Would upload' if self.settings.dry_run else 'Uploading'} {what}"
        self.log.info(f"{label}: {plural(len(uploads), 'file')}")
        progress = Progress(
            self.log, label, len(uploads), self.clock, limit=lambda: self.window.limit
        )
        _run_parallel(pool, uploads, work, on_error, progress, window=self.window)

    def delete_phase(self, deletes: Sequence[str]) -> DeployError | None:
        if not deletes:
            return None
        verb = "Would delete" if self.settings.dry_run else "Deleting"
        self.log.info(f"{verb} {plural(len(deletes), 'object')}")
        failures: list[tuple[str, str]] = []
        progress = Progress(self.log, verb, len(deletes), self.clock)
        batches = [deletes[i : i + DELETE_BATCH] for i in range(0, len(deletes), DELETE_BATCH)]
        # Batches at once, not one round trip after another (8 at most: 8,000 keys a round).
        error: DeployError | None = None
        with ThreadPoolExecutor(min(len(batches), DELETE_PARALLEL), "delete") as pool:
            answers = [(batch, pool.submit(self.store.delete, batch)) for batch in batches]
            for batch, answer in answers:
                try:
                    failed = answer.result()
                except DeployError as err:
                    error = error or err
                    continue
                failed_keys = {key for key, _ in failed}
                self.outcome.deleted.extend(key for key in batch if key not in failed_keys)
                failures.extend(failed)
                progress.step(count=len(batch))
        if error is not None:
            return error
        if not failures:
            return None
        shown = some(f"`{key}` ({why})" for key, why in failures)
        return RemoteError(
            f"{plural(len(failures), 'object')} could not be deleted: {shown}. Every upload "
            "landed and the other deletions were done. Check the IAM policy allows "
            "`s3:DeleteObject` on these keys and re-run the workflow.",
            title="Some deletions failed",
        )


def _display_source(settings: Settings) -> str:
    try:
        return settings.source_dir.relative_to(settings.workspace).as_posix() or "."
    except ValueError:
        return str(settings.source_dir)


def _denied(err: DeployError) -> bool:
    return getattr(err, "code", "") in ("AccessDenied", "403") or err.title == "Access denied"


def _log_plan(the_plan: Plan, log: Log) -> None:
    puts = [u for u in the_plan.uploads if u.action is Action.PUT]
    copies = [u for u in the_plan.uploads if u.action is Action.COPY]
    kept = f", keep {len(the_plan.retained)} removed assets" if the_plan.retained else ""
    pruned = f" ({len(the_plan.pruned)} pruned)" if the_plan.pruned else ""
    log.info(
        f"Plan: upload {plural(len(puts), 'file')} "
        f"({format_bytes(sum(u.file.size for u in puts))}), "
        f"update headers of {len(copies)}, delete {len(the_plan.deletes)}{pruned}, "
        f"unchanged {len(the_plan.unchanged)}{kept}"
    )
    # The per-file lists are printed once, by the CLI's report at the end (folded in
    # `::group::` in Actions), so they show what happened rather than what was planned.


def _landed_keys(the_plan: Plan, outcome: Outcome) -> tuple[str, ...]:
    """After a failure: the keys to invalidate, minus writes and deletes that did not happen."""
    landed = {u.file.key for u in outcome.uploaded} | set(outcome.deleted)
    planned = {u.file.key for u in the_plan.uploads} | set(the_plan.deletes)
    return tuple(k for k in the_plan.invalidate_keys if k in landed or k not in planned)


def _drain(items: list[_T]) -> Iterator[_T]:
    """Yield the items in order, removing each from the list (so it can be freed)."""
    items.reverse()
    while items:
        yield items.pop()


def _daemon(target: Callable[[], None]) -> None:
    """Run `target` on a thread of its own that neither the deploy nor the program's exit
    waits for: a connection opened while the first page was awaited, for a deploy that
    may need none, must not hold the end of the deploy (its handshakes take round trips)."""
    threading.Thread(target=target, name="deploy-ahead", daemon=True).start()


def _completed_record(
    files: Sequence[LocalFile], listing: Mapping[str, RemoteObject]
) -> dict[str, ObjectState]:
    """The record a completed deploy of `files` wrote, if the bucket is as it left it.

    `_new_record` with nothing uploaded, except that the MD5 is the listed ETag when
    that is a plain MD5: the deploy that PUT those bytes recorded their MD5, which
    was their ETag, so files edited since (a 1% change) still give its record. A
    guess, and only ever used when the encoded guess has the record's own MD5.
    """
    entries: dict[str, ObjectState] = {}
    for file in files:
        remote = listing.get(file.key)
        if remote is not None and remote.etag:
            etag = remote.etag
            md5 = etag if plan.is_plain_md5(etag) else file.md5
            entries[file.key] = ObjectState(etag=etag, md5=md5, headers=file.headers)
    return entries


def _new_record(
    files: Sequence[LocalFile], listing: Mapping[str, RemoteObject], etags: Mapping[str, str]
) -> Iterator[tuple[str, ObjectState]]:
    """Every published key with the ETag it has now, its MD5 and its headers, in the
    files' (key) order."""
    for file in files:
        remote = listing.get(file.key)
        etag = etags.get(file.key) or (remote.etag if remote is not None else None)
        if etag:
            yield file.key, ObjectState(etag=etag, md5=file.md5, headers=file.headers)


def _same_entries(
    items: Iterable[tuple[str, ObjectState]], entries: Mapping[str, ObjectState]
) -> bool:
    """Do the (key, state) pairs, all distinct keys, make exactly `entries`?"""
    count = 0
    for key, state in items:
        if entries.get(key) != state:
            return False
        count += 1
    return count == len(entries)
