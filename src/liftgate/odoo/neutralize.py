"""Odoo's database neutralization, done in SQL inside the caller's transaction.

Odoo (16+) neutralizes a copy by running the ``data/neutralize.sql`` of every installed
module (``odoo/modules/neutralize.py``: ``SELECT name FROM ir_module_module WHERE state IN
('installed', 'to upgrade', 'to remove')``, then each module's file). The statements below
are those files' rules:

* ``base``: ``UPDATE ir_mail_server SET active = false``; then ``INSERT INTO
  ir_mail_server(name, smtp_port, smtp_host, smtp_encryption, active, smtp_authentication)
  VALUES ('neutralization - disable emails', 1025, 'invalid', 'none', true, 'login')`` so
  mail cannot fall back to the ``--smtp`` server of the command line; ``UPDATE ir_cron SET
  active = false WHERE id NOT IN (SELECT res_id FROM ir_model_data WHERE model = 'ir.cron'
  AND name = 'autovacuum_job' AND module = 'base')``; ``INSERT INTO ir_config_parameter
  (key, value) VALUES ('database.is_neutralized', true) ON CONFLICT (key) DO UPDATE SET
  value = true`` (newer versions also set ``type = 'str'``); ``UPDATE ir_act_server SET
  webhook_url = 'neutralization - disable webhook' WHERE state = 'webhook'``.
* ``web``: ``UPDATE ir_ui_view SET active = true WHERE key = 'web.neutralize_banner'``.
* ``mail``: ``UPDATE mail_template SET mail_server_id = NULL``; ``UPDATE fetchmail_server
  SET active = false`` (fetchmail is part of ``mail`` since Odoo 16); newer versions also
  delete the web push keys (``mail.web_push_vapid_private_key``,
  ``mail.web_push_vapid_public_key``, ``mail.sfu_server_key``) and empty
  ``mail_notification_web_push`` and ``mail_partner_device``.
* ``payment`` (16/17): ``UPDATE payment_provider SET state = 'disabled' WHERE state NOT IN
  ('test', 'disabled')``; newer versions: ``UPDATE payment_provider SET is_live = False``.

Differences from Odoo, on purpose:

* A rule runs when its table and columns exist in the current schema (looked up in
  ``pg_catalog``), not when its module is installed: leftover tables get neutralized too,
  and a table or column of another Odoo version is skipped (and said so) instead of
  failing.
* Idempotent: a second run changes nothing. Odoo's SQL inserts a new dummy mail server
  every time (the earlier one is deactivated with the others); here the existing active
  dummy (same name, host ``invalid``, port 1025) is kept, so there is always exactly one.
  Updates skip rows already in their target state, so ``write_date`` and row versions of
  untouched rows do not change.
* ``NOT IN (SELECT res_id ...)`` would match nothing if an ``ir_model_data`` row had a
  NULL ``res_id``; the subquery filters those out.
* When a table has both ``is_live`` and ``state``, the newer rule (``is_live = false``)
  wins, like the newer Odoo that has that column.

Provider-specific rules of other modules (``payment_stripe`` blanking its keys, ...) are
not included.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from liftgate.errors import OperationError

__all__ = [
    "AUTOVACUUM_XMLID",
    "DUMMY_SERVER_NAME",
    "DUMMY_SMTP_HOST",
    "DUMMY_SMTP_PORT",
    "NEUTRALIZED_KEY",
    "WEBHOOK_URL",
    "is_neutralized",
    "neutralize",
    "new_identity",
]

DUMMY_SERVER_NAME = "neutralization - disable emails"
DUMMY_SMTP_HOST = "invalid"
DUMMY_SMTP_PORT = 1025
WEBHOOK_URL = "neutralization - disable webhook"
NEUTRALIZED_KEY = "database.is_neutralized"
AUTOVACUUM_XMLID = ("base", "autovacuum_job")
BANNER_VIEW_KEY = "web.neutralize_banner"
WEB_PUSH_KEYS = (
    "mail.web_push_vapid_private_key",
    "mail.web_push_vapid_public_key",
    "mail.sfu_server_key",
)

# odoo.tools.str2bool's truthy spellings
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})

_NOW_UTC = sql.SQL("(now() AT TIME ZONE 'UTC')")


@dataclass(frozen=True)
class _Column:
    not_null: bool
    has_default: bool


class _Schema:
    """The tables and columns of the connection's current schema, looked up once each."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        row = conn.execute("SELECT current_schema()").fetchone()
        if row is None or row[0] is None:
            raise OperationError(
                "Cannot neutralize: the connection has no current schema.",
                hint="Set search_path to the schema of the Odoo tables (usually public).",
            )
        self.name: str = row[0]
        self._cache: dict[str, dict[str, _Column]] = {}

    def columns(self, table: str) -> dict[str, _Column]:
        if table not in self._cache:
            rows = self.conn.execute(
                "SELECT a.attname, a.attnotnull, (a.atthasdef OR a.attidentity <> '') "
                "FROM pg_catalog.pg_attribute a "
                "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
                "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p') "
                "AND a.attnum > 0 AND NOT a.attisdropped",
                (self.name, table),
            ).fetchall()
            self._cache[table] = {r[0]: _Column(bool(r[1]), bool(r[2])) for r in rows}
        return self._cache[table]

    def has(self, table: str, *columns: str) -> bool:
        cols = self.columns(table)
        return bool(cols) and all(c in cols for c in columns)

    def missing(self, table: str, *columns: str) -> str:
        """Why a rule on ``table`` is skipped: the table or the columns that are not there."""
        cols = self.columns(table)
        if not cols:
            return f"{table}: skipped, no such table in schema {self.name}"
        absent = ", ".join(c for c in columns if c not in cols)
        return f"{table}: skipped, no column {absent}"

    def table(self, table: str) -> sql.Identifier:
        return sql.Identifier(self.name, table)


