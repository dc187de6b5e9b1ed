"""The local warehouse: runs the Redshift SQL strings on the embedded PostgreSQL server.

CREATE TABLE goes through the renderer; COPY ... FORMAT AS JSON is emulated client-side
(list the prefix, read files in parallel, convert with Redshift's rules, stream into
PostgreSQL's native COPY). TRUNCATE commits the open transaction, as on Redshift.
Everything else runs unchanged.
"""

from __future__ import annotations

import logging
from concurrent.futures.process import BrokenProcessPool

import psycopg2
from psycopg2 import sql as pgsql

from dwh.db import PsycopgWarehouse
from dwh.errors import LoadFailed, NoSourceFiles, WarehouseError
from dwh.local import native, server
from dwh.local.columnar import Plan
from dwh.local.converters import Column, Options
from dwh.local.copy_statement import CopyStatement, CopySyntaxError, is_copy, parse_copy
from dwh.local.jsonpaths import parse_jsonpaths
from dwh.local.pipeline import (
    ChunkReader,
    content_size,
    conversion_workers,
    convert_in_order,
    unread,
)
from dwh.local.redshift_compat import commits_at_once, refuse_what_redshift_rejects, render_for_postgres
from dwh.progress import CopyProgress, ProgressFactory
from dwh.s3.sources import LocalFiles, SourceError, manifest_objects, open_store, read_in_order, read_one

log = logging.getLogger("dwh.local")

_COLUMNS = """
SELECT column_name, data_type, character_maximum_length, is_nullable = 'NO',
       is_identity = 'YES' OR column_default LIKE 'nextval(%%'
FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = %s
ORDER BY ordinal_position
"""
_READ_SIZE = 1 << 20


def max_bad_rows(max_error: int) -> int:
    """How many bad rows COPY ... MAXERROR n skips: n - 1, and none for 0 or 1.

    Redshift's COPY parameters page: "If the load returns the error_count number of errors or
    greater, the load fails" and "Set this value to 0 or 1 if you want the load to fail as soon
    as the first error occurs".
    """
    return max(max_error - 1, 0)


