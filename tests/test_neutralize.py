"""Odoo neutralization on a real PostgreSQL database shaped like Odoo's."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from liftgate.errors import OperationError
from liftgate.odoo.neutralize import (
    DUMMY_SERVER_NAME,
    WEBHOOK_URL,
    is_neutralized,
    neutralize,
    new_identity,
)
from liftgate.sandbox.odoo_sample import PaymentVariant, create_schema, populate, table_snapshot

MakeDb = Callable[..., str]


@pytest.fixture
def make_db(pg_dsn: str, tmp_path: Path) -> MakeDb:
    """Create + populate the Odoo schema in ``pg_dsn`` with the given options."""

    def make(
        *,
        with_mail: bool = True,
        with_payment: bool = True,
        with_fetchmail: bool = True,
        payment_variant: PaymentVariant = "state",
    ) -> str:
        create_schema(
            pg_dsn,
            with_mail=with_mail,
            with_payment=with_payment,
            with_fetchmail=with_fetchmail,
            payment_variant=payment_variant,
        )
        populate(pg_dsn, tmp_path / "filestore", partners=30, attachments=6)
        return pg_dsn

    return make


@pytest.fixture
def odoo_dsn(make_db: MakeDb) -> str:
    return make_db()


def run(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return neutralize(conn)  # leaving the block commits


def rows(dsn: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


def test_mail_servers_inactive_and_one_active_dummy(odoo_dsn: str) -> None:
    before = rows(odoo_dsn, "SELECT id FROM ir_mail_server ORDER BY id")
    lines = run(odoo_dsn)
    assert "ir_mail_server: deactivated 2 mail servers" in lines
    assert any(line.startswith("ir_mail_server: inserted the active dummy") for line in lines)
    old = rows(
        odoo_dsn,
        "SELECT active FROM ir_mail_server WHERE id = ANY(%s)",
        ([r[0] for r in before],),
    )
    assert old and all(r[0] is False for r in old)
    active = rows(
        odoo_dsn,
        "SELECT name, smtp_host, smtp_port, smtp_encryption, smtp_authentication, "
        "create_date IS NOT NULL FROM ir_mail_server WHERE active",
    )
    assert active == [(DUMMY_SERVER_NAME, "invalid", 1025, "none", "login", True)]


def test_only_the_base_autovacuum_cron_stays_active(odoo_dsn: str) -> None:
    lines = run(odoo_dsn)
    active = rows(
        odoo_dsn,
        "SELECT d.module, d.name FROM ir_cron c "
        "JOIN ir_model_data d ON d.model = 'ir.cron' AND d.res_id = c.id WHERE c.active",
    )
    assert active == [("base", "autovacuum_job")]
    # another module's cron with the same xml name is not the autovacuum job
    custom = rows(
        odoo_dsn,
        "SELECT c.active FROM ir_cron c JOIN ir_model_data d "
        "ON d.model = 'ir.cron' AND d.res_id = c.id WHERE d.module = 'custom_ops'",
    )
    assert custom == [(False,)]
    assert "ir_cron: deactivated 6 crons" in lines
    assert any("base.autovacuum_job" in line and "active" in line for line in lines)


def test_autovacuum_xmlid_with_null_res_id(odoo_dsn: str) -> None:
    """Odoo's ``NOT IN (SELECT res_id ...)`` matches no cron when res_id is NULL: all stay on.

    liftgate filters NULLs out of the subquery, so every cron is switched off.
    """
    with psycopg.connect(odoo_dsn) as conn:
        conn.execute(
            "UPDATE ir_model_data SET res_id = NULL "
            "WHERE module = 'base' AND name = 'autovacuum_job'"
        )
    lines = run(odoo_dsn)
    assert rows(odoo_dsn, "SELECT count(*) FROM ir_cron WHERE active") == [(0,)]
    assert "ir_cron: no base.autovacuum_job cron found" in lines


def test_flag_set_and_is_neutralized(odoo_dsn: str) -> None:
    with psycopg.connect(odoo_dsn) as conn:
        assert is_neutralized(conn) is False
    lines = run(odoo_dsn)
    assert "ir_config_parameter: inserted database.is_neutralized = 'true'" in lines
    assert rows(
        odoo_dsn,
        "SELECT value, create_date IS NOT NULL, write_date IS NOT NULL "
        "FROM ir_config_parameter WHERE key = 'database.is_neutralized'",
    ) == [("true", True, True)]
    with psycopg.connect(odoo_dsn) as conn:
        assert is_neutralized(conn) is True


@pytest.mark.parametrize(
    ("value", "expected"), [("True", True), ("1", True), ("False", False), ("0", False)]
)
def test_is_neutralized_reads_like_odoo_str2bool(odoo_dsn: str, value: str, expected: bool) -> None:
    with psycopg.connect(odoo_dsn) as conn:
        conn.execute(
            "INSERT INTO ir_config_parameter (key, value) VALUES ('database.is_neutralized', %s)",
            (value,),
        )
        assert is_neutralized(conn) is expected


def test_flag_upsert_overwrites_a_false_value(odoo_dsn: str) -> None:
    with psycopg.connect(odoo_dsn) as conn:
        conn.execute(
            "INSERT INTO ir_config_parameter (key, value) "
            "VALUES ('database.is_neutralized', 'False')"
        )
    lines = run(odoo_dsn)
    assert "ir_config_parameter: set database.is_neutralized = 'true' (was 'False')" in lines
    assert rows(
        odoo_dsn, "SELECT value FROM ir_config_parameter WHERE key = 'database.is_neutralized'"
    ) == [("true",)]


def test_second_run_changes_nothing_and_keeps_one_dummy(odoo_dsn: str) -> None:
    """Odoo's SQL would insert a second dummy server; liftgate keeps exactly one."""
    run(odoo_dsn)
    once = table_snapshot(odoo_dsn)
    lines = run(odoo_dsn)
    assert table_snapshot(odoo_dsn) == once
    assert rows(
        odoo_dsn, "SELECT count(*) FROM ir_mail_server WHERE name = %s", (DUMMY_SERVER_NAME,)
    ) == [(1,)]
    assert any(line.startswith("ir_mail_server: kept the active dummy") for line in lines)
    assert "ir_mail_server: deactivated 0 mail servers" in lines
    assert "ir_cron: deactivated 0 crons" in lines
    assert "ir_config_parameter: database.is_neutralized already 'true'" in lines