def _exec(
    conn: psycopg.Connection[Any],
    step: str,
    query: sql.SQL | sql.Composed,
    params: Sequence[Any] | Mapping[str, Any] | None = None,
) -> psycopg.Cursor[Any]:
    try:
        return conn.execute(query, params)
    except psycopg.Error as exc:
        raise OperationError(
            f"Neutralization step '{step}' failed: {str(exc).strip()}",
            hint="The transaction is aborted: roll it back; nothing of the neutralization is kept.",
        ) from exc


def _insert(
    schema: _Schema,
    step: str,
    table: str,
    values: Mapping[str, Any],
    optional: Mapping[str, Any] | None = None,
) -> int | None:
    """INSERT one row; ``optional`` values (and create/write dates) only where columns exist.

    Returns the new row's id (None when the table has no ``id`` column). Raises
    :class:`OperationError` naming any NOT NULL column without default left unfilled.
    """
    cols = schema.columns(table)
    row: dict[str, sql.Composable] = {}
    params: list[Any] = []
    for key, value in {
        **values,
        **{k: v for k, v in (optional or {}).items() if k in cols},
    }.items():
        row[key] = sql.Placeholder()
        params.append(value)
    for stamp in ("create_date", "write_date"):
        if stamp in cols and stamp not in row:
            row[stamp] = _NOW_UTC
    unfilled = sorted(
        name
        for name, col in cols.items()
        if col.not_null and not col.has_default and name not in row
    )
    if unfilled:
        raise OperationError(
            f"Neutralization step '{step}' cannot insert into {table}: "
            f"required column(s) {', '.join(unfilled)} have no value this Odoo version "
            "would accept.",
            hint="This Odoo version is not supported by liftgate's neutralization yet.",
        )
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        schema.table(table),
        sql.SQL(", ").join(map(sql.Identifier, row)),
        sql.SQL(", ").join(row.values()),
    )
    if "id" in cols:
        query = sql.Composed([query, sql.SQL(" RETURNING "), sql.Identifier("id")])
    cur = _exec(schema.conn, step, query, params)
    if "id" not in cols:
        return None
    got = cur.fetchone()
    return int(got[0]) if got else None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _q(template: str, *columns: str, **parts: sql.Composable) -> sql.Composed:
    """``template`` with each ``{column}`` quoted as an identifier and ``parts`` filled in.

    Tables come in ``parts`` as ``schema.table(name)``: schema-qualified and quoted.
    """
    return sql.SQL(template).format(**{c: sql.Identifier(c) for c in columns}, **parts)


# -- the rules ------------------------------------------------------------------------------


