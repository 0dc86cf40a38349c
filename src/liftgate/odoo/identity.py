"""Production's identity and outgoing side effects, carried from blue to green.

A green built from a copy of staging is a different database: another ``database.uuid`` and
``database.secret`` (sessions, signed links, the Enterprise subscription), and — when staging
was neutralized — no outgoing side effects: mail servers off plus a dummy one, crons off,
fetchmail off, webhooks replaced, payment providers disabled, the "neutralized" banner on,
the web push keys gone, ``database.is_neutralized`` set. Before such a green takes
production's traffic it must BE production:

* :func:`read_identity` / :func:`apply_identity` — the ``ir_config_parameter`` keys of
  :data:`IDENTITY_KEYS`, set exactly as production has them (a key production lacks is
  deleted). The result holds ``database.secret``: never write it anywhere.
* :func:`read_outgoing` / :func:`restore_outgoing` — everything ``neutralize`` changes, read
  from production and put back on green, matching records by their XML id (``ir_model_data``)
  and by name where they have none:

  - ``ir_mail_server``: green's servers are replaced by production's (every column but
    ``id``; a row with production's id and name is updated in place, then one with the same
    name, else production's row is inserted); green's other servers — neutralization's dummy
    ``invalid`` server among them — are deleted. ``create_uid``/``write_uid`` are copied
    when that user exists in green, else left NULL;
  - ``mail_template.mail_server_id`` as production had it (neutralize empties it);
  - ``fetchmail_server.active`` as production had it (matched by name, server and user);
  - ``ir_cron``: ``active`` exactly as production had it, and its schedule (``nextcall``,
    ``lastcall``, ``numbercall`` where they exist) so a job blue just ran does not run again
    at once on green;
  - ``ir_act_server.webhook_url`` of production's webhook actions;
  - ``payment_provider`` ``state`` / ``is_live``;
  - the ``web.neutralize_banner`` view's ``active`` flag;
  - the web push / SFU keys and ``database.is_neutralized`` in ``ir_config_parameter`` (set
    as production has them, deleted where production has none).

  Rows of ``mail_partner_device`` / ``mail_notification_web_push`` that neutralize emptied
  are data, not configuration: not restored (said in ``notes``).

:func:`restore_outgoing` runs in the caller's transaction and does not commit. It returns
what it changed and, in ``unmatched``, every production record it could not find in green
(a cron, a server, a webhook, a provider, a template link): the caller must then roll back
and refuse. ``extra`` lists green's own records production does not have (left as they
were, i.e. neutralized). Values are carried as PostgreSQL text and cast back to green's
column types, so :func:`read_outgoing`'s result is JSON-serializable — and holds
production's SMTP and IMAP passwords: keep it in memory or redact it.

Tables or columns a database does not have are skipped (and said so), like neutralize does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from liftgate.errors import OperationError, UsageError
from liftgate.odoo.neutralize import (
    BANNER_VIEW_KEY,
    DUMMY_SERVER_NAME,
    DUMMY_SMTP_HOST,
    DUMMY_SMTP_PORT,
    NEUTRALIZED_KEY,
    WEB_PUSH_KEYS,
    is_neutralized,
)

__all__ = [
    "IDENTITY_KEYS",
    "apply_identity",
    "read_identity",
    "read_outgoing",
    "restore_outgoing",
    "same_identity",
]

IDENTITY_KEYS = (
    "database.uuid",
    "database.secret",
    "database.create_date",
    "web.base.url",
    "database.enterprise_code",
    "database.expiration_date",
    "database.expiration_reason",
)
PARAMS = "ir_config_parameter"
_AUDIT_UIDS = ("create_uid", "write_uid")
_CRON_SCHEDULE = ("nextcall", "lastcall", "numbercall")
_FETCHMAIL_KEY = ("name", "server_type", "server", "port", "user")
_PAYMENT_FIELDS = ("state", "is_live")
_NOW = sql.SQL("(now() AT TIME ZONE 'UTC')")


class _Db:
    """The tables and columns (with their SQL types) of the connection's current schema."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        row = conn.execute("SELECT current_schema()").fetchone()
        if row is None or row[0] is None:
            raise OperationError("the connection has no current schema (set search_path)")
        self.schema: str = row[0]
        self._cols: dict[str, dict[str, tuple[str, bool, bool]]] = {}

    def columns(self, table: str) -> dict[str, tuple[str, bool, bool]]:
        """column -> (SQL type, NOT NULL, has a default)."""
        if table not in self._cols:
            rows = self.conn.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
                "(a.atthasdef OR a.attidentity <> '') FROM pg_catalog.pg_attribute a "
                "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
                "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p') "
                "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                (self.schema, table),
            ).fetchall()
            self._cols[table] = {r[0]: (str(r[1]), bool(r[2]), bool(r[3])) for r in rows}
        return self._cols[table]

    def has(self, table: str, *columns: str) -> bool:
        cols = self.columns(table)
        return bool(cols) and all(c in cols for c in columns)

    def t(self, table: str) -> sql.Identifier:
        return sql.Identifier(self.schema, table)

    def cast(self, table: str, column: str) -> sql.Composed:
        """``%s::<green's type of column>``."""
        return sql.SQL("%s::{}").format(sql.SQL(self.columns(table)[column][0]))

    def label(self, table: str, column: str, alias: str = "t") -> sql.Composed:
        """A text label of ``column`` (``en_US`` of a translated jsonb column)."""
        col = sql.Identifier(alias, column)
        if self.columns(table)[column][0] == "jsonb":
            return sql.SQL("coalesce({c} ->> 'en_US', {c}::text)").format(c=col)
        return sql.SQL("{}::text").format(col)