def test_dummy_server_switched_off_by_hand_is_reactivated(odoo_dsn: str) -> None:
    run(odoo_dsn)
    (dummy,) = rows(odoo_dsn, "SELECT id FROM ir_mail_server WHERE active")
    with psycopg.connect(odoo_dsn) as conn:
        conn.execute("UPDATE ir_mail_server SET active = false")
        conn.execute("UPDATE ir_mail_server SET active = true WHERE id = 1")
    lines = run(odoo_dsn)
    assert rows(odoo_dsn, "SELECT id FROM ir_mail_server WHERE active") == [dummy]
    assert any(line.startswith("ir_mail_server: re-activated the dummy") for line in lines)
    assert "ir_mail_server: deactivated 1 mail server" in lines


def test_dummy_pointed_at_a_real_host_is_not_trusted(odoo_dsn: str) -> None:
    run(odoo_dsn)
    with psycopg.connect(odoo_dsn) as conn:
        conn.execute(
            "UPDATE ir_mail_server SET smtp_host = 'smtp.real.example.com' WHERE name = %s",
            (DUMMY_SERVER_NAME,),
        )
    run(odoo_dsn)
    assert rows(odoo_dsn, "SELECT smtp_host, smtp_port FROM ir_mail_server WHERE active") == [
        ("invalid", 1025)
    ]


def test_webhooks_replaced_only_for_webhook_actions(odoo_dsn: str) -> None:
    before = dict(rows(odoo_dsn, "SELECT id, webhook_url FROM ir_act_server"))
    lines = run(odoo_dsn)
    after = rows(odoo_dsn, "SELECT id, state, webhook_url FROM ir_act_server ORDER BY id")
    webhooks = [r for r in after if r[1] == "webhook"]
    assert len(webhooks) == 2
    assert all(r[2] == WEBHOOK_URL for r in webhooks)
    assert all(r[2] == before[r[0]] for r in after if r[1] != "webhook")
    assert (
        f"ir_act_server: replaced webhook_url of 2 webhook server actions with '{WEBHOOK_URL}'"
        in lines
    )


def test_mail_templates_detached(odoo_dsn: str) -> None:
    lines = run(odoo_dsn)
    assert rows(
        odoo_dsn, "SELECT count(*) FROM mail_template WHERE mail_server_id IS NOT NULL"
    ) == [(0,)]
    assert rows(odoo_dsn, "SELECT count(*) FROM mail_template") == [(4,)]
    assert "mail_template: detached 3 mail templates from their outgoing mail server" in lines