def _mail_servers(schema: _Schema) -> list[str]:
    table = "ir_mail_server"
    conn = schema.conn
    tbl = schema.table(table)
    if not schema.has(table, "active", "id"):
        return [schema.missing(table, "active", "id")]
    lines: list[str] = []
    can_dummy = schema.has(table, "name", "smtp_host", "smtp_port")
    dummy_id: int | None = None
    dummy_active = False
    if can_dummy:
        # an earlier neutralization's dummy (Odoo's own runs may have left several)
        found = _exec(
            conn,
            "find dummy mail server",
            _q(
                "SELECT {id}, {active} FROM {t} "
                "WHERE {name} = %s AND {smtp_host} = %s AND {smtp_port} = %s "
                "ORDER BY {active} IS TRUE DESC, {id} LIMIT 1",
                "id",
                "active",
                "name",
                "smtp_host",
                "smtp_port",
                t=tbl,
            ),
            (DUMMY_SERVER_NAME, DUMMY_SMTP_HOST, DUMMY_SMTP_PORT),
        ).fetchone()
        if found:
            dummy_id, dummy_active = int(found[0]), bool(found[1])
    keep = sql.SQL("") if dummy_id is None else _q(" AND {id} <> %s", "id")
    cur = _exec(
        conn,
        "deactivate mail servers",
        _q(
            "UPDATE {t} SET {active} = false WHERE {active} IS DISTINCT FROM false{keep}",
            "active",
            t=tbl,
            keep=keep,
        ),
        None if dummy_id is None else (dummy_id,),
    )
    lines.append(f"{table}: deactivated {_plural(cur.rowcount, 'mail server')}")
    dummy = f"'{DUMMY_SERVER_NAME}' (smtp_host {DUMMY_SMTP_HOST}, port {DUMMY_SMTP_PORT})"
    if not can_dummy:
        absent = [c for c in ("name", "smtp_host", "smtp_port") if c not in schema.columns(table)]
        lines.append(f"{table}: no dummy server inserted, no column {', '.join(absent)}")
    elif dummy_id is not None and dummy_active:
        lines.append(f"{table}: kept the active dummy server #{dummy_id} {dummy}")
    elif dummy_id is not None:
        _exec(
            conn,
            "re-activate dummy mail server",
            _q("UPDATE {t} SET {active} = true WHERE {id} = %s", "active", "id", t=tbl),
            (dummy_id,),
        )
        lines.append(f"{table}: re-activated the dummy server #{dummy_id} {dummy}")
    else:
        new_id = _insert(
            schema,
            "insert dummy mail server",
            table,
            {
                "name": DUMMY_SERVER_NAME,
                "smtp_port": DUMMY_SMTP_PORT,
                "smtp_host": DUMMY_SMTP_HOST,
                "active": True,
            },
            {"smtp_encryption": "none", "smtp_authentication": "login"},
        )
        ref = f" #{new_id}" if new_id is not None else ""
        lines.append(
            f"{table}: inserted the active dummy server{ref} {dummy} so mail cannot fall "
            "back to the --smtp server of the command line"
        )
    return lines


def _crons(schema: _Schema) -> list[str]:
    table = "ir_cron"
    conn = schema.conn
    tbl = schema.table(table)
    if not schema.has(table, "active", "id"):
        return [schema.missing(table, "active", "id")]
    module, name = AUTOVACUUM_XMLID
    if not schema.has("ir_model_data", "module", "name", "model", "res_id"):
        cur = _exec(
            conn,
            "deactivate crons",
            _q(
                "UPDATE {t} SET {active} = false WHERE {active} IS DISTINCT FROM false",
                "active",
                t=tbl,
            ),
        )
        return [
            f"{table}: deactivated {_plural(cur.rowcount, 'cron')} "
            f"(no ir_model_data: {module}.{name} cannot be told apart)"
        ]
    keep = _q(
        "SELECT {res_id} FROM {imd} WHERE {model} = 'ir.cron' AND {module} = %s "
        "AND {name} = %s AND {res_id} IS NOT NULL",
        "res_id",
        "model",
        "module",
        "name",
        imd=schema.table("ir_model_data"),
    )
    cur = _exec(
        conn,
        "deactivate crons",
        _q(
            "UPDATE {t} SET {active} = false "
            "WHERE {active} IS DISTINCT FROM false AND {id} NOT IN ({keep})",
            "active",
            "id",
            t=tbl,
            keep=keep,
        ),
        (module, name),
    )
    lines = [f"{table}: deactivated {_plural(cur.rowcount, 'cron')}"]
    kept = _exec(
        conn,
        "find autovacuum cron",
        _q(
            "SELECT {id}, {active} FROM {t} WHERE {id} IN ({keep}) ORDER BY {id}",
            "id",
            "active",
            t=tbl,
            keep=keep,
        ),
        (module, name),
    ).fetchall()
    if kept:
        for cron_id, active in kept:
            state = "active" if active else "inactive"
            lines.append(f"{table}: left {module}.{name} (cron #{cron_id}) as it was: {state}")
    else:
        lines.append(f"{table}: no {module}.{name} cron found")
    return lines


