"""Per-addon content checksums, and the ones recorded in the database at the last deploy.

A deploy updates an installed addon only when its checksum differs from the one recorded
at the previous deploy: the same idea as click-odoo-update (OCA's ``click-odoo-contrib``),
which keeps its checksums in ``ir_config_parameter`` under
``module_auto_update.installed_checksums``. liftgate's hash is computed differently, so it
keeps its own key, :data:`PARAM_KEY`; the two never read each other's values.

:func:`module_checksum` is the hex sha256 of a stream that has, for every entry of the
addon folder in the byte order of its relative POSIX path:

* a regular file: ``F``, NUL, the path, NUL, the size in decimal, NUL, the content;
* a symbolic link: ``L``, NUL, the path, NUL, the length of its target, NUL, the target
  text (the link is never followed, whether it points inside the addon or not).

Path, size and content together mean that renaming, moving, adding, removing or editing a
file changes the checksum. Left out: ``__pycache__`` folders and ``*.pyc`` / ``*.pyo``
files (Python's own caches) and the version-control metadata folders ``.git``, ``.hg``,
``.svn`` and ``.bzr`` (a ``.git`` file of a worktree too). Everything else counts, editor
backups and ``.gitignore`` included. Empty folders and file modes do not count (git does
not keep them either). Files are read in 1 MiB chunks.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from liftgate.errors import OperationError, UsageError
from liftgate.odoo.manifest import ModuleManifest

__all__ = [
    "IGNORED_NAMES",
    "IGNORED_SUFFIXES",
    "PARAM_KEY",
    "changed",
    "checksums",
    "module_checksum",
    "read_recorded",
    "write_recorded",
]

PARAM_KEY = "liftgate.module_checksums"
IGNORED_NAMES = frozenset({"__pycache__", ".git", ".hg", ".svn", ".bzr"})
IGNORED_SUFFIXES = (".pyc", ".pyo")
_CHUNK = 1024 * 1024
_TABLE = "ir_config_parameter"
_NOW_UTC = sql.SQL("(now() AT TIME ZONE 'UTC')")
_SUPERUSER_ID = 1


# -- checksums ----------------------------------------------------------------------------


def _entries(top: Path) -> Iterator[tuple[bytes, os.DirEntry[str]]]:
    """(relative POSIX path as bytes, entry) of every file and link under ``top``."""
    stack: list[tuple[bytes, str]] = [(b"", str(top))]
    while stack:
        prefix, folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                listed = list(it)
        except OSError as exc:
            raise UsageError(f"Cannot list {folder}: {exc.strerror}.") from exc
        for entry in listed:
            if entry.name in IGNORED_NAMES:
                continue
            rel = prefix + os.fsencode(entry.name)
            if entry.is_symlink():
                yield rel, entry
            elif entry.is_dir(follow_symlinks=False):
                stack.append((rel + b"/", entry.path))
            elif entry.is_file(follow_symlinks=False):
                if not entry.name.endswith(IGNORED_SUFFIXES):
                    yield rel, entry
            else:
                raise UsageError(
                    f"{entry.path} is neither a file, a folder nor a symbolic link; an addon "
                    f"cannot hold it."
                )


def _hash_file(digest: Any, path: str) -> None:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise OperationError(f"Cannot read {path} to checksum it: {exc.strerror}.") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OperationError(f"{path} changed type while its addon was checksummed.")
        digest.update(b"%d\0" % st.st_size)
        remaining = st.st_size
        while remaining > 0:
            chunk = os.read(fd, min(_CHUNK, remaining))
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)
        if remaining or os.read(fd, 1):
            raise OperationError(f"{path} changed size while its addon was checksummed.")
    except OSError as exc:
        raise OperationError(f"Cannot read {path} to checksum it: {exc.strerror}.") from exc
    finally:
        os.close(fd)


def module_checksum(module_dir: Path) -> str:
    """The hex sha256 of the addon in ``module_dir`` (see the module docstring)."""
    top = Path(module_dir)
    if not top.is_dir():
        raise UsageError(f"Addon folder {top} does not exist or is not a folder.")
    digest = hashlib.sha256()
    for rel, entry in sorted(_entries(top), key=lambda item: item[0]):
        if entry.is_symlink():
            try:
                target = os.fsencode(os.readlink(entry.path))
            except OSError as exc:
                raise OperationError(f"Cannot read the link {entry.path}: {exc.strerror}.") from exc
            digest.update(b"L\0" + rel + b"\0" + b"%d\0" % len(target) + target)
        else:
            digest.update(b"F\0" + rel + b"\0")
            _hash_file(digest, entry.path)
    return digest.hexdigest()


def checksums(modules: Sequence[ModuleManifest]) -> dict[str, str]:
    """``{name: module_checksum(path)}`` for every addon."""
    return {m.name: module_checksum(m.path) for m in modules}


def changed(current: Mapping[str, str], recorded: Mapping[str, str]) -> set[str]:
    """Names in ``current`` whose checksum is not the recorded one (new names included;
    names only in ``recorded``, addons that left the repository, are not)."""
    return {name for name, value in current.items() if recorded.get(name) != value}


# -- the recorded checksums ---------------------------------------------------------------


def _columns(conn: psycopg.Connection[Any]) -> tuple[str, set[str]] | None:
    """(schema, columns) of ``ir_config_parameter`` in the connection's current schema."""
    row = conn.execute("SELECT current_schema()").fetchone()
    if row is None or row[0] is None:
        return None
    schema = str(row[0])
    cols = conn.execute(
        "SELECT a.attname FROM pg_catalog.pg_attribute a "
        "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p') "
        "AND a.attnum > 0 AND NOT a.attisdropped",
        (schema, _TABLE),
    ).fetchall()
    if not cols:
        return None
    return schema, {str(c[0]) for c in cols}


