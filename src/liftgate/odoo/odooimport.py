"""``liftgate odoo import FILE --env ENV``: an Odoo backup zip (or ``pg_dump -Fc`` file) in.

The file is untrusted. Order, and why:

1. Plan, changing nothing: every zip member is checked from the central directory before
   any byte is extracted — refused, naming the member: an absolute path, a ``..``
   component, a symlink, device, FIFO or socket, an encrypted member, a name other than
   ``dump.sql``, ``manifest.json``, ``filestore/<xx>/<sha1>`` (``xx`` = the sha1's first two
   digits; folder entries and Odoo's empty ``filestore/checklist/<xx>/<sha1>`` GC markers are
   accepted and skipped), a name given twice; then the total uncompressed size against the
   free space. The env's role must not be a superuser nor hold ``pg_execute_server_program``
   / ``pg_read_server_files`` / ``pg_write_server_files``. ``dump.sql`` (or pg_restore's SQL
   of a custom-format file) is streamed to a private file in the state dir while
   :mod:`liftgate.odoo.sqlscan` reads every statement; a refusal removes it and names the
   statement. Nothing has run and no run is recorded.
2. The run (``odoo.import``, target ``odoo-import:ENV``) creates a NEW temporary database as
   the env's own role and loads the file with ``psql -X -q -w -v ON_ERROR_STOP=1
   --single-transaction`` in restricted mode (``-c '\\restrict KEY'``, where the psql knows
   it: no backslash command can run), then streams the filestore members into a temporary
   filestore, each one's sha1 computed on the way.
3. The artifact is made by the backup's own code (``liftgate.odoo.backup._execute``) on an
   env that is ENV with the temporary database and filestore, recording ENV as its source.
   A filestore file whose bytes do not match its sha1 name is reported, not refused (the
   database is what matters, and one damaged attachment should not make it unimportable):
   its bytes are never stored, the backup code lists the file as missing — unless the blob
   store already holds the right bytes under that name, which the artifact then uses — and
   ``--strict`` refuses instead, as for a backup.
4. The temporary database and files are removed, on failure too; if the server cannot be
   reached to drop the database, the run stays open and ``liftgate recover`` finishes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql

from liftgate.artifacts.blobs import make_private_dirs
from liftgate.artifacts.contract import SourceEnv
from liftgate.artifacts.repository import ArtifactRepository
from liftgate.engine.fsops import CHUNK, fsync_dir
from liftgate.engine.project import Project
from liftgate.engine.recovery import Outcome, lock_name, recover
from liftgate.engine.runs import Run, new_run_id
from liftgate.errors import GuardrailError, LiftgateError, OperationError, UsageError
from liftgate.odoo.env import OdooEnv, resolve_env
from liftgate.odoo.odoozip import pg_restore_sql_argv
from liftgate.odoo.pgtools import (
    PgTools,
    database_exists,
    first_error,
    server_info,
    stream_stdout,
    terminate_sessions,
)
from liftgate.odoo.sqlscan import DumpScan, SqlScanner, scan_stream
from liftgate.store.base import RunRecord

__all__ = ["ImportNames", "ImportResult", "import_file", "import_target", "recover_import"]

KIND = "odoo.import"
MARGIN = 64 * 1024 * 1024
_FS_FILE = re.compile(r"filestore/([0-9a-f]{2})/([0-9a-f]{40})")
_FS_MARKER = re.compile(r"filestore/checklist/[0-9a-f]{2}/[0-9a-f]{40}")
_FS_DIR = re.compile(r"filestore/(checklist/)?([0-9a-f]{2}/)?")
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
_DANGEROUS_ROLES = ("pg_execute_server_program", "pg_read_server_files", "pg_write_server_files")
# the first minor release of each major whose psql knows \restrict
_RESTRICT_SINCE = {13: 22, 14: 19, 15: 14, 16: 10, 17: 6}

Progress = Callable[[str, int, int], None]


def import_target(env_name: str) -> str:
    return f"odoo-import:{env_name}"


@dataclass
class ImportResult:
    status: str
    message: str
    run_id: str
    artifact_id: str
    artifact_path: str
    evidence_path: str
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "action": "odoo import",
            "run_id": self.run_id,
            "message": self.message,
            "artifact_id": self.artifact_id,
            "artifact_path": self.artifact_path,
            "evidence_path": self.evidence_path,
            "warnings": self.warnings,
        }


@dataclass(frozen=True)
class ImportNames:
    """Everything an import run creates, derived from the env and the run id."""

    work: str
    sql: str
    filestore: str
    temp_db: str
    artifact_id: str
    temp_path: str

    @classmethod
    def make(
        cls, project: Project, repo: ArtifactRepository, env: OdooEnv, run_id: str
    ) -> ImportNames:
        suffix = run_id.replace("-", "")[-12:]
        work = _work_root(project, env.name) / run_id
        artifact_id = f"{env.name}-import-{run_id}"
        return cls(
            work=str(work),
            sql=str(work / "dump.sql"),
            filestore=str(work / "filestore"),
            temp_db=f"{env.db[: 63 - len(suffix) - 5]}_lgi_{suffix}",
            artifact_id=artifact_id,
            temp_path=str(repo.root / f".tmp-{artifact_id}"),
        )


def _work_root(project: Project, env_name: str) -> Path:
    return project.state_dir / "imports" / env_name


@dataclass
class _Source:
    """A checked input: the zip's members to use, or a custom-format archive."""

    path: Path
    fmt: str  # "odoo-zip" | "pg_dump-custom"
    dump: zipfile.ZipInfo | None = None
    files: list[tuple[zipfile.ZipInfo, str]] = field(default_factory=list)
    manifest: zipfile.ZipInfo | None = None
    skipped: int = 0
    total: int = 0