def _flag(schema: _Schema) -> list[str]:
    table = "ir_config_parameter"
    if not schema.has(table, "key", "value"):
        return [schema.missing(table, "key", "value")]
    conn = schema.conn
    tbl = schema.table(table)
    cols = schema.columns(table)
    has_type = "type" in cols
    current = _exec(
        conn,
        "read neutralization flag",
        _q(
            "SELECT {value}{type} FROM {t} WHERE {key} = %s",
            "value",
            "key",
            t=tbl,
            type=_q(", {type}", "type") if has_type else sql.SQL(""),
        ),
        (NEUTRALIZED_KEY,),
    ).fetchall()
    if not current:
        _insert(
            schema,
            "set neutralization flag",
            table,
            {"key": NEUTRALIZED_KEY, "value": "true"},
            {"type": "str"},
        )
        return [f"{table}: inserted {NEUTRALIZED_KEY} = 'true'"]
    if all(r[0] == "true" and (not has_type or r[1] == "str") for r in current):
        return [f"{table}: {NEUTRALIZED_KEY} already 'true'"]
    sets: list[sql.Composable] = [_q("{value} = 'true'", "value")]
    if has_type:
        sets.append(_q("{type} = 'str'", "type"))
    if "write_date" in cols:
        sets.append(_q("{write_date} = {now}", "write_date", now=_NOW_UTC))
    _exec(
        conn,
        "set neutralization flag",
        _q("UPDATE {t} SET {sets} WHERE {key} = %s", "key", t=tbl, sets=sql.SQL(", ").join(sets)),
        (NEUTRALIZED_KEY,),
    )
    return [f"{table}: set {NEUTRALIZED_KEY} = 'true' (was {current[0][0]!r})"]


def _update_rule(
    schema: _Schema,
    table: str,
    needs: tuple[str, ...],
    step: str,
    query: str,
    params: Sequence[Any],
    done: str,
) -> list[str]:
    """One ``UPDATE`` rule: skipped when ``needs`` are absent; ``done`` gets the row count."""
    if not schema.has(table, *needs):
        return [schema.missing(table, *needs)]
    statement = _q(query, *needs, table=schema.table(table))
    cur = _exec(schema.conn, step, statement, params)
    return [f"{table}: {done.format(n=cur.rowcount, s='' if cur.rowcount == 1 else 's')}"]


def _webhooks(schema: _Schema) -> list[str]:
    return _update_rule(
        schema,
        "ir_act_server",
        ("state", "webhook_url"),
        "disable webhooks",
        "UPDATE {table} SET {webhook_url} = %s "
        "WHERE {state} = 'webhook' AND {webhook_url} IS DISTINCT FROM %s",
        (WEBHOOK_URL, WEBHOOK_URL),
        f"replaced webhook_url of {{n}} webhook server action{{s}} with '{WEBHOOK_URL}'",
    )


def _banner(schema: _Schema) -> list[str]:
    return _update_rule(
        schema,
        "ir_ui_view",
        ("key", "active"),
        "activate neutralization banner",
        "UPDATE {table} SET {active} = true WHERE {key} = %s AND {active} IS DISTINCT FROM true",
        (BANNER_VIEW_KEY,),
        f"activated {{n}} view{{s}} {BANNER_VIEW_KEY} (the 'neutralized' banner)",
    )


def _templates(schema: _Schema) -> list[str]:
    return _update_rule(
        schema,
        "mail_template",
        ("mail_server_id",),
        "detach mail templates",
        "UPDATE {table} SET {mail_server_id} = NULL WHERE {mail_server_id} IS NOT NULL",
        (),
        "detached {n} mail template{s} from their outgoing mail server",
    )


def _fetchmail(schema: _Schema) -> list[str]:
    return _update_rule(
        schema,
        "fetchmail_server",
        ("active",),
        "deactivate fetchmail servers",
        "UPDATE {table} SET {active} = false WHERE {active} IS DISTINCT FROM false",
        (),
        "deactivated {n} incoming mail (fetchmail) server{s}",
    )


def _web_push(schema: _Schema) -> list[str]:
    lines: list[str] = []
    if schema.has("ir_config_parameter", "key"):
        cur = _exec(
            schema.conn,
            "delete web push keys",
            _q(
                "DELETE FROM {t} WHERE {key} = ANY(%s)",
                "key",
                t=schema.table("ir_config_parameter"),
            ),
            (list(WEB_PUSH_KEYS),),
        )
        if cur.rowcount:
            lines.append(
                f"ir_config_parameter: deleted {_plural(cur.rowcount, 'web push / SFU key')}"
            )
    for table, cascade in (("mail_notification_web_push", False), ("mail_partner_device", True)):
        if not schema.columns(table):
            continue
        tbl = schema.table(table)
        count = _exec(
            schema.conn, f"empty {table}", _q("SELECT count(*) FROM {t}", t=tbl)
        ).fetchone()
        _exec(
            schema.conn,
            f"empty {table}",
            _q(
                "TRUNCATE {t}{cascade}",
                t=tbl,
                cascade=sql.SQL(" CASCADE") if cascade else sql.SQL(""),
            ),
        )
        lines.append(f"{table}: emptied ({_plural(count[0] if count else 0, 'row')})")
    return lines


