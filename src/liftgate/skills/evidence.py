"""What each skill's operation writes into its evidence folder ``<evidence_dir>/<run_id>/``.

The one list of evidence file names per skill, read from the code that writes them:

* every run writes ``run_id.txt``, ``inputs.json`` and ``plan.json`` when it starts
  (``engine.runs.Run.start``), its summary and ``final_status.json`` when it ends, then
  ``MANIFEST.sha256`` last (``Run.finish`` / ``EvidenceBundle.seal``), and
  ``guardrails.json`` (``engine.guardrails.Guardrails.as_json``);
* the summary is ``summary.md``, except a promotion's ``promotion_summary.md``
  (``odoo.promote.SUMMARY``);
* ``odoo backup`` adds ``backup.json``; ``odoo restore`` adds ``restore.json``;
  ``odoo deploy`` adds ``git.json``, ``modules.json``, ``backup.json`` (the way back),
  ``update.log`` (redacted) and ``health.json``; ``odoo promote`` adds
  ``preconditions.json``, ``staging_snapshot.json``, ``blue_backup.json``,
  ``green_restore.json``, ``smoke_tests.json``, ``cutover.json`` and
  ``stability_metrics.json``.

``EVIDENCE_FILES`` is what a run writes whenever it reaches its end past planning (a
deploy or promotion that fails and is put back still writes every one of them, with
``"not reached"`` notes where a step did not run). ``EVIDENCE_WHEN_ROLLED_BACK`` is what
it adds only when it put the previous state back (``rollback.json``). Runs that stop
earlier write less — a backup or restore that fails writes the run files (``BASE_FILES``
and the summary) without ``backup.json``/``restore.json``, and a promotion refused by its
preconditions writes the run files plus ``preconditions.json`` — and each skill's
SKILL.md says so. The registry's ``evidence.files`` and ``evidence.files_when_rolled_back``
must equal these sets (``liftgate skills check``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "BASE_FILES",
    "EVIDENCE_FILES",
    "EVIDENCE_WHEN_ROLLED_BACK",
    "summary_name",
]

# written by every run of every operation (the summary's name varies: see summary_name)
BASE_FILES = frozenset(
    {
        "inputs.json",
        "run_id.txt",
        "plan.json",
        "guardrails.json",
        "final_status.json",
        "MANIFEST.sha256",
    }
)

_SUMMARY = MappingProxyType({"promote-staging-to-prod": "promotion_summary.md"})


def summary_name(skill_id: str) -> str:
    """The summary file a run of ``skill_id`` writes."""
    return _SUMMARY.get(skill_id, "summary.md")


def _files(skill_id: str, *extra: str) -> frozenset[str]:
    return BASE_FILES | {summary_name(skill_id), *extra}


EVIDENCE_FILES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "stage-promote-safe": _files("stage-promote-safe"),
        "backup-odoo-environment": _files("backup-odoo-environment", "backup.json"),
        "restore-odoo-environment": _files("restore-odoo-environment", "restore.json"),
        "deploy-odoo-modules-git": _files(
            "deploy-odoo-modules-git",
            "git.json",
            "modules.json",
            "backup.json",
            "update.log",
            "health.json",
        ),
        "promote-staging-to-prod": _files(
            "promote-staging-to-prod",
            "preconditions.json",
            "staging_snapshot.json",
            "blue_backup.json",
            "green_restore.json",
            "smoke_tests.json",
            "cutover.json",
            "stability_metrics.json",
        ),
    }
)

EVIDENCE_WHEN_ROLLED_BACK: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "stage-promote-safe": frozenset(),
        "backup-odoo-environment": frozenset(),
        "restore-odoo-environment": frozenset(),
        "deploy-odoo-modules-git": frozenset({"rollback.json"}),
        "promote-staging-to-prod": frozenset({"rollback.json"}),
    }
)