# ------------------------------------------------------------------ checking the input
def _member_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.orig_filename
    if "\0" in name or name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        return "has an absolute path"
    if ".." in re.split(r"[/\\]", name):
        return "has a '..' component"
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        return "is a symbolic link"
    if kind in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK):
        return "is a device, FIFO or socket"
    if kind == stat.S_IFDIR and not name.endswith("/"):
        return "is a folder without a folder name"
    if info.flag_bits & 0x1:
        return "is encrypted"
    if info.compress_type not in _METHODS:
        return f"uses compression method {info.compress_type}, which liftgate does not read"
    if name.endswith("/"):
        if _FS_DIR.fullmatch(name) and info.file_size == 0:
            return None
        return "is a folder other than filestore/ and filestore/<xx>/"
    if name in ("dump.sql", "manifest.json"):
        return None
    if not name.startswith("filestore/"):
        return "is not dump.sql, manifest.json or a file under filestore/"
    match = _FS_FILE.fullmatch(name)
    if (match is None or match[2][:2] != match[1]) and not _FS_MARKER.fullmatch(name):
        return "is not filestore/<xx>/<sha1> (40 lowercase hex digits, xx their first two)"
    return None


def _check_zip(path: Path, zf: zipfile.ZipFile) -> _Source:
    source = _Source(path=path, fmt="odoo-zip")
    seen: set[str] = set()
    for info in zf.infolist():
        problem = _member_problem(info)
        if problem is None and info.orig_filename in seen:
            problem = "appears twice"
        if problem is not None:
            raise UsageError(
                f"{path.name} was refused, nothing was extracted: its member "
                f"{info.orig_filename!r} {problem}"
            )
        seen.add(info.orig_filename)
        name = info.orig_filename
        if name == "dump.sql":
            source.dump = info
        elif name == "manifest.json":
            source.manifest = info
        elif _FS_MARKER.fullmatch(name) or name.endswith("/"):
            source.skipped += 0 if name.endswith("/") else 1
        else:
            source.files.append((info, name.removeprefix("filestore/")))
    if source.dump is None:
        raise UsageError(f"{path.name} has no dump.sql member, so it is not an Odoo backup zip")
    source.total = source.dump.file_size + sum(i.file_size for i, _ in source.files)
    return source


def _check_space(project: Project, repo: ArtifactRepository, source: _Source) -> None:
    folder = project.state_dir
    free = shutil.disk_usage(folder).free
    need = source.total + MARGIN
    files = sum(i.file_size for i, _ in source.files)
    make_private_dirs(repo.root)
    if os.stat(repo.root).st_dev == os.stat(folder).st_dev:
        need += files  # the blob store gets a copy of every file
    if free < need:
        raise UsageError(
            f"{source.path.name} unpacks to {source.total} bytes; with the artifact's copy of "
            f"its files and a margin that needs {need} bytes, but only {free} are free in {folder}"
        )