def _decode(value: object) -> dict[str, str]:
    if not isinstance(value, str):
        return {}
    try:
        data = json.loads(value)
    except ValueError:
        return {}
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        return {}
    return data


def read_recorded(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """The checksums recorded under :data:`PARAM_KEY`; ``{}`` when there is no such
    parameter, no ``ir_config_parameter`` table, or a value that is not a JSON object of
    strings (so every addon then counts as changed)."""
    try:
        found = _columns(conn)
        if found is None or not {"key", "value"} <= found[1]:
            return {}
        row = conn.execute(
            sql.SQL("SELECT {value} FROM {t} WHERE {key} = %s LIMIT 1").format(
                value=sql.Identifier("value"),
                key=sql.Identifier("key"),
                t=sql.Identifier(found[0], _TABLE),
            ),
            (PARAM_KEY,),
        ).fetchone()
    except psycopg.Error as exc:
        raise OperationError(
            f"Cannot read the recorded addon checksums: {str(exc).strip()}"
        ) from exc
    return {} if row is None else _decode(row[0])


def write_recorded(conn: psycopg.Connection[Any], checksums: Mapping[str, str]) -> None:
    """Record ``checksums`` under :data:`PARAM_KEY` (JSON, sorted keys), updating the row or
    inserting it. ``write_date`` (and ``create_date`` on insert) is set to now in UTC and
    ``write_uid`` / ``create_uid`` to 1 (the superuser) where those columns exist. Runs in
    the caller's transaction: nothing is committed here."""
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in checksums.items()):
        raise UsageError("Addon checksums must map module names to checksum strings.")
    value = json.dumps(dict(checksums), sort_keys=True, separators=(",", ":"))
    try:
        found = _columns(conn)
        if found is None or not {"key", "value"} <= found[1]:
            raise OperationError(
                f"Cannot record the addon checksums: no {_TABLE} table with key and value "
                f"columns in the current schema.",
                hint="Is this an Odoo database?",
            )
        schema, cols = found
        table = sql.Identifier(schema, _TABLE)
        sets: list[sql.Composable] = [sql.SQL("{} = %s").format(sql.Identifier("value"))]
        params: list[Any] = [value]
        if "write_uid" in cols:
            sets.append(sql.SQL("{} = %s").format(sql.Identifier("write_uid")))
            params.append(_SUPERUSER_ID)
        if "write_date" in cols:
            sets.append(sql.SQL("{} = {}").format(sql.Identifier("write_date"), _NOW_UTC))
        cur = conn.execute(
            sql.SQL("UPDATE {t} SET {sets} WHERE {key} = %s").format(
                t=table, sets=sql.SQL(", ").join(sets), key=sql.Identifier("key")
            ),
            (*params, PARAM_KEY),
        )
        if cur.rowcount:
            return
        names: list[str] = ["key", "value"]
        values: list[sql.Composable] = [sql.Placeholder(), sql.Placeholder()]
        params = [PARAM_KEY, value]
        for uid in ("create_uid", "write_uid"):
            if uid in cols:
                names.append(uid)
                values.append(sql.Placeholder())
                params.append(_SUPERUSER_ID)
        for stamp in ("create_date", "write_date"):
            if stamp in cols:
                names.append(stamp)
                values.append(_NOW_UTC)
        conn.execute(
            sql.SQL("INSERT INTO {t} ({names}) VALUES ({values})").format(
                t=table,
                names=sql.SQL(", ").join(sql.Identifier(n) for n in names),
                values=sql.SQL(", ").join(values),
            ),
            params,
        )
    except psycopg.Error as exc:
        raise OperationError(
            f"Cannot record the addon checksums: {str(exc).strip()}",
            hint="The transaction is aborted: roll it back.",
        ) from exc
