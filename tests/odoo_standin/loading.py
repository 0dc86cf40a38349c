"""Module loading and neutralization of the Odoo server STAND-IN (tests only; not Odoo).

Odoo cannot be installed on the test machines, so :mod:`odoo_standin.server` plays
``odoo-bin`` against the sample Odoo-shaped database. This module holds what it does to
that database: read the addons path, order modules by dependency, install/update them
one transaction each (module row, optional ``standin_update.sql``, a regenerated asset
bundle in the filestore) and neutralize a copy like ``odoo-bin neutralize``.

Rules followed from Odoo (``odoo/modules``):

* a module is a folder holding ``__manifest__.py`` (read with ``ast.literal_eval``); the
  first folder of the addons path that has it wins;
* ``adapt_version``: the series (``17.0``) is prefixed unless the manifest version
  already starts with ``<series>.``, and the rest must be ``x.y`` or ``x.y.z``;
* ``-u`` takes installed modules only and also updates the installed modules that depend
  on them (``button_upgrade``); ``-i`` installs the missing dependencies too;
* each module is committed before the next one starts, so a failure part way leaves the
  earlier modules committed; files written to the filestore are never taken back (a
  rolled-back attachment leaves its file, marked in ``checklist/`` for the GC).

Test hooks (not Odoo): ``standin_update.sql`` in a module folder is executed when the
module loads; a manifest key ``"standin_fail": "message"`` makes the module fail after its
SQL and asset writes.
"""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

__all__ = [
    "LoadError",
    "Manifest",
    "StandinFailError",
    "adapt_version",
    "db_series",
    "installed_modules",
    "load_modules",
    "neutralize",
    "plan_modules",
    "scan_addons",
]

DEFAULT_SERIES = "17.0"
UPDATE_SQL = "standin_update.sql"
_VERSION_RE = re.compile(r"^[0-9]+\.[0-9]+(?:\.[0-9]+)?$")

_log = logging.getLogger("odoo.modules.loading")


class LoadError(Exception):
    """A module cannot be loaded (unknown, unmet dependency, bad manifest)."""


class StandinFailError(Exception):
    """Raised by a module whose manifest asks for it (``standin_fail``)."""


@dataclass(frozen=True)
class Manifest:
    name: str  # technical name: the folder's
    path: Path
    title: str
    version: str
    depends: tuple[str, ...]
    license: str
    author: str
    application: bool
    fail: str | None


def read_manifest(folder: Path) -> Manifest:
    try:
        data = ast.literal_eval((folder / "__manifest__.py").read_text())
    except (OSError, ValueError, SyntaxError) as exc:
        raise LoadError(f"module {folder.name}: unreadable __manifest__.py: {exc}") from exc
    if not isinstance(data, dict):
        raise LoadError(f"module {folder.name}: __manifest__.py is not a dict")
    fail = data.get("standin_fail")
    return Manifest(
        name=folder.name,
        path=folder,
        title=str(data.get("name", folder.name)),
        version=str(data.get("version", "1.0")),
        depends=tuple(str(d) for d in data.get("depends", ())),
        license=str(data.get("license", "LGPL-3")),
        author=str(data.get("author", "")),
        application=bool(data.get("application", False)),
        fail=None if fail is None else str(fail),
    )


def scan_addons(paths: Sequence[Path]) -> dict[str, Manifest]:
    """Every module on the addons path; the first path holding a module name wins."""
    found: dict[str, Manifest] = {}
    for base in paths:
        if not base.is_dir():
            continue
        for folder in sorted(base.iterdir()):
            if folder.name not in found and (folder / "__manifest__.py").is_file():
                found[folder.name] = read_manifest(folder)
    return found


def adapt_version(version: str, series: str) -> str:
    """Odoo's ``adapt_version``: ``1.2.0`` -> ``17.0.1.2.0``; ``17.0.1.2`` unchanged."""
    if version == series or not version.startswith(series + "."):
        base, version = version, f"{series}.{version}"
    else:
        base = version[len(series) + 1 :]
    if not _VERSION_RE.match(base):
        raise LoadError(f"invalid version {version!r}: expected {series}.x.y or x.y.z")
    return version


def db_series(conn: psycopg.Connection[Any]) -> str:
    """The series of the database: the first two parts of base's ``latest_version``."""
    row = conn.execute("SELECT latest_version FROM ir_module_module WHERE name = 'base'").fetchone()
    if row is None or not row[0]:
        return DEFAULT_SERIES
    return ".".join(str(row[0]).split(".")[:2])