def _check_role(admin: psycopg.Connection[Any]) -> None:
    info = server_info(admin)
    if info.superuser:
        raise GuardrailError(
            f"the env's database role {info.user} is a superuser; liftgate loads an imported "
            "dump only as a non-superuser role, so a hostile dump cannot run superuser-only SQL",
            hint="give the env a role that owns its database and has CREATEDB",
        )
    rows = admin.execute(
        "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) "
        "AND pg_has_role(current_user, oid, 'MEMBER') ORDER BY 1",
        (list(_DANGEROUS_ROLES),),
    ).fetchall()
    if rows:
        raise GuardrailError(
            f"the env's database role {info.user} is a member of {rows[0][0]}, which lets SQL "
            "reach the server's files or programs; liftgate will not load an imported dump as it"
        )


def _sniff(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(5)
    if head == b"PGDMP":
        return "pg_dump-custom"
    if zipfile.is_zipfile(path):
        return "odoo-zip"
    raise UsageError(
        f"{path.name} is neither an Odoo backup zip nor a pg_dump custom-format (-Fc) archive"
    )


def _private_file(path: Path, mode: str = "wb") -> IO[bytes]:
    """A new file only its owner may read (0600), never through a symlink."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    return os.fdopen(fd, mode)


def _extract_sql(
    project: Project, tools: PgTools, source: _Source, zf: zipfile.ZipFile | None, out: Path
) -> DumpScan:
    """Stream the SQL into ``out`` through the scanner (SqlRefusedError on a bad statement)."""
    scanner = SqlScanner("dump.sql")
    with _private_file(out) as dst:
        if zf is not None and source.dump is not None:
            try:
                with zf.open(source.dump) as src:
                    stats = scan_stream(src, dst, scanner, limit=source.dump.file_size)
            except zipfile.BadZipFile as exc:
                raise UsageError(
                    f"{source.path.name}: member 'dump.sql' is damaged: {exc}"
                ) from None
        else:
            stats = _restore_to_sql(project, tools, source.path, dst, scanner, out.parent)
        dst.flush()
        os.fsync(dst.fileno())
    return stats


def _restore_to_sql(
    project: Project,
    tools: PgTools,
    path: Path,
    dst: IO[bytes],
    scanner: SqlScanner,
    work: Path,
) -> DumpScan:
    argv = pg_restore_sql_argv(tools, path)
    with _private_file(work / "pg_restore.log", "w+b") as errors:
        stats, code, text = stream_stdout(argv, errors, lambda out: scan_stream(out, dst, scanner))
    if code != 0:
        raise UsageError(
            f"{path.name} cannot be read as a pg_dump custom-format archive "
            f"(pg_restore exit {code}): {project.redactor.text(first_error(text))}"
        )
    return stats


def _read_zip_manifest(zf: zipfile.ZipFile, source: _Source, warnings: list[str]) -> Any:
    if source.manifest is None:
        return None
    if source.manifest.file_size > 4 * 1024 * 1024:
        warnings.append("manifest.json is larger than 4 MiB and was not read")
        return None
    try:
        with zf.open(source.manifest) as fh:
            return json.loads(fh.read(source.manifest.file_size + 1))
    except (ValueError, zipfile.BadZipFile) as exc:
        warnings.append(f"manifest.json is not valid JSON and was ignored: {exc}")
        return None


def _psql_restrict(tools: PgTools) -> bool:
    parts = [int(p) for p in re.findall(r"\d+", tools.version("psql"))[:2]] + [0, 0]
    major, minor = parts[0], parts[1]
    return major >= 18 or minor >= _RESTRICT_SINCE.get(major, 10**6)


# ------------------------------------------------------------------ the run
def import_file(
    project: Project,
    raw_path: str,
    env_name: str,
    *,
    strict: bool = False,
    wait: float | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import ``raw_path`` (Odoo backup zip or pg_dump custom format) as an artifact of
    ``env_name``; see the module docstring for the order."""
    env = resolve_env(project, env_name)
    path = project.resolve(raw_path, what="import file")
    if not path.is_file():
        raise UsageError(f"the import file {path} does not exist or is not a regular file")
    fmt = _sniff(path)
    repo = ArtifactRepository(project.config.artifacts_dir)
    target = import_target(env.name)
    with project.store.lock(lock_name(target), wait=wait):
        recover(project, target=target, lock_held=True)
        root = _work_root(project, env.name)
        if root.is_dir():  # leftovers of plans killed before their run was recorded
            for stale in os.listdir(root):
                shutil.rmtree(root / stale, ignore_errors=True)
        with contextlib.ExitStack() as stack:
            zf = None
            if fmt == "odoo-zip":
                try:
                    zf = stack.enter_context(zipfile.ZipFile(path))
                except (zipfile.BadZipFile, OSError) as exc:
                    raise UsageError(f"{path.name} is not a readable zip file: {exc}") from None
                source = _check_zip(path, zf)
                _check_space(project, repo, source)
            else:
                source = _Source(path=path, fmt=fmt)
            admin = _maintenance(env)
            stack.callback(admin.close)
            _check_role(admin)
            tools = PgTools.for_major(server_info(admin).major)
            run_id = new_run_id()
            names = ImportNames.make(project, repo, env, run_id)
            make_private_dirs(Path(names.work))
            try:
                scan = _extract_sql(project, tools, source, zf, Path(names.sql))
            except BaseException:
                _remove_files(names)
                raise
            warnings: list[str] = []
            zip_manifest = _read_zip_manifest(zf, source, warnings) if zf is not None else None
            restrict = _psql_restrict(tools)
            if not restrict:
                warnings.append(
                    f"psql {tools.version('psql')} has no restricted mode (\\restrict); the "
                    "dump was screened by liftgate's own scan only"
                )
            plan = {
                "action": "import",
                "env": env.name,
                "role": env.role,
                "db": env.db,
                "source_file": str(path),
                "format": fmt,
                "names": dataclasses.asdict(names),
                "artifact_path": str(repo.path(names.artifact_id)),
                "temp_path": names.temp_path,
                "pg_bin_dir": str(tools.bin_dir),
                "psql_restrict": restrict,
                "members": len(source.files),
                "uncompressed_bytes": source.total,
                "dump_sql": {
                    "sha256": scan.sha256,
                    "bytes": scan.bytes_in,
                    "statements": scan.statements,
                    "copy_blocks": scan.copy_blocks,
                },
                "strict": strict,
            }
            try:
                run = Run.start(
                    project,
                    run_id=run_id,
                    kind=KIND,
                    action="import",
                    target=target,
                    plan=plan,
                    inputs={
                        "command": "odoo import",
                        "file": str(path),
                        "env": env_name,
                        "strict": strict,
                    },
                )
            except BaseException:
                _remove_files(names)
                raise
            job = _Job(project, run, env, repo, admin, tools, names, source, zf, restrict)
            job.warnings = warnings
            job.zip_manifest = zip_manifest
            return job.execute(strict, progress)


def _maintenance(env: OdooEnv) -> psycopg.Connection[Any]:
    from liftgate.odoo.restore import maintenance_connection

    return maintenance_connection(env)


def drop_temp_db(admin: psycopg.Connection[Any], name: str) -> None:
    if database_exists(admin, name):
        terminate_sessions(admin, name)
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def _remove_files(names: ImportNames) -> None:
    shutil.rmtree(names.work, ignore_errors=True)
    shutil.rmtree(names.temp_path, ignore_errors=True)
    with contextlib.suppress(OSError):  # imports/<env>, when empty (under the env's lock)
        Path(names.work).parent.rmdir()


@dataclass
class _Job:
    project: Project
    run: Run
    env: OdooEnv
    repo: ArtifactRepository
    admin: psycopg.Connection[Any]
    tools: PgTools
    names: ImportNames
    source: _Source
    zf: zipfile.ZipFile | None
    restrict: bool
    warnings: list[str] = field(default_factory=list)
    zip_manifest: Any = None

    def execute(self, strict: bool, progress: Progress | None) -> ImportResult:
        names = self.names
        try:
            return self._steps(strict, progress)
        except BaseException as exc:
            published = (self.repo.path(names.artifact_id) / "manifest.json").is_file()
            _remove_files(names)
            try:
                drop_temp_db(self.admin, names.temp_db)
            except psycopg.Error as db_exc:
                # the run stays open: liftgate recover drops the database once it can
                raise OperationError(
                    f"import into env {self.env.name} failed and the temporary database "
                    f"{names.temp_db} could not be dropped: {db_exc}; cause: {exc}",
                    hint="run liftgate recover once the database server is reachable",
                ) from exc
            message = str(exc) if isinstance(exc, LiftgateError) else f"{type(exc).__name__}: {exc}"
            if published:  # only the cleanup failed; what recovery would report too
                message = f"import made artifact {names.artifact_id}, then failed: {message}"
            else:
                message = (
                    f"import of {self.source.path.name} for env {self.env.name} failed: {message}"
                )
            self.run.finish(
                status="ok" if published else "failed",
                message=message,
                result={
                    "env": self.env.name,
                    "artifact_id": names.artifact_id if published else None,
                },
                summary=f"# liftgate import {self.run.run_id}: {'OK' if published else 'FAIL'}"
                f"\n\n{message}\n\nThe temporary database and files were removed.\n",
            )
            raise

    def _steps(self, strict: bool, progress: Progress | None) -> ImportResult:
        names, env, run = self.names, self.env, self.run
        started = time.monotonic()
        with run.step("createdb"):
            self.admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(
                    sql.Identifier(names.temp_db)
                )
            )
        with run.step("load") as detail:
            detail["argv"] = self._load()
        with run.step("filestore") as detail:
            detail.update(self._filestore(progress))
        temp_env = dataclasses.replace(env, db=names.temp_db, filestore=Path(names.filestore))
        backup = self._artifact(temp_env, strict, progress)
        with run.step("cleanup") as detail:
            _remove_files(names)
            drop_temp_db(self.admin, names.temp_db)
            detail["dropped"] = names.temp_db
        warnings = self.warnings + backup.warnings
        seconds = round(time.monotonic() - started, 3)
        made = self.repo.load(names.artifact_id)
        message = (
            f"imported {self.source.path.name} as artifact {names.artifact_id} of env "
            f"{env.name}: {len(made.tables)} tables, {made.filestore.count} files"
            + (f", {len(warnings)} warning(s)" if warnings else "")
        )
        artifact_path = str(self.repo.path(names.artifact_id))
        run.finish(
            status="ok",
            message=message,
            result={
                "env": env.name,
                "artifact_id": names.artifact_id,
                "artifact_path": artifact_path,
            },
            summary=f"# liftgate import {run.run_id}: OK\n\n{message}\n\n- seconds: {seconds}\n"
            + "".join(f"- warning: {w}\n" for w in warnings),
            extra={
                "import.json": {
                    "source_file": str(self.source.path),
                    "format": self.source.fmt,
                    "artifact_id": names.artifact_id,
                    "zip_manifest": self.zip_manifest,
                    "checklist_markers_skipped": self.source.skipped,
                    "psql_restrict": self.restrict,
                    "warnings": warnings,
                    "seconds": seconds,
                }
            },
        )
        return ImportResult(
            status="OK",
            message=message,
            run_id=run.run_id,
            artifact_id=names.artifact_id,
            artifact_path=artifact_path,
            evidence_path=str(run.evidence.dir),
            warnings=warnings,
        )

    def _load(self) -> list[str]:
        names, env = self.names, self.env
        argv = [
            self.tools.path("psql"),
            "-X",
            "-q",
            "-w",
            "-v",
            "ON_ERROR_STOP=1",
            "--single-transaction",
            f"--dbname={env.conninfo(names.temp_db)}",
        ]
        shown = list(argv)
        if self.restrict:
            key = secrets.token_hex(32)
            argv += ["-c", f"\\restrict {key}"]
            shown += ["-c", "\\restrict <random key>"]
        argv += ["-f", names.sql]
        shown += ["-f", names.sql]
        child = env.child_env()
        child["PGOPTIONS"] = "-c standard_conforming_strings=on -c client_min_messages=warning"
        child["PGCLIENTENCODING"] = "UTF8"
        child["PGAPPNAME"] = "liftgate-import"
        with _private_file(Path(names.work) / "psql.log", "w+b") as errors:
            proc = subprocess.run(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors,
                env=child, check=False,
            )  # fmt: skip
            if proc.returncode != 0:
                errors.seek(0)
                text = errors.read(64 * 1024).decode("utf-8", "replace")
                text = text.replace(f"psql:{names.sql}:", "dump.sql line ")
                raise OperationError(
                    f"loading dump.sql into a temporary database failed (psql exit "
                    f"{proc.returncode}), nothing was imported: "
                    f"{self.project.redactor.text(first_error(text))}"
                )
        return shown

    def _filestore(self, progress: Progress | None) -> dict[str, Any]:
        root = Path(self.names.filestore)
        make_private_dirs(root)
        mismatched: list[str] = []
        folders: set[Path] = set()
        total = len(self.source.files)
        assert self.zf is not None or not total
        for done, (info, fname) in enumerate(self.source.files, 1):
            assert self.zf is not None
            dst = root / fname
            if dst.parent not in folders:
                dst.parent.mkdir(mode=0o700, exist_ok=True)
                folders.add(dst.parent)
            digest = hashlib.sha1(usedforsecurity=False)
            size = 0
            try:
                with self.zf.open(info) as src, _private_file(dst) as out:
                    while chunk := src.read(CHUNK):
                        size += len(chunk)
                        if size > info.file_size:
                            raise OperationError(
                                f"member filestore/{fname} is longer than declared"
                            )
                        digest.update(chunk)
                        out.write(chunk)
            except zipfile.BadZipFile as exc:
                raise OperationError(f"member filestore/{fname} is damaged: {exc}") from None
            if digest.hexdigest() != fname.split("/")[1]:
                mismatched.append(fname)
            if progress is not None and (done % 200 == 0 or done == total):
                progress("unpack", done, total)
        for folder in folders:
            fsync_dir(folder)
        self.warnings += [
            f"filestore/{f} does not match its sha1 name; it is not kept" for f in mismatched[:20]
        ]
        if len(mismatched) > 20:
            self.warnings.append(f"... and {len(mismatched) - 20} more such filestore files")
        return {"files": total, "mismatched": mismatched[:100], "skipped": self.source.skipped}

    def _artifact(self, temp_env: OdooEnv, strict: bool, progress: Progress | None) -> Any:
        from liftgate.odoo.backup import _execute

        names, env = self.names, self.env
        conn = temp_env.connect()
        try:
            info = server_info(conn)
            jobs = max(1, min(4, os.cpu_count() or 1))
            with self.repo.lock(exclusive=False, wait=30.0):
                tmp = self.repo.open_tmp(names.artifact_id)
                return _execute(
                    self.project,
                    self.run,
                    temp_env,
                    self.repo,
                    conn,
                    self.tools,
                    info.version,
                    tmp,
                    jobs,
                    names.artifact_id,
                    strict,
                    progress,
                    source=SourceEnv(name=env.name, role=env.role, db=env.db),
                    finish=False,
                )
        finally:
            conn.close()


