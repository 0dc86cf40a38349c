"""The Odoo-shaped schema of :mod:`liftgate.sandbox.odoo_sample` (tables, columns, indexes)."""

from __future__ import annotations

from typing import Literal

import psycopg
from psycopg import sql

__all__ = ["ODOO_VERSION", "PaymentVariant", "create_schema"]

PaymentVariant = Literal["state", "is_live"]

ODOO_VERSION = "17.0"

# -- schema -------------------------------------------------------------------------------

TS = "timestamp without time zone"

# (column, type + constraints). Types follow Odoo's ORM; constraints are Odoo's NOT NULLs.
_Columns = list[tuple[str, str]]

_AUDIT: _Columns = [
    ("create_uid", "integer"),
    ("create_date", TS),
    ("write_uid", "integer"),
    ("write_date", TS),
]

_BASE_TABLES: list[tuple[str, _Columns]] = [
    (
        "res_country",
        [
            ("name", "jsonb NOT NULL"),
            ("code", "varchar(2) UNIQUE"),
            ("phone_code", "integer"),
        ],
    ),
    (
        "res_partner",
        [
            ("name", "varchar"),
            ("complete_name", "varchar"),
            ("company_id", "integer"),
            ("type", "varchar"),
            ("ref", "varchar"),
            ("lang", "varchar"),
            ("tz", "varchar"),
            ("email", "varchar"),
            ("phone", "varchar"),
            ("mobile", "varchar"),
            ("street", "varchar"),
            ("street2", "varchar"),
            ("city", "varchar"),
            ("zip", "varchar"),
            ("country_id", "integer REFERENCES res_country(id) ON DELETE RESTRICT"),
            ("comment", "text"),
            ("is_company", "boolean"),
            ("active", "boolean"),
            ("parent_id", "integer REFERENCES res_partner(id) ON DELETE SET NULL"),
            ("commercial_partner_id", "integer REFERENCES res_partner(id) ON DELETE SET NULL"),
            ("function", "varchar"),
            ("website", "varchar"),
            ("vat", "varchar"),
            ("email_normalized", "varchar"),
            ("partner_share", "boolean"),
            ("employee", "boolean"),
            ("color", "integer"),
            ("message_bounce", "integer"),
            ("user_id", "integer"),
        ],
    ),
    (
        "res_company",
        [
            ("name", "varchar NOT NULL UNIQUE"),
            ("partner_id", "integer NOT NULL REFERENCES res_partner(id) ON DELETE RESTRICT"),
            ("email", "varchar"),
            ("phone", "varchar"),
            ("sequence", "integer"),
            ("active", "boolean"),
        ],
    ),
    (
        "res_users",
        [
            ("login", "varchar NOT NULL UNIQUE"),
            ("password", "varchar"),
            ("partner_id", "integer NOT NULL REFERENCES res_partner(id) ON DELETE RESTRICT"),
            ("company_id", "integer NOT NULL REFERENCES res_company(id) ON DELETE RESTRICT"),
            ("active", "boolean"),
            ("share", "boolean"),
        ],
    ),
    (
        "ir_module_module",
        [
            ("name", "varchar NOT NULL UNIQUE"),
            ("shortdesc", "jsonb"),
            ("author", "varchar"),
            ("state", "varchar(16)"),
            ("latest_version", "varchar"),
            ("published_version", "varchar"),
            ("license", "varchar(32)"),
            ("application", "boolean"),
            ("auto_install", "boolean"),
            ("demo", "boolean"),
        ],
    ),
    (
        "ir_model_data",
        [
            ("module", "varchar NOT NULL"),
            ("name", "varchar NOT NULL"),
            ("model", "varchar NOT NULL"),
            ("res_id", "integer"),
            ("noupdate", "boolean"),
        ],
    ),
    (
        "ir_config_parameter",
        [
            ("key", "varchar NOT NULL UNIQUE"),
            ("value", "text NOT NULL"),
        ],
    ),
    (
        "ir_act_server",
        [
            ("name", "jsonb NOT NULL"),
            ("type", "varchar NOT NULL"),
            ("usage", "varchar NOT NULL"),
            ("state", "varchar NOT NULL"),
            ("model_id", "integer"),
            ("model_name", "varchar"),
            ("code", "text"),
            ("webhook_url", "varchar"),
            ("sequence", "integer"),
        ],
    ),
    (
        "ir_cron",
        [
            (
                "ir_actions_server_id",
                "integer NOT NULL REFERENCES ir_act_server(id) ON DELETE RESTRICT",
            ),
            ("cron_name", "varchar"),
            ("user_id", "integer NOT NULL REFERENCES res_users(id) ON DELETE RESTRICT"),
            ("active", "boolean"),
            ("interval_number", "integer"),
            ("interval_type", "varchar"),
            ("numbercall", "integer"),
            ("doall", "boolean"),
            ("nextcall", f"{TS} NOT NULL"),
            ("lastcall", TS),
            ("priority", "integer"),
        ],
    ),
    (
        "ir_mail_server",
        [
            ("name", "varchar NOT NULL"),
            ("from_filter", "varchar"),
            ("smtp_host", "varchar"),
            ("smtp_port", "integer NOT NULL"),
            ("smtp_authentication", "varchar NOT NULL"),
            ("smtp_user", "varchar"),
            ("smtp_pass", "varchar"),
            ("smtp_encryption", "varchar NOT NULL"),
            ("smtp_debug", "boolean"),
            ("sequence", "integer"),
            ("active", "boolean"),
        ],
    ),
    (
        "ir_attachment",
        [
            ("name", "varchar NOT NULL"),
            ("description", "text"),
            ("res_model", "varchar"),
            ("res_field", "varchar"),
            ("res_id", "integer"),
            ("company_id", "integer REFERENCES res_company(id) ON DELETE SET NULL"),
            ("type", "varchar NOT NULL"),
            ("url", "varchar(1024)"),
            ("public", "boolean"),
            ("access_token", "varchar"),
            ("db_datas", "bytea"),
            ("store_fname", "varchar"),
            ("file_size", "integer"),
            ("checksum", "varchar(40)"),
            ("mimetype", "varchar"),
            ("index_content", "text"),
        ],
    ),
    (
        "ir_ui_view",
        [
            ("name", "varchar NOT NULL"),
            ("key", "varchar"),
            ("type", "varchar"),
            ("model", "varchar"),
            ("arch_db", "jsonb"),
            ("priority", "integer NOT NULL"),
            ("mode", "varchar NOT NULL"),
            ("active", "boolean"),
        ],
    ),
]