class LocalWarehouse(PsycopgWarehouse):
    """A psycopg2 connection to the embedded server that speaks the project's Redshift SQL."""

    def __init__(self, settings):
        assert settings.local is not None, "a LocalWarehouse is opened only for TARGET = local"
        local = settings.local
        super().__init__(server.connect(local), f"local PostgreSQL at {local.host}:{local.port}/{local.dbname}")
        self.endpoint_url = settings.sources.s3_endpoint_url
        self.anonymous = settings.sources.s3_anonymous
        self.s3_read_timeout = settings.sources.s3_read_timeout
        #: [LOCAL] COPY_WORKERS and COPY_CONVERTER (tests set them on a warehouse).
        self.copy_workers = settings.local.copy_workers
        self.copy_converter = settings.local.copy_converter
        #: Told of each COPY's files, bytes and rows as they are read (etl.py shows it as progress).
        self.copy_progress: ProgressFactory = CopyProgress
        self.server_log = server.ServerLog(settings.local)

    def execute(self, statement: str) -> int:
        """Run one statement; return the rows it loaded or changed (-1 when not applicable).

        A connection the server dropped because its disk filled (PostgreSQL stops when it cannot
        write its log of changes) is reported as a full disk, which the server's log says it was."""
        try:
            return self._execute(statement)
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            if self.server_log.says_disk_full():
                folder, path = self.server_log.folder, self.server_log.path
                raise WarehouseError(
                    f"the disk that holds the local warehouse ({folder}) is full ({path} says: No space left on "
                    "device); the run was rolled back and the previous data is intact: free space on that disk and "
                    "run it again"
                ) from exc
            raise

    def _execute(self, statement: str) -> int:
        refuse_what_redshift_rejects(statement)
        if is_copy(statement):
            try:
                stmt = parse_copy(statement)
            except CopySyntaxError as exc:
                raise LoadFailed(str(exc)) from None
            return self.copy(stmt)
        rows = super().execute(render_for_postgres(statement))
        if commits_at_once(statement):
            self._conn.commit()
        return rows

    def _columns(self, stmt: CopyStatement) -> list[Column]:
        with self.cursor() as cur:
            cur.execute(_COLUMNS, (stmt.table,))
            rows = cur.fetchall()
        if not rows:
            raise LoadFailed(f"COPY {stmt.table}: table {stmt.table} does not exist")
        columns = {name: Column(name, data_type, length, not_null) for name, data_type, length, not_null, _ in rows}
        if stmt.columns is None:
            return [columns[name] for name, _, _, _, identity in rows if not identity]
        unknown = [name for name in stmt.columns if name not in columns]
        if unknown:
            raise LoadFailed(f"COPY {stmt.table}: column {unknown[0]} does not exist")
        return [columns[name] for name in stmt.columns]

    def _store(self, location: str, region: str | None):
        """Where a COPY reads location from: the local disk, or S3 as dwh.cfg says to reach it."""
        return open_store(location, region, self.endpoint_url, self.anonymous, self.s3_read_timeout)

    def _plan(self, stmt: CopyStatement, columns: list[Column]) -> Plan:
        options = Options(
            empty_as_null=stmt.empty_as_null,
            blanks_as_null=stmt.blanks_as_null,
            truncate_columns=stmt.truncate_columns,
            accept_inv_chars=stmt.accept_inv_chars,
            time_format=stmt.time_format,
        )
        if stmt.json_auto:
            return Plan(columns, options, "ignorecase" if stmt.ignore_case else "auto")
        paths = parse_jsonpaths(read_one(self._store(stmt.json, stmt.region), stmt.json), stmt.json)
        if len(paths) != len(columns):
            raise LoadFailed(
                f"COPY {stmt.table}: the JSONPaths file {stmt.json} has {len(paths)} paths "
                f"but the load has {len(columns)} columns; they map by position, so the counts must match"
            )
        return Plan(columns, options, "paths", paths)

    def copy(self, stmt: CopyStatement) -> int:
        """Emulate Redshift's COPY ... FORMAT AS JSON; all or nothing unless MAXERROR allows."""
        try:
            columns = self._columns(stmt)
            plan = self._plan(stmt, columns)
            store = self._store(stmt.source, stmt.region)
            if stmt.manifest:
                objects = manifest_objects(store, read_one(store, stmt.source), stmt.source)
            else:
                objects = store.list(stmt.source)
            if not objects:
                raise NoSourceFiles(
                    f"COPY {stmt.table}: FROM '{stmt.source}' matches no file (the prefix does not exist)"
                )
        except (SourceError, ValueError) as exc:
            raise LoadFailed(f"COPY {stmt.table}: {exc}") from None

        errors, rows = [], 0
        total_bytes = sum(obj.size for obj in objects)
        workers = conversion_workers(total_bytes, self.copy_workers)
        plan.native = native.fast_path(plan, total_bytes, self.copy_converter)
        progress = self.copy_progress(stmt.table, len(objects), total_bytes)

        def counted(files):
            for obj, data in files:
                progress.file_read(content_size(obj, data))
                yield obj, data

        # Each worker reads its own batch of local files: no copy of their bytes through a pipe.
        files = unread(objects) if workers and isinstance(store, LocalFiles) else read_in_order(store, objects)

        def chunks():
            nonlocal rows
            for result in convert_in_order(counted(files), plan, workers):
                errors.extend(result.errors)
                if len(errors) > max_bad_rows(stmt.max_error):
                    raise LoadFailed(_failure_message(stmt, errors), errors)
                rows += result.rows
                progress.rows_converted(rows)
                if result.data:
                    yield result.data

        copy_in = pgsql.SQL("COPY {} ({}) FROM STDIN").format(
            pgsql.Identifier(stmt.table), pgsql.SQL(", ").join(pgsql.Identifier(c.name) for c in columns)
        )
        reader = ChunkReader(chunks())
        with progress, self.cursor() as cur:
            try:
                cur.copy_expert(copy_in.as_string(self._conn), reader, size=_READ_SIZE)
            except psycopg2.Error:
                if isinstance(reader.failure, LoadFailed):
                    raise reader.failure from None
                if isinstance(reader.failure, SourceError):
                    raise LoadFailed(f"COPY {stmt.table}: {reader.failure}") from None
                if isinstance(reader.failure, BrokenProcessPool):
                    raise LoadFailed(
                        f"COPY {stmt.table}: a JSON conversion worker process died ({reader.failure}); "
                        "set [LOCAL] COPY_WORKERS = 0 in dwh.cfg to convert in the loading process"
                    ) from None
                if reader.failure is not None:
                    raise reader.failure from None
                raise
            # PostgreSQL's planner needs statistics that Redshift keeps for itself. A staging table is
            # read once, by the transform: a 3,000-row sample (statistics target 10, not 100) is
            # enough for its plans, at a tenth of the cost. SET LOCAL ends with the transaction.
            cur.execute("SHOW default_statistics_target")
            (statistics_target,) = cur.fetchone()
            cur.execute("SET LOCAL default_statistics_target = 10")
            cur.execute(pgsql.SQL("ANALYZE {}").format(pgsql.Identifier(stmt.table)))
            cur.execute("SELECT set_config('default_statistics_target', %s, true)", (statistics_target,))
        self.last_load_errors = errors
        for error in errors:
            log.warning("COPY %s skipped a row (MAXERROR %d): %s", stmt.table, stmt.max_error, error)
        return rows


def _failure_message(stmt: CopyStatement, errors) -> str:
    shown = "\n".join(f"  {error}" for error in errors[:10])
    more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
    return (
        f"COPY {stmt.table} failed: {len(errors)} bad row(s), MAXERROR is {stmt.max_error} "
        f"(at most {max_bad_rows(stmt.max_error)} skipped); nothing was loaded:\n{shown}{more}"
    )