def installed_modules(conn: psycopg.Connection[Any]) -> dict[str, str | None]:
    rows = conn.execute(
        "SELECT name, latest_version FROM ir_module_module WHERE state = 'installed'"
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def plan_modules(
    available: Mapping[str, Manifest],
    installed: Iterable[str],
    *,
    update: Sequence[str],
    init: Sequence[str],
) -> list[str]:
    """The modules ``-u``/``-i`` load, in dependency order (dependencies first)."""
    inst = set(installed)
    selected: set[str] = set()

    def add_with_deps(name: str, chain: tuple[str, ...]) -> None:
        if name in chain:
            raise LoadError(f"module {name}: circular dependency {' -> '.join((*chain, name))}")
        selected.add(name)
        for dep in available[name].depends:
            if dep in inst and dep not in init:
                continue
            if dep not in available:
                raise LoadError(f"module {name}: Unmet dependencies: {dep}")
            add_with_deps(dep, (*chain, name))

    for name in init:
        if name not in available:
            raise LoadError(f"module {name}: not found in the addons path, cannot install it")
        add_with_deps(name, ())

    if "all" in update:
        upgrade = {n for n in inst if n in available}
    else:
        upgrade = set()
        for name in update:
            if name not in inst:
                _log.warning("module %s: not installed, ignored by -u", name)
            elif name not in available:
                _log.warning("module %s: not found in the addons path, not updated", name)
            else:
                upgrade.add(name)
        # button_upgrade: installed modules depending on an upgraded one are upgraded too
        grew = True
        while grew:
            more = {
                n
                for n in inst
                if n in available and n not in upgrade and upgrade & set(available[n].depends)
            }
            upgrade |= more
            grew = bool(more)
    selected |= upgrade

    order: list[str] = []

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in order:
            return
        if name in chain:
            raise LoadError(f"module {name}: circular dependency {' -> '.join((*chain, name))}")
        for dep in sorted(available[name].depends):
            if dep in selected:
                visit(dep, (*chain, name))
        order.append(name)

    for name in sorted(selected):
        visit(name, ())
    return order


def load_modules(
    conn: psycopg.Connection[Any],
    available: Mapping[str, Manifest],
    order: Sequence[str],
    *,
    filestore: Path,
    series: str,
    installed: Iterable[str],
) -> None:
    """Load ``order`` one module per committed transaction; raise on the first failure.

    The failing module's transaction is rolled back before the exception propagates.
    """
    started = time.monotonic()
    inst = set(installed)
    _log.info("loading %d modules...", len(order))
    for i, name in enumerate(order, start=1):
        _log.info("Loading module %s (%d/%d)", name, i, len(order))
        try:
            _load_one(conn, available[name], filestore=filestore, series=series)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        _log.info(
            "Module %s %s, version %s",
            name,
            "updated" if name in inst else "installed",
            adapt_version(available[name].version, series),
        )
    _log.info("%d modules loaded in %.2fs", len(order), time.monotonic() - started)
    _log.info("Modules loaded.")


def _load_one(
    conn: psycopg.Connection[Any], manifest: Manifest, *, filestore: Path, series: str
) -> None:
    version = adapt_version(manifest.version, series)
    script = manifest.path / UPDATE_SQL
    if script.is_file():
        _log.info("module %s: loading %s", manifest.name, UPDATE_SQL)
        conn.execute(script.read_bytes())
    _regenerate_assets(conn, manifest.name, version, filestore)
    if manifest.fail is not None:
        raise StandinFailError(f"module {manifest.name}: {manifest.fail}")
    now = _utcnow()
    row = conn.execute(
        "INSERT INTO ir_module_module (name, shortdesc, author, state, latest_version, "
        "license, application, auto_install, demo, create_uid, create_date, write_uid, "
        "write_date) VALUES (%s, %s, %s, 'installed', %s, %s, %s, false, false, 1, %s, 1, %s) "
        "ON CONFLICT (name) DO UPDATE SET shortdesc = EXCLUDED.shortdesc, "
        "author = EXCLUDED.author, state = 'installed', latest_version = "
        "EXCLUDED.latest_version, license = EXCLUDED.license, application = "
        "EXCLUDED.application, write_uid = 1, write_date = EXCLUDED.write_date RETURNING id",
        (
            manifest.name,
            Jsonb({"en_US": manifest.title}),
            manifest.author,
            version,
            manifest.license,
            manifest.application,
            now,
            now,
        ),
    ).fetchone()
    assert row is not None
    conn.execute(
        "INSERT INTO ir_model_data (module, name, model, res_id, noupdate, create_date, "
        "write_date) VALUES ('base', %s, 'ir.module.module', %s, true, %s, %s) "
        "ON CONFLICT DO NOTHING",
        (f"module_{manifest.name}", row[0], now, now),
    )


def _utcnow() -> dt.datetime:
    """Naive UTC, as Odoo stores datetimes."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _regenerate_assets(
    conn: psycopg.Connection[Any], module: str, version: str, filestore: Path
) -> None:
    """Replace the module's asset bundle attachment, file first, like Odoo's assets."""
    content = (
        f"/* {module} {version}: asset bundle regenerated by the Odoo stand-in "
        f"(pid {os.getpid()}, {uuid.uuid4()}) */\n.o_{module} {{ display: block; }}\n"
    ).encode()
    sha1 = hashlib.sha1(content, usedforsecurity=False).hexdigest()
    fname = f"{sha1[:2]}/{sha1}"
    path = filestore / sha1[:2] / sha1
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    _mark_for_gc(filestore, fname)  # in case the transaction aborts (ir.attachment._file_write)
    name = f"/web/assets/{module}.css"
    old = conn.execute(
        "DELETE FROM ir_attachment WHERE name = %s AND res_model = 'ir.ui.view' "
        "RETURNING store_fname",
        (name,),
    ).fetchall()
    for (old_fname,) in old:
        if old_fname:
            _mark_for_gc(filestore, old_fname)
    conn.execute(
        "INSERT INTO ir_attachment (name, res_model, res_id, type, url, public, store_fname, "
        "file_size, checksum, mimetype, create_uid, create_date, write_uid, write_date) "
        "VALUES (%s, 'ir.ui.view', 0, 'binary', %s, true, %s, %s, %s, 'text/css', 1, %s, 1, %s)",
        (name, name, fname, len(content), sha1, _utcnow(), _utcnow()),
    )
    logging.getLogger("odoo.addons.base.models.assetsbundle").info(
        "module %s: asset bundle %s written to %s", module, name, fname
    )


def _mark_for_gc(filestore: Path, fname: str) -> None:
    marker = filestore / "checklist" / fname
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


# -- neutralize -----------------------------------------------------------------------------

# (module, table, statement): the data/neutralize.sql rules of Odoo 17's base, web, mail
# and payment; a rule runs when its module is installed and its table exists.
_NEUTRALIZE: list[tuple[str, str, str]] = [
    ("base", "ir_mail_server", "UPDATE ir_mail_server SET active = false"),
    (
        "base",
        "ir_mail_server",
        "INSERT INTO ir_mail_server (name, smtp_port, smtp_host, smtp_encryption, active, "
        "smtp_authentication) VALUES ('neutralization - disable emails', 1025, 'invalid', "
        "'none', true, 'login')",
    ),
    (
        "base",
        "ir_cron",
        "UPDATE ir_cron SET active = false WHERE id NOT IN (SELECT res_id FROM ir_model_data "
        "WHERE model = 'ir.cron' AND name = 'autovacuum_job' AND module = 'base')",
    ),
    (
        "base",
        "ir_config_parameter",
        "INSERT INTO ir_config_parameter (key, value) VALUES ('database.is_neutralized', "
        "true) ON CONFLICT (key) DO UPDATE SET value = true",
    ),
    (
        "base",
        "ir_act_server",
        "UPDATE ir_act_server SET webhook_url = 'neutralization - disable webhook' "
        "WHERE state = 'webhook'",
    ),
    (
        "web",
        "ir_ui_view",
        "UPDATE ir_ui_view SET active = true WHERE key = 'web.neutralize_banner'",
    ),
    ("mail", "mail_template", "UPDATE mail_template SET mail_server_id = NULL"),
    ("mail", "fetchmail_server", "UPDATE fetchmail_server SET active = false"),
    (
        "payment",
        "payment_provider",
        "UPDATE payment_provider SET state = 'disabled' WHERE state NOT IN ('test', 'disabled')",
    ),
]


def neutralize(conn: psycopg.Connection[Any]) -> None:
    """Run the neutralization rules in ``conn``'s transaction (the caller commits)."""
    mods = {
        r[0]
        for r in conn.execute(
            "SELECT name FROM ir_module_module WHERE state IN "
            "('installed', 'to upgrade', 'to remove')"
        ).fetchall()
    }
    for module, table, statement in _NEUTRALIZE:
        exists = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        if module not in mods or exists is None or exists[0] is None:
            continue
        cur = conn.execute(statement.encode())
        logging.getLogger("odoo.modules.neutralize").info(
            "Neutralize %s: %s (%d rows)", module, statement.split(" WHERE")[0], cur.rowcount
        )
