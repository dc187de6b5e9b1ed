"""List and read COPY sources: s3:// prefixes and local folders.

The local warehouse's COPY emulation reads through this module, and so do the Redshift-side
tools (dwh.s3.compact, dwh.s3.manifest), which is why it lives in the core.

COPY's FROM is a key prefix: every object whose key starts with it is loaded, so
's3://b/song_data' also matches 's3://b/song_data_extra/x.json', as on Redshift.
Reads run in a bounded thread pool, in order, so many small files load in parallel
while memory stays flat.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from dwh.config import S3_READ_TIMEOUT


class SourceError(Exception):
    """A source that cannot be listed or read; the message names it."""


@dataclass(frozen=True)
class SourceObject:
    name: str
    size: int


def _local_object(path: str) -> SourceObject:
    """A file under a prefix, with its size; a link whose target is gone is an error that says so."""
    try:
        return SourceObject(path, os.path.getsize(path))
    except OSError as exc:
        if os.path.islink(path):
            raise SourceError(
                f"{path} is a link to {os.readlink(path)}, which does not exist: remove the link or restore its target"
            ) from None
        raise SourceError(f"cannot read {path}: {exc.strerror}") from None


class LocalFiles:
    """Files on disk, addressed by path prefix."""

    workers = 4
    group = 64

    def _walk(self, folder: str) -> list[SourceObject]:
        found = []
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            for name in sorted(files):
                found.append(_local_object(os.path.join(root, name)))
        return found

    def list(self, prefix: str) -> list[SourceObject]:
        parent, stem = os.path.split(prefix)
        parent = parent or "."
        try:
            entries = sorted(os.scandir(parent), key=lambda e: e.name)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise SourceError(f"cannot list {parent}: {exc.strerror}") from None
        found: list[SourceObject] = []
        for entry in entries:
            if not entry.name.startswith(stem):
                continue
            if entry.is_dir():
                found.extend(self._walk(entry.path))
            elif entry.is_file() or entry.is_symlink():
                found.append(_local_object(entry.path))
        return found

    def exists(self, name: str) -> SourceObject | None:
        return SourceObject(name, os.path.getsize(name)) if os.path.isfile(name) else None

    def read(self, obj: SourceObject, offset: int = 0, length: int = -1) -> bytes:
        """The file's bytes; or `length` of them from `offset` (-1: to the end), for part of a file."""
        try:
            with open(obj.name, "rb") as handle:
                handle.seek(offset)
                return handle.read(length)
        except OSError as exc:
            raise SourceError(f"cannot read {obj.name}: {exc.strerror}") from None


#: How to read a public bucket without an AWS account, for error messages.
ANONYMOUS_HINT = "set [LOCAL] S3_ANONYMOUS = true (or --anonymous for dwh.s3.compact and dwh.s3.manifest)"
ANONYMOUS_HELP = "read a public bucket with unsigned requests, without AWS credentials"
_DENIED = ("AccessDenied", "403", "Forbidden", "AllAccessDisabled")


