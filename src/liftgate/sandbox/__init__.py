"""Throw-away infrastructure for the demo and the tests: a private PostgreSQL cluster."""