# -- identity -------------------------------------------------------------------------------


def _require_params(db: _Db) -> None:
    if not db.has(PARAMS, "key", "value"):
        raise UsageError(
            f"no {PARAMS} table with key and value in schema {db.schema}: not an Odoo database"
        )


def _params(db: _Db, keys: Iterable[str]) -> dict[str, str]:
    rows = db.conn.execute(
        sql.SQL("SELECT {k}, {v} FROM {t} WHERE {k} = ANY(%s) ORDER BY {id}").format(
            k=sql.Identifier("key"),
            v=sql.Identifier("value"),
            t=db.t(PARAMS),
            id=sql.Identifier("id") if "id" in db.columns(PARAMS) else sql.Identifier("key"),
        ),
        (list(keys),),
    ).fetchall()
    return {str(k): str(v) for k, v in rows if v is not None}


def _set_param(db: _Db, key: str, value: str) -> None:
    cols = db.columns(PARAMS)
    sets: list[sql.Composable] = [sql.SQL("{} = %s").format(sql.Identifier("value"))]
    if "write_date" in cols:
        sets.append(sql.SQL("{} = {}").format(sql.Identifier("write_date"), _NOW))
    cur = db.conn.execute(
        sql.SQL("UPDATE {} SET {} WHERE {} = %s").format(
            db.t(PARAMS), sql.SQL(", ").join(sets), sql.Identifier("key")
        ),
        (value, key),
    )
    if cur.rowcount:
        return
    names: list[sql.Composable] = [sql.Identifier("key"), sql.Identifier("value")]
    values: list[sql.Composable] = [sql.Placeholder(), sql.Placeholder()]
    params: list[Any] = [key, value]
    for stamp in ("create_date", "write_date"):
        if stamp in cols:
            names.append(sql.Identifier(stamp))
            values.append(_NOW)
    if "type" in cols:
        names.append(sql.Identifier("type"))
        values.append(sql.Placeholder())
        params.append("str")
    db.conn.execute(
        sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            db.t(PARAMS), sql.SQL(", ").join(names), sql.SQL(", ").join(values)
        ),
        params,
    )


def _delete_params(db: _Db, keys: Sequence[str]) -> int:
    if not keys:
        return 0
    cur = db.conn.execute(
        sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)").format(db.t(PARAMS), sql.Identifier("key")),
        (list(keys),),
    )
    return cur.rowcount