def test_payment_providers_not_live_state_variant(odoo_dsn: str) -> None:
    lines = run(odoo_dsn)
    states = dict(rows(odoo_dsn, "SELECT code, state FROM payment_provider"))
    # Odoo 16/17: state -> 'disabled' unless it is 'test' or already 'disabled'
    assert states == {
        "stripe": "disabled",
        "custom": "disabled",
        "demo": "test",
        "adyen": "disabled",
    }
    assert any(line.startswith("payment_provider: disabled 2 payment providers") for line in lines)


def test_payment_providers_not_live_is_live_variant(make_db: MakeDb) -> None:
    dsn = make_db(payment_variant="is_live")
    assert rows(dsn, "SELECT count(*) FROM payment_provider WHERE is_live") == [(2,)]
    lines = run(dsn)
    assert rows(dsn, "SELECT count(*) FROM payment_provider WHERE is_live IS NOT FALSE") == [(0,)]
    assert "payment_provider: set is_live = false on 2 payment providers" in lines


def test_fetchmail_servers_disabled(odoo_dsn: str) -> None:
    lines = run(odoo_dsn)
    assert rows(odoo_dsn, "SELECT count(*) FROM fetchmail_server WHERE active") == [(0,)]
    assert "fetchmail_server: deactivated 1 incoming mail (fetchmail) server" in lines


def test_banner_activated_and_web_push_keys_deleted(odoo_dsn: str) -> None:
    lines = run(odoo_dsn)
    assert rows(odoo_dsn, "SELECT active FROM ir_ui_view WHERE key = 'web.neutralize_banner'") == [
        (True,)
    ]
    assert rows(
        odoo_dsn, "SELECT count(*) FROM ir_config_parameter WHERE key LIKE 'mail.web_push%%'"
    ) == [(0,)]
    assert "ir_config_parameter: deleted 2 web push / SFU keys" in lines


def test_web_push_tables_are_emptied_when_present(odoo_dsn: str) -> None:
    with psycopg.connect(odoo_dsn) as conn:
        conn.execute("CREATE TABLE mail_partner_device (id serial PRIMARY KEY, endpoint text)")
        conn.execute(
            "CREATE TABLE mail_notification_web_push (id serial PRIMARY KEY, "
            "user_device integer REFERENCES mail_partner_device(id) ON DELETE CASCADE)"
        )
        conn.execute("INSERT INTO mail_partner_device (endpoint) VALUES ('https://push/1')")
        conn.execute("INSERT INTO mail_notification_web_push (user_device) VALUES (1)")
    lines = run(odoo_dsn)
    assert "mail_partner_device: emptied (1 row)" in lines
    assert "mail_notification_web_push: emptied (1 row)" in lines
    assert rows(odoo_dsn, "SELECT count(*) FROM mail_partner_device") == [(0,)]


def test_database_without_module_tables(make_db: MakeDb) -> None:
    dsn = make_db(with_mail=False, with_payment=False, with_fetchmail=False)
    lines = run(dsn)
    for table in ("mail_template", "fetchmail_server", "payment_provider"):
        assert f"{table}: skipped, no such table in schema public" in lines
    assert rows(dsn, "SELECT count(*) FROM ir_mail_server WHERE active") == [(1,)]
    with psycopg.connect(dsn) as conn:
        assert is_neutralized(conn)


def test_columns_of_other_versions_are_skipped(odoo_dsn: str) -> None:
    with psycopg.connect(odoo_dsn) as conn:
        conn.execute("ALTER TABLE ir_act_server DROP COLUMN webhook_url")  # Odoo < 17.2
        conn.execute("ALTER TABLE ir_mail_server DROP COLUMN smtp_authentication")  # Odoo < 15
        conn.execute("ALTER TABLE payment_provider DROP COLUMN state")
    lines = run(odoo_dsn)
    assert "ir_act_server: skipped, no column webhook_url" in lines
    assert "payment_provider: skipped, neither an is_live nor a state column" in lines
    assert rows(odoo_dsn, "SELECT name, smtp_host FROM ir_mail_server WHERE active") == [
        (DUMMY_SERVER_NAME, "invalid")
    ]