_MAIL_TABLES: list[tuple[str, _Columns]] = [
    (
        "mail_template",
        [
            ("name", "jsonb"),
            ("model", "varchar"),
            ("subject", "jsonb"),
            ("email_from", "varchar"),
            ("body_html", "jsonb"),
            ("mail_server_id", "integer REFERENCES ir_mail_server(id) ON DELETE SET NULL"),
            ("auto_delete", "boolean"),
            ("active", "boolean"),
        ],
    ),
    (
        "mail_message",
        [
            ("subject", "varchar"),
            ("body", "text"),
            ("model", "varchar"),
            ("res_id", "integer"),
            ("record_name", "varchar"),
            ("message_type", "varchar NOT NULL"),
            ("email_from", "varchar"),
            ("author_id", "integer REFERENCES res_partner(id) ON DELETE SET NULL"),
            ("date", TS),
        ],
    ),
]

_FETCHMAIL_TABLE: tuple[str, _Columns] = (
    "fetchmail_server",
    [
        ("name", "varchar NOT NULL"),
        ("active", "boolean"),
        ("state", "varchar"),
        ("server", "varchar"),
        ("port", "integer"),
        ("server_type", "varchar NOT NULL"),
        ("is_ssl", "boolean"),
        ("attach", "boolean"),
        ("original", "boolean"),
        ("date", TS),
        ("user", "varchar"),
        ("password", "varchar"),
        ("priority", "integer"),
    ],
)


def _payment_table(variant: PaymentVariant) -> tuple[str, _Columns]:
    live: _Columns = (
        [("state", "varchar NOT NULL")] if variant == "state" else [("is_live", "boolean")]
    )
    return (
        "payment_provider",
        [
            ("name", "jsonb NOT NULL"),
            ("sequence", "integer"),
            ("code", "varchar NOT NULL"),
            *live,
            ("company_id", "integer NOT NULL REFERENCES res_company(id) ON DELETE RESTRICT"),
            ("is_published", "boolean"),
        ],
    )


# (index name, table, columns) -- the indexes Odoo creates on these columns.
_INDEXES: list[tuple[str, str, tuple[str, ...]]] = [
    ("ir_model_data_module_name_uniq_index", "ir_model_data", ("module", "name")),
    ("ir_model_data_model_res_id_index", "ir_model_data", ("model", "res_id")),
    ("ir_attachment_res_idx", "ir_attachment", ("res_model", "res_id")),
    ("ir_attachment_checksum_index", "ir_attachment", ("checksum",)),
    ("ir_attachment_store_fname_index", "ir_attachment", ("store_fname",)),
    ("mail_message_model_res_id_idx", "mail_message", ("model", "res_id")),
    ("res_partner_email_index", "res_partner", ("email",)),
]


def create_schema(
    conninfo: str,
    *,
    with_mail: bool = True,
    with_payment: bool = True,
    with_fetchmail: bool = True,
    payment_variant: PaymentVariant = "state",
) -> None:
    """Create the Odoo tables liftgate's backup, restore and neutralization touch.

    The module options leave that module's tables out, as in a database where the module
    was never installed.
    """
    if payment_variant not in ("state", "is_live"):
        raise ValueError(f"payment_variant must be 'state' or 'is_live', not {payment_variant!r}")
    tables = list(_BASE_TABLES)
    if with_mail:
        tables += _MAIL_TABLES
    if with_payment:
        tables.append(_payment_table(payment_variant))
    if with_fetchmail:
        tables.append(_FETCHMAIL_TABLE)
    names = {name for name, _ in tables}
    with psycopg.connect(conninfo) as conn:
        for table, columns in tables:
            parts: list[sql.Composable] = [sql.SQL("id SERIAL NOT NULL PRIMARY KEY")]
            parts += [
                sql.SQL("{} {}").format(sql.Identifier(col), sql.SQL(ddl))
                for col, ddl in (*columns, *_AUDIT)
            ]
            conn.execute(
                sql.SQL("CREATE TABLE {} ({})").format(
                    sql.Identifier(table), sql.SQL(", ").join(parts)
                )
            )
        conn.execute(
            sql.SQL(
                "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {}(id) "
                "ON DELETE SET NULL"
            ).format(
                sql.Identifier("res_partner"),
                sql.Identifier("res_partner_company_id_fkey"),
                sql.Identifier("company_id"),
                sql.Identifier("res_company"),
            )
        )
        for index, table, cols in _INDEXES:
            if table not in names:
                continue
            unique = sql.SQL("UNIQUE ") if index.endswith("uniq_index") else sql.SQL("")
            conn.execute(
                sql.SQL("CREATE {}INDEX {} ON {} ({})").format(
                    unique,
                    sql.Identifier(index),
                    sql.Identifier(table),
                    sql.SQL(", ").join(map(sql.Identifier, cols)),
                )
            )
