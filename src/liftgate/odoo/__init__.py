"""Odoo environments: PostgreSQL database + filestore, backed up, restored, deployed, promoted."""