def test_newer_config_parameter_type_column_is_filled(odoo_dsn: str) -> None:
    with psycopg.connect(odoo_dsn) as conn:
        conn.execute("ALTER TABLE ir_config_parameter ADD COLUMN type varchar NOT NULL DEFAULT ''")
        conn.execute("ALTER TABLE ir_config_parameter ALTER COLUMN type DROP DEFAULT")
    run(odoo_dsn)
    assert rows(
        odoo_dsn,
        "SELECT value, type FROM ir_config_parameter WHERE key = 'database.is_neutralized'",
    ) == [("true", "str")]
    with psycopg.connect(odoo_dsn) as conn:
        new_identity(conn)  # inserts nothing new here, but must not trip over the column


def test_unknown_required_column_fails_clearly_and_rolls_back(odoo_dsn: str) -> None:
    with psycopg.connect(odoo_dsn) as conn:
        conn.execute("ALTER TABLE ir_mail_server ADD COLUMN max_size integer NOT NULL DEFAULT 1")
        conn.execute("ALTER TABLE ir_mail_server ALTER COLUMN max_size DROP DEFAULT")
    before = table_snapshot(odoo_dsn)
    with psycopg.connect(odoo_dsn) as conn:
        with pytest.raises(OperationError, match="max_size") as info:
            neutralize(conn)
        assert info.value.exit_code == 8
        conn.rollback()
    assert table_snapshot(odoo_dsn) == before


def test_runs_in_the_callers_transaction(odoo_dsn: str) -> None:
    before = table_snapshot(odoo_dsn)
    with psycopg.connect(odoo_dsn) as conn:
        neutralize(conn)
        assert is_neutralized(conn)
        conn.rollback()
        assert not is_neutralized(conn)
    assert table_snapshot(odoo_dsn) == before


def test_current_schema_is_used_and_identifiers_are_quoted(pg_dsn: str, tmp_path: Path) -> None:
    """Odoo tables in a schema named "odoo-prod": other schemas' tables are left alone."""
    create_schema(pg_dsn)
    populate(pg_dsn, tmp_path / "public", partners=5, attachments=2)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        dbname = conn.info.dbname
        conn.execute('CREATE SCHEMA "odoo-prod"')
        conn.execute(
            sql.SQL('ALTER DATABASE {} SET search_path TO "odoo-prod"').format(
                sql.Identifier(dbname)
            )
        )
    create_schema(pg_dsn)
    populate(pg_dsn, tmp_path / "prod", partners=5, attachments=2)
    run(pg_dsn)
    assert rows(pg_dsn, 'SELECT count(*) FROM "odoo-prod".ir_mail_server WHERE active') == [(1,)]
    assert rows(pg_dsn, "SELECT count(*) FROM public.ir_mail_server WHERE active") == [(2,)]
    assert rows(pg_dsn, "SELECT count(*) FROM public.ir_cron WHERE active") == [(7,)]
    assert rows(
        pg_dsn,
        "SELECT count(*) FROM public.ir_config_parameter WHERE key = 'database.is_neutralized'",
    ) == [(0,)]


def test_new_identity_changes_uuid_and_secret(odoo_dsn: str) -> None:
    def params() -> dict[str, str]:
        return dict(
            rows(
                odoo_dsn,
                "SELECT key, value FROM ir_config_parameter "
                "WHERE key IN ('database.uuid', 'database.secret')",
            )
        )

    old = params()
    with psycopg.connect(odoo_dsn) as conn:
        result = new_identity(conn)
    new = params()
    assert result == {"old_uuid": old["database.uuid"], "new_uuid": new["database.uuid"]}
    assert new["database.uuid"] != old["database.uuid"]
    assert new["database.secret"] != old["database.secret"]
    assert uuid.UUID(new["database.uuid"]).version == 4
    assert uuid.UUID(new["database.secret"]).version == 4
    assert new["database.secret"] not in result.values()
    assert old["database.secret"] not in result.values()


def test_new_identity_inserts_missing_keys(odoo_dsn: str) -> None:
    with psycopg.connect(odoo_dsn) as conn:
        conn.execute(
            "DELETE FROM ir_config_parameter WHERE key IN ('database.uuid', 'database.secret')"
        )
    with psycopg.connect(odoo_dsn) as conn:
        result = new_identity(conn)
    assert result["old_uuid"] == ""
    assert rows(
        odoo_dsn,
        "SELECT count(*) FROM ir_config_parameter "
        "WHERE key IN ('database.uuid', 'database.secret') AND write_date IS NOT NULL",
    ) == [(2,)]


def test_not_an_odoo_database(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        assert is_neutralized(conn) is False
        with pytest.raises(OperationError, match="ir_config_parameter"):
            new_identity(conn)
        lines = neutralize(conn)
    assert all("skipped" in line for line in lines)