def _payment(schema: _Schema) -> list[str]:
    table = "payment_provider"
    if schema.has(table, "is_live"):
        return _update_rule(
            schema,
            table,
            ("is_live",),
            "disable live payment providers",
            "UPDATE {table} SET {is_live} = false WHERE {is_live} IS DISTINCT FROM false",
            (),
            "set is_live = false on {n} payment provider{s}",
        )
    if schema.has(table, "state"):
        return _update_rule(
            schema,
            table,
            ("state",),
            "disable live payment providers",
            "UPDATE {table} SET {state} = 'disabled' WHERE {state} NOT IN ('test', 'disabled')",
            (),
            "disabled {n} payment provider{s} that were neither 'test' nor 'disabled'",
        )
    if not schema.columns(table):
        return [schema.missing(table)]
    return [f"{table}: skipped, neither an is_live nor a state column"]


def neutralize(conn: psycopg.Connection[Any]) -> list[str]:
    """Neutralize the Odoo database of ``conn`` in its current transaction; commit is yours.

    Returns one human-readable line per rule: what it changed (with row counts), or why it
    was skipped. Raises :class:`OperationError` when a statement fails; the transaction is
    then aborted and must be rolled back.
    """
    schema = _Schema(conn)
    lines: list[str] = []
    # base
    lines += _mail_servers(schema)
    lines += _crons(schema)
    lines += _flag(schema)
    lines += _webhooks(schema)
    # web
    lines += _banner(schema)
    # mail (fetchmail is part of mail since Odoo 16)
    lines += _templates(schema)
    lines += _fetchmail(schema)
    lines += _web_push(schema)
    # payment
    lines += _payment(schema)
    return lines


def _get_param(schema: _Schema, key: str) -> str | None:
    row = _exec(
        schema.conn,
        f"read {key}",
        _q(
            "SELECT {value} FROM {t} WHERE {key} = %s LIMIT 1",
            "value",
            "key",
            t=schema.table("ir_config_parameter"),
        ),
        (key,),
    ).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def _set_param(schema: _Schema, key: str, value: str) -> None:
    table = "ir_config_parameter"
    cols = schema.columns(table)
    sets: list[sql.Composable] = [_q("{value} = %s", "value")]
    if "write_date" in cols:
        sets.append(_q("{write_date} = {now}", "write_date", now=_NOW_UTC))
    cur = _exec(
        schema.conn,
        f"set {key}",
        _q(
            "UPDATE {t} SET {sets} WHERE {key} = %s",
            "key",
            t=schema.table(table),
            sets=sql.SQL(", ").join(sets),
        ),
        (value, key),
    )
    if cur.rowcount == 0:
        _insert(schema, f"set {key}", table, {"key": key, "value": value}, {"type": "str"})


def new_identity(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """Give the database a fresh ``database.uuid`` and ``database.secret`` (both uuid4).

    Runs in the caller's transaction. Returns ``{"old_uuid": ..., "new_uuid": ...}`` for the
    evidence (``old_uuid`` is ``""`` when there was none); the secret is never returned.
    """
    schema = _Schema(conn)
    if not schema.has("ir_config_parameter", "key", "value"):
        raise OperationError(
            f"Cannot give the database a new identity: no ir_config_parameter table with "
            f"key and value in schema {schema.name}.",
            hint="Is this an Odoo database?",
        )
    old = _get_param(schema, "database.uuid")
    new = str(uuid.uuid4())
    _set_param(schema, "database.uuid", new)
    _set_param(schema, "database.secret", str(uuid.uuid4()))
    return {"old_uuid": old or "", "new_uuid": new}


def is_neutralized(conn: psycopg.Connection[Any]) -> bool:
    """True when ``database.is_neutralized`` is set to a true value (Odoo's ``str2bool``)."""
    schema = _Schema(conn)
    if not schema.has("ir_config_parameter", "key", "value"):
        return False
    value = _get_param(schema, NEUTRALIZED_KEY)
    return value is not None and value.strip().lower() in _TRUE
