"""The Odoo-shaped test database lives in :mod:`liftgate.sandbox.odoo_sample` (the demo uses it)."""

from liftgate.sandbox.odoo_sample import (
    ODOO_VERSION,
    PaymentVariant,
    PopulateResult,
    create_schema,
    insert_attachment,
    populate,
    sequence_values,
    store_path,
    table_snapshot,
)

__all__ = [
    "ODOO_VERSION",
    "PaymentVariant",
    "PopulateResult",
    "create_schema",
    "insert_attachment",
    "populate",
    "sequence_values",
    "store_path",
    "table_snapshot",
]