class S3Objects:
    """Objects in S3 (or an S3-compatible endpoint), through boto3's default credentials.

    ``anonymous`` sends unsigned requests from this client only (botocore.UNSIGNED, the
    AWS CLI's --no-sign-request): a public bucket such as s3://udacity-dend reads without any
    AWS account, and no credentials are looked up at all.
    """

    workers = 32
    #: Tries of a request S3 leaves unanswered (or answers with a passing error) before the read fails.
    attempts = 3

    def __init__(
        self,
        region: str | None = None,
        endpoint_url: str | None = None,
        anonymous: bool = False,
        read_timeout: float = S3_READ_TIMEOUT,
    ):
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config

        self.anonymous = anonymous
        self.read_timeout = read_timeout
        config = Config(
            max_pool_connections=self.workers,
            retries={"mode": "standard", "max_attempts": self.attempts},
            connect_timeout=read_timeout,
            read_timeout=read_timeout,
        )
        if anonymous:
            config = config.merge(Config(signature_version=UNSIGNED))
        self.client = boto3.client("s3", region_name=region, endpoint_url=endpoint_url, config=config)

    @staticmethod
    def split(uri: str) -> tuple[str, str]:
        bucket, _, key = uri[len("s3://") :].partition("/")
        return bucket, key

    def _error(self, uri: str, exc: Exception) -> SourceError:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectTimeoutError,
            NoCredentialsError,
            ReadTimeoutError,
        )
        from urllib3.exceptions import ReadTimeoutError as BodyTimeout

        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "error")
            if self.anonymous and code in _DENIED:
                return SourceError(
                    f"cannot read {uri}: access denied to an unsigned request ({code}): the bucket is not public; "
                    "read it signed, with AWS credentials (S3_ANONYMOUS = false, or without --anonymous)"
                )
            return SourceError(f"cannot read {uri}: {code}")
        if isinstance(exc, NoCredentialsError):
            return SourceError(
                f"cannot read {uri}: no AWS credentials found: configure them (aws configure, aws sso login, "
                f"AWS_PROFILE), or for a public bucket {ANONYMOUS_HINT}"
            )
        if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError)):
            return SourceError(
                f"cannot read {uri}: S3 did not answer within {self.read_timeout:g} s, also when asked again "
                f"({exc.__class__.__name__}); [LOCAL] S3_READ_TIMEOUT sets how long to wait"
            )
        if isinstance(exc, BodyTimeout):  # the body stalled after the headers came
            return SourceError(
                f"cannot read {uri}: S3 stopped sending it for {self.read_timeout:g} s; "
                "[LOCAL] S3_READ_TIMEOUT sets how long to wait"
            )
        if isinstance(exc, BotoCoreError):
            return SourceError(f"cannot read {uri}: {exc.__class__.__name__}")
        raise exc

    def list(self, prefix: str) -> list[SourceObject]:
        bucket, key = self.split(prefix)
        found = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
                for item in page.get("Contents", []):
                    if not item["Key"].endswith("/"):
                        found.append(SourceObject(f"s3://{bucket}/{item['Key']}", item["Size"]))
        except Exception as exc:
            raise self._error(prefix, exc) from None
        return found

    def exists(self, name: str) -> SourceObject | None:
        bucket, key = self.split(name)
        try:
            head = self.client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            from botocore.exceptions import ClientError

            if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return None
            raise self._error(name, exc) from None
        return SourceObject(name, head["ContentLength"])

    def read(self, obj: SourceObject) -> bytes:
        bucket, key = self.split(obj.name)
        try:
            return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:
            raise self._error(obj.name, exc) from None


def open_store(
    location: str,
    region: str | None = None,
    endpoint_url: str | None = None,
    anonymous: bool = False,
    read_timeout: float = S3_READ_TIMEOUT,
):
    """The store for a location: S3Objects for s3:// (unsigned when ``anonymous``), else LocalFiles."""
    if location.startswith("s3://"):
        return S3Objects(region, endpoint_url, anonymous, read_timeout)
    return LocalFiles()


def read_one(store, location: str) -> bytes:
    """Read a single named object or file (a JSONPaths file, a manifest) from its store (open_store)."""
    obj = store.exists(location)
    if obj is None:
        raise SourceError(f"{location} does not exist")
    return store.read(obj)


def manifest_objects(store, manifest: bytes, location: str) -> list[SourceObject]:
    """The files a COPY manifest names; a missing mandatory file is an error."""
    try:
        entries = json.loads(manifest)["entries"]
        urls = [(entry["url"], bool(entry.get("mandatory", False))) for entry in entries]
    except (ValueError, KeyError, TypeError):
        raise SourceError(f'{location} is not a manifest: expected {{"entries": [{{"url": ...}}]}}') from None
    found = []
    for url, mandatory in urls:
        obj = store.exists(url)
        if obj is None:
            if mandatory:
                raise SourceError(f"{location}: mandatory file {url} does not exist")
            continue
        found.append(obj)
    return found


def _read_group(store, group: list[SourceObject]) -> list[bytes]:
    return [store.read(obj) for obj in group]


def read_in_order(
    store, objects: Iterable[SourceObject], window_bytes: int = 16 << 20
) -> Iterator[tuple[SourceObject, bytes]]:
    """Yield (object, content) in order, reading ahead in threads.

    Small local files are read a group per task (a thread task per file costs more than
    reading it); read-ahead stops at window_bytes of pending content, so memory follows
    that window, not the number or size of the files.
    """
    group_size = getattr(store, "group", 1)
    with ThreadPoolExecutor(max_workers=store.workers) as pool:
        pending: deque = deque()
        pending_bytes = 0
        group: list[SourceObject] = []

        def submit(group):
            nonlocal pending_bytes
            pending.append((group, pool.submit(_read_group, store, group)))
            pending_bytes += sum(obj.size for obj in group)

        def take():
            nonlocal pending_bytes
            done, future = pending.popleft()
            pending_bytes -= sum(obj.size for obj in done)
            return zip(done, future.result(), strict=True)

        for obj in objects:
            group.append(obj)
            if len(group) >= group_size or obj.size >= (1 << 20):
                submit(group)
                group = []
            while pending and (pending_bytes > window_bytes or len(pending) > store.workers * 2):
                yield from take()
        if group:
            submit(group)
        while pending:
            yield from take()