# ------------------------------------------------------------------ recovery
def recover_import(project: Project, record: RunRecord) -> Outcome:
    """Remove what an interrupted import left: its files, temp artifact folder, database."""
    plan = record.plan
    names = ImportNames(**plan["names"])
    _remove_files(names)
    try:
        env = resolve_env(project, str(plan["env"]))
        admin = _maintenance(env)
    except LiftgateError as exc:
        return Outcome(record.run_id, record.kind, record.target, "failed", str(exc))
    try:
        drop_temp_db(admin, names.temp_db)
    except psycopg.Error as exc:
        return Outcome(
            record.run_id,
            record.kind,
            record.target,
            "failed",
            f"cannot drop {names.temp_db}: {exc}",
        )
    finally:
        admin.close()
    run = Run.resume(project, record)
    repo = ArtifactRepository(project.config.artifacts_dir)
    if (repo.path(names.artifact_id) / "manifest.json").is_file():
        message = f"import made artifact {names.artifact_id} before the interruption; cleaned up"
        run.finish(
            status="ok",
            message=message + " (completed by liftgate recover)",
            result={"env": plan["env"], "artifact_id": names.artifact_id},
            summary=f"# liftgate import {record.run_id}: OK\n\n{message}\n",
        )
        return Outcome(record.run_id, record.kind, record.target, "completed", message)
    message = "import interrupted before its artifact was published; its temporary database "
    message += "and files were removed"
    run.finish(
        status="failed",
        message=message,
        result={"env": plan["env"]},
        summary=f"# liftgate import {record.run_id}: FAIL\n\n{message}\n",
    )
    return Outcome(record.run_id, record.kind, record.target, "undone", message)