def _sync_params(db: _Db, keys: Sequence[str], wanted: Mapping[str, str]) -> list[str]:
    """Make ``keys`` of ``ir_config_parameter`` exactly ``wanted`` (absent = deleted);
    returns one line per key changed (names only: values may be secrets)."""
    current = _params(db, keys)
    lines: list[str] = []
    for key in keys:
        if key in wanted:
            if current.get(key) != wanted[key]:
                _set_param(db, key, wanted[key])
                lines.append(f"{PARAMS}: set {key}" + ("" if key in current else " (added)"))
        elif key in current:
            _delete_params(db, [key])
            lines.append(f"{PARAMS}: deleted {key}")
    return lines


def read_identity(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """The :data:`IDENTITY_KEYS` present in ``ir_config_parameter`` (secret included)."""
    db = _Db(conn)
    _require_params(db)
    found = _params(db, IDENTITY_KEYS)
    return {k: found[k] for k in IDENTITY_KEYS if k in found}


def apply_identity(conn: psycopg.Connection[Any], identity: Mapping[str, str]) -> list[str]:
    """Make green's identity keys exactly ``identity`` (keys absent from it are deleted).

    Runs in the caller's transaction. Returns what changed (key names, never values).
    """
    unknown = sorted(set(identity) - set(IDENTITY_KEYS))
    if unknown:
        raise UsageError(f"not identity keys: {', '.join(unknown)}")
    if not identity.get("database.uuid"):
        raise UsageError("an identity without database.uuid cannot be applied")
    db = _Db(conn)
    _require_params(db)
    return _sync_params(db, IDENTITY_KEYS, identity)


def same_identity(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    """Same values for every :data:`IDENTITY_KEYS` (a key absent from both is equal)."""
    return all(a.get(k) == b.get(k) for k in IDENTITY_KEYS)


# -- keys of records ------------------------------------------------------------------------


def _keys(
    db: _Db, table: str, model: str, label: sql.Composable | None, where: sql.Composable
) -> list[tuple[int, str]]:
    """(id, key) of ``table``'s rows in id order: ``xmlid:module.name`` when the record has
    an XML id, else ``name:<label>``; repeated keys get ``#2``, ``#3``..."""
    join: sql.Composable = sql.SQL("")
    xmlid: sql.Composable = sql.SQL("NULL::text")
    params: list[Any] = []
    if db.has("ir_model_data", "module", "name", "model", "res_id"):
        join = sql.SQL(
            " LEFT JOIN (SELECT {res_id} AS rid, min({module} || '.' || {name}) AS xmlid "
            "FROM {imd} WHERE {model} = %s AND {res_id} IS NOT NULL GROUP BY {res_id}) x "
            "ON x.rid = t.{id}"
        ).format(
            res_id=sql.Identifier("res_id"),
            module=sql.Identifier("module"),
            name=sql.Identifier("name"),
            model=sql.Identifier("model"),
            imd=db.t("ir_model_data"),
            id=sql.Identifier("id"),
        )
        xmlid = sql.SQL("x.xmlid")
        params.append(model)
    rows = db.conn.execute(
        sql.SQL("SELECT t.{id}, {xmlid}, {label} FROM {t} t{join}{where} ORDER BY t.{id}").format(
            id=sql.Identifier("id"),
            xmlid=xmlid,
            label=label
            if label is not None
            else sql.SQL("t.{}::text").format(sql.Identifier("id")),
            t=db.t(table),
            join=join,
            where=where,
        ),
        params,
    ).fetchall()
    seen: dict[str, int] = {}
    out: list[tuple[int, str]] = []
    for rid, xml, text in rows:
        base = f"xmlid:{xml}" if xml else f"name:{text}"
        seen[base] = seen.get(base, 0) + 1
        out.append((int(rid), base if seen[base] == 1 else f"{base}#{seen[base]}"))
    return out


def _name_label(db: _Db, table: str) -> sql.Composable | None:
    return db.label(table, "name") if "name" in db.columns(table) else None


def _cron_label(db: _Db) -> sql.Composable | None:
    if "cron_name" in db.columns("ir_cron"):
        return db.label("ir_cron", "cron_name")
    if db.has("ir_cron", "ir_actions_server_id") and db.has("ir_act_server", "id", "name"):
        name = sql.Identifier("a", "name")
        text = (
            sql.SQL("coalesce({c} ->> 'en_US', {c}::text)").format(c=name)
            if db.columns("ir_act_server")["name"][0] == "jsonb"
            else sql.SQL("{}::text").format(name)
        )
        return sql.SQL("(SELECT {text} FROM {a} a WHERE a.{id} = t.{fk})").format(
            text=text,
            a=db.t("ir_act_server"),
            id=sql.Identifier("id"),
            fk=sql.Identifier("ir_actions_server_id"),
        )
    return None


def _text_rows(
    db: _Db, table: str, columns: Sequence[str], ids: Sequence[int] | None = None
) -> dict[int, dict[str, str | None]]:
    """id -> {column: value as text} for ``table`` (only ``ids`` when given)."""
    if not columns:
        return {}
    where: sql.Composable = sql.SQL("")
    params: list[Any] = []
    if ids is not None:
        where = sql.SQL(" WHERE {} = ANY(%s)").format(sql.Identifier("id"))
        params.append(list(ids))
    rows = db.conn.execute(
        sql.SQL("SELECT {id}, {cols} FROM {t}{where} ORDER BY {id}").format(
            id=sql.Identifier("id"),
            cols=sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in columns),
            t=db.t(table),
            where=where,
        ),
        params,
    ).fetchall()
    return {int(r[0]): dict(zip(columns, r[1:], strict=True)) for r in rows}


# -- reading production's outgoing side ------------------------------------------------------


def _read_mail_servers(db: _Db) -> dict[str, Any] | None:
    table = "ir_mail_server"
    if not db.has(table, "id"):
        return None
    cols = {c: t for c, (t, _, _) in db.columns(table).items() if c != "id"}
    rows = _text_rows(db, table, list(cols))
    return {"columns": cols, "ids": list(rows), "rows": list(rows.values())}


def _read_templates(db: _Db, server_ids: Sequence[int]) -> dict[str, int | None] | None:
    table = "mail_template"
    if not db.has(table, "id", "mail_server_id"):
        return None
    keys = _keys(db, table, "mail.template", _name_label(db, table), sql.SQL(""))
    links = _text_rows(db, table, ["mail_server_id"])
    index = {str(sid): i for i, sid in enumerate(server_ids)}
    out: dict[str, int | None] = {}
    for rid, key in keys:
        server = links.get(rid, {}).get("mail_server_id")
        out[key] = None if server is None else index.get(server)
    return out


def _read_fetchmail(db: _Db) -> list[dict[str, str | None]] | None:
    table = "fetchmail_server"
    if not db.has(table, "id", "active"):
        return None
    cols = [c for c in db.columns(table) if c != "id"]
    return list(_text_rows(db, table, cols).values())


def _read_crons(db: _Db) -> dict[str, dict[str, str | None]] | None:
    table = "ir_cron"
    if not db.has(table, "id", "active"):
        return None
    keys = _keys(db, table, "ir.cron", _cron_label(db), sql.SQL(""))
    cols = ["active", *(c for c in _CRON_SCHEDULE if c in db.columns(table))]
    rows = _text_rows(db, table, cols)
    return {key: rows[rid] for rid, key in keys}


def _read_webhooks(db: _Db) -> dict[str, str | None] | None:
    table = "ir_act_server"
    if not db.has(table, "id", "state", "webhook_url"):
        return None
    where = sql.SQL(" WHERE t.{} = 'webhook'").format(sql.Identifier("state"))
    keys = _keys(db, table, "ir.actions.server", _name_label(db, table), where)
    urls = _text_rows(db, table, ["webhook_url"], [rid for rid, _ in keys])
    return {key: urls[rid]["webhook_url"] for rid, key in keys}


def _payment_label(db: _Db) -> sql.Composable | None:
    cols = db.columns("payment_provider")
    parts = [db.label("payment_provider", c) for c in ("code", "name") if c in cols]
    if not parts:
        return None
    return sql.SQL("concat_ws(' / ', {})").format(sql.SQL(", ").join(parts))


def _read_payment(db: _Db) -> dict[str, dict[str, str | None]] | None:
    table = "payment_provider"
    fields = [c for c in _PAYMENT_FIELDS if c in db.columns(table)]
    if not db.has(table, "id") or not fields:
        return None
    keys = _keys(db, table, "payment.provider", _payment_label(db), sql.SQL(""))
    rows = _text_rows(db, table, fields)
    return {key: rows[rid] for rid, key in keys}


def _read_banner(db: _Db) -> bool | None:
    if not db.has("ir_ui_view", "key", "active"):
        return None
    row = db.conn.execute(
        sql.SQL("SELECT bool_or({a}) FROM {t} WHERE {k} = %s").format(
            a=sql.Identifier("active"), t=db.t("ir_ui_view"), k=sql.Identifier("key")
        ),
        (BANNER_VIEW_KEY,),
    ).fetchone()
    return None if row is None or row[0] is None else bool(row[0])


def read_outgoing(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Production's outgoing side (see the module docstring); JSON-serializable, with
    secrets (SMTP/IMAP passwords, web push private key) — keep it in memory.

    Keys: ``neutralized`` (bool), ``neutralized_flag`` (the raw parameter or None),
    ``mail_servers`` ({columns, ids, rows}), ``mail_templates`` (template key -> index of
    its server in ``mail_servers.rows`` or None), ``fetchmail_servers`` (rows),
    ``crons`` (cron key -> {active, nextcall, ...}), ``active_crons`` (sorted keys),
    ``webhooks`` (action key -> url), ``payment_providers`` (key -> {state/is_live}),
    ``banner_active``, ``config`` (web push keys present). A table the database lacks
    gives None.
    """
    db = _Db(conn)
    _require_params(db)
    servers = _read_mail_servers(db)
    crons = _read_crons(db)
    flag = _params(db, [NEUTRALIZED_KEY]).get(NEUTRALIZED_KEY)
    return {
        "neutralized": is_neutralized(conn),
        "neutralized_flag": flag,
        "mail_servers": servers,
        "mail_templates": _read_templates(db, servers["ids"] if servers else []),
        "fetchmail_servers": _read_fetchmail(db),
        "crons": crons,
        "active_crons": sorted(k for k, v in (crons or {}).items() if v["active"] == "true"),
        "webhooks": _read_webhooks(db),
        "payment_providers": _read_payment(db),
        "banner_active": _read_banner(db),
        "config": _params(db, WEB_PUSH_KEYS),
    }


# -- restoring it on green ------------------------------------------------------------------


class _Result:
    def __init__(self) -> None:
        self.changed: list[str] = []
        self.unmatched: list[str] = []
        self.extra: list[str] = []
        self.notes: list[str] = []

    def as_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "unmatched": self.unmatched,
            "extra": self.extra,
            "notes": self.notes,
            "complete": not self.unmatched,
        }


def _update(db: _Db, table: str, rid: int, values: Mapping[str, str | None]) -> None:
    sets = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(c), db.cast(table, c)) for c in values
    )
    db.conn.execute(
        sql.SQL("UPDATE {} SET {} WHERE {} = %s").format(db.t(table), sets, sql.Identifier("id")),
        [*values.values(), rid],
    )


def _insert(db: _Db, table: str, values: Mapping[str, str | None]) -> int:
    cols = db.columns(table)
    unfilled = sorted(
        c for c, (_, not_null, has_default) in cols.items()
        if not_null and not has_default and c not in values
    )  # fmt: skip
    if unfilled:
        raise OperationError(
            f"cannot insert production's row into green's {table}: its column(s) "
            f"{', '.join(unfilled)} need a value production has no column for"
        )
    row = db.conn.execute(
        sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING {}").format(
            db.t(table),
            sql.SQL(", ").join(map(sql.Identifier, values)),
            sql.SQL(", ").join(db.cast(table, c) for c in values),
            sql.Identifier("id"),
        ),
        list(values.values()),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _existing_users(db: _Db, rows: Iterable[Mapping[str, str | None]]) -> set[str]:
    wanted = {v for r in rows for c in _AUDIT_UIDS if (v := r.get(c)) is not None}
    if not wanted or not db.has("res_users", "id"):
        return set()
    found = db.conn.execute(
        sql.SQL("SELECT {id}::text FROM {t} WHERE {id} = ANY(%s::int[])").format(
            id=sql.Identifier("id"), t=db.t("res_users")
        ),
        (sorted(wanted),),
    ).fetchall()
    return {str(r[0]) for r in found}


def _restore_mail_servers(db: _Db, prod: dict[str, Any] | None, res: _Result) -> dict[int, int]:
    """Returns production row index -> green id."""
    table = "ir_mail_server"
    if prod is None:
        res.notes.append(f"{table}: production has none; green's left as they are")
        return {}
    if not db.has(table, "id"):
        if prod["rows"]:
            res.unmatched.append(f"{table}: green has no such table for production's servers")
        return {}
    gcols = db.columns(table)
    common = [c for c in prod["columns"] if c in gcols]
    for col in prod["columns"]:
        if col not in gcols:
            res.notes.append(f"{table}: production's column {col} has no place in green")
    green = _text_rows(db, table, common)
    users = _existing_users(db, prod["rows"])
    unmatched_green = dict(green)
    mapping: dict[int, int] = {}
    prod_ids: list[int] = [int(i) for i in prod["ids"]]
    # 1. same id and same name; 2. same name
    for i, row in enumerate(prod["rows"]):
        gid = prod_ids[i]
        if gid in unmatched_green and unmatched_green[gid].get("name") == row.get("name"):
            mapping[i] = gid
            del unmatched_green[gid]
    for i, row in enumerate(prod["rows"]):
        if i in mapping:
            continue
        for gid, grow in unmatched_green.items():
            if grow.get("name") == row.get("name"):
                mapping[i] = gid
                del unmatched_green[gid]
                break
    for i, row in enumerate(prod["rows"]):
        values = {c: row[c] for c in common}
        # a create/write user green does not have: NULL in a new row, green's own in a kept one
        absent = [c for c in _AUDIT_UIDS if values.get(c) is not None and values[c] not in users]
        name = row.get("name")
        if i in mapping:
            gid = mapping[i]
            diff = {c: v for c, v in values.items() if c not in absent and green[gid].get(c) != v}
            if diff:
                _update(db, table, gid, diff)
                res.changed.append(
                    f"{table}: set {', '.join(sorted(diff))} of server {name!r} (#{gid}) as "
                    "production has them"
                )
        else:
            mapping[i] = _insert(db, table, {**values, **dict.fromkeys(absent)})
            res.changed.append(f"{table}: added production's server {name!r} (#{mapping[i]})")
    if unmatched_green:
        db.conn.execute(
            sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)").format(db.t(table), sql.Identifier("id")),
            (sorted(unmatched_green),),
        )
        for gid, grow in sorted(unmatched_green.items()):
            dummy = (
                grow.get("name") == DUMMY_SERVER_NAME
                and grow.get("smtp_host") == DUMMY_SMTP_HOST
                and grow.get("smtp_port") == str(DUMMY_SMTP_PORT)
            )
            what = "neutralization's dummy server" if dummy else "green's own server"
            res.changed.append(f"{table}: deleted {what} {grow.get('name')!r} (#{gid})")
    return mapping


def _restore_templates(
    db: _Db, prod: dict[str, int | None] | None, servers: dict[int, int], res: _Result
) -> None:
    table = "mail_template"
    if prod is None:
        return
    if not db.has(table, "id", "mail_server_id"):
        if any(v is not None for v in prod.values()):
            res.unmatched.append(f"{table}: green has no such table for production's links")
        return
    keys = _keys(db, table, "mail.template", _name_label(db, table), sql.SQL(""))
    green = {key: rid for rid, key in keys}
    links = _text_rows(db, table, ["mail_server_id"])
    set_count = 0
    for key, index in prod.items():
        rid = green.get(key)
        if rid is None:
            if index is not None:
                res.unmatched.append(f"{table}: production's template {key} is not in green")
            continue
        wanted = None if index is None else servers.get(index)
        if index is not None and wanted is None:
            res.unmatched.append(f"{table}: the server of template {key} was not restored")
            continue
        current = links.get(rid, {}).get("mail_server_id")
        if current != (None if wanted is None else str(wanted)):
            _update(db, table, rid, {"mail_server_id": None if wanted is None else str(wanted)})
            set_count += 1
    if set_count:
        res.changed.append(f"{table}: set mail_server_id of {set_count} template(s) as production")


def _fetchmail_key(row: Mapping[str, str | None], columns: Iterable[str]) -> str:
    return " | ".join(f"{c}={row.get(c)}" for c in _FETCHMAIL_KEY if c in columns)


def _restore_fetchmail(db: _Db, prod: list[dict[str, str | None]] | None, res: _Result) -> None:
    table = "fetchmail_server"
    if prod is None:
        return
    if not db.has(table, "id", "active"):
        if prod:
            res.unmatched.append(f"{table}: green has no such table for production's servers")
        return
    key_cols = [c for c in _FETCHMAIL_KEY if c in db.columns(table) and (not prod or c in prod[0])]
    green = _text_rows(db, table, list(dict.fromkeys(["active", *key_cols])))
    by_key: dict[str, list[int]] = {}
    for gid, grow in green.items():
        by_key.setdefault(_fetchmail_key(grow, key_cols), []).append(gid)
    for row in prod:
        key = _fetchmail_key(row, key_cols)
        ids = by_key.get(key)
        if not ids:
            res.unmatched.append(
                f"{table}: production's server {row.get('name')!r} is not in green"
            )
            continue
        gid = ids.pop(0)
        if green[gid]["active"] != row.get("active"):
            _update(db, table, gid, {"active": row.get("active")})
            res.changed.append(
                f"{table}: set active = {row.get('active')} on {row.get('name')!r} (#{gid})"
            )
    for ids in by_key.values():
        for gid in ids:
            res.extra.append(
                f"{table}: green's own server #{gid} left as it is (active = "
                f"{green[gid]['active']})"
            )


def _restore_crons(db: _Db, prod: dict[str, dict[str, str | None]] | None, res: _Result) -> None:
    table = "ir_cron"
    if prod is None:
        return
    if not db.has(table, "id", "active"):
        if prod:
            res.unmatched.append(f"{table}: green has no such table for production's crons")
        return
    cols = ["active", *(c for c in _CRON_SCHEDULE if c in db.columns(table))]
    green_keys = _keys(db, table, "ir.cron", _cron_label(db), sql.SQL(""))
    rows = _text_rows(db, table, cols)
    green = {key: rid for rid, key in green_keys}
    activated = deactivated = rescheduled = 0
    for key, wanted in prod.items():
        rid = green.pop(key, None)
        if rid is None:
            res.unmatched.append(f"{table}: production's cron {key} is not in green")
            continue
        diff = {c: wanted[c] for c in cols if c in wanted and rows[rid][c] != wanted[c]}
        if diff:
            _update(db, table, rid, diff)
            if "active" in diff:
                if diff["active"] == "true":
                    activated += 1
                else:
                    deactivated += 1
            if set(diff) - {"active"}:
                rescheduled += 1
    if activated or deactivated or rescheduled:
        res.changed.append(
            f"{table}: {activated} cron(s) activated, {deactivated} deactivated, "
            f"{rescheduled} given production's schedule"
        )
    for key, rid in green.items():
        res.extra.append(
            f"{table}: green's own cron {key} (#{rid}) left as it is "
            f"(active = {rows[rid]['active']})"
        )


def _restore_keyed(
    db: _Db,
    table: str,
    model: str,
    label: sql.Composable | None,
    where: sql.Composable,
    prod: Mapping[str, Mapping[str, str | None]] | None,
    what: str,
    res: _Result,
) -> None:
    if prod is None:
        return
    fields = sorted({c for v in prod.values() for c in v})
    if not db.has(table, "id", *fields):
        if prod:
            res.unmatched.append(f"{table}: green lacks the table or its {', '.join(fields)}")
        return
    green = {key: rid for rid, key in _keys(db, table, model, label, where)}
    rows = _text_rows(db, table, fields, list(green.values()))
    count = 0
    for key, wanted in prod.items():
        rid = green.pop(key, None)
        if rid is None:
            res.unmatched.append(f"{table}: production's {what} {key} is not in green")
            continue
        diff = {c: v for c, v in wanted.items() if rows[rid][c] != v}
        if diff:
            _update(db, table, rid, diff)
            count += 1
    if count:
        res.changed.append(f"{table}: {count} {what}(s) set as production has them")
    for key, rid in green.items():
        res.extra.append(f"{table}: green's own {what} {key} (#{rid}) left as it is")


def _restore_banner(db: _Db, prod: bool | None, res: _Result) -> None:
    if not db.has("ir_ui_view", "key", "active"):
        return
    wanted = bool(prod)
    cur = db.conn.execute(
        sql.SQL("UPDATE {t} SET {a} = %s WHERE {k} = %s AND {a} IS DISTINCT FROM %s").format(
            t=db.t("ir_ui_view"), a=sql.Identifier("active"), k=sql.Identifier("key")
        ),
        (wanted, BANNER_VIEW_KEY, wanted),
    )
    if cur.rowcount:
        res.changed.append(f"ir_ui_view: set active = {wanted} on {BANNER_VIEW_KEY}")


def restore_outgoing(conn: psycopg.Connection[Any], outgoing: Mapping[str, Any]) -> dict[str, Any]:
    """Put production's outgoing side (:func:`read_outgoing`) on green; see the module
    docstring. In the caller's transaction, no commit.

    Returns ``changed``, ``unmatched`` (refuse when not empty), ``extra``, ``notes`` (lists
    of one-line texts, no secret values) and ``complete`` (no unmatched).
    """
    db = _Db(conn)
    _require_params(db)
    res = _Result()
    servers = _restore_mail_servers(db, outgoing.get("mail_servers"), res)
    _restore_templates(db, outgoing.get("mail_templates"), servers, res)
    _restore_fetchmail(db, outgoing.get("fetchmail_servers"), res)
    _restore_crons(db, outgoing.get("crons"), res)
    webhooks = outgoing.get("webhooks")
    _restore_keyed(
        db,
        "ir_act_server",
        "ir.actions.server",
        _name_label(db, "ir_act_server"),
        sql.SQL(" WHERE t.{} = 'webhook'").format(sql.Identifier("state")),
        None if webhooks is None else {k: {"webhook_url": v} for k, v in webhooks.items()},
        "webhook action",
        res,
    )
    _restore_keyed(
        db,
        "payment_provider",
        "payment.provider",
        _payment_label(db),
        sql.SQL(""),
        outgoing.get("payment_providers"),
        "payment provider",
        res,
    )
    _restore_banner(db, outgoing.get("banner_active"), res)
    res.changed += _sync_params(db, WEB_PUSH_KEYS, outgoing.get("config") or {})
    flag = outgoing.get("neutralized_flag")
    res.changed += _sync_params(
        db, [NEUTRALIZED_KEY], {} if flag is None else {NEUTRALIZED_KEY: flag}
    )
    for table in ("mail_partner_device", "mail_notification_web_push"):
        if db.columns(table):
            res.notes.append(
                f"{table}: rows emptied by neutralization are data and were not restored "
                "(browsers subscribe again)"
            )
    return res.as_dict()
