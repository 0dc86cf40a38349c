"""The rollback window of a production env's last promotion, read from the ops store.

A successful promotion opens it (its result holds ``window_ends_at``); a later rollback
(``odoo.promote-rollback``) or ``--close-window`` (``odoo.promote-close``) ends it, and so
does time. One reading for the promotion (refuse a second one inside the window), the
manual rollback (allowed only inside it) and ``odoo status`` (time left).
"""

from __future__ import annotations

import datetime as dt

from liftgate.engine.project import Project
from liftgate.odoo.backup import env_lock
from liftgate.store.base import RunRecord

__all__ = ["ENDING_KINDS", "PROMOTION_KIND", "last_promotion", "open_window", "seconds_left"]

PROMOTION_KIND = "odoo.promote"
ENDING_KINDS = ("odoo.promote-rollback", "odoo.promote-close")


def last_promotion(project: Project, prod: str) -> RunRecord | None:
    """The last successful promotion of ``prod`` that no rollback or close ended since."""
    for run in project.store.list_runs(target=env_lock(prod), status="ok", limit=50):
        if run.kind in ENDING_KINDS:
            return None
        if run.kind == PROMOTION_KIND and run.result.get("outcome") == "success":
            return run
    return None


def seconds_left(run: RunRecord, now: dt.datetime | None = None) -> float:
    """Seconds until the window of promotion ``run`` ends (<= 0: it has ended)."""
    ends = dt.datetime.fromisoformat(str(run.result["window_ends_at"]).replace("Z", "+00:00"))
    return (ends - (now or dt.datetime.now(dt.UTC))).total_seconds()


def open_window(project: Project, prod: str) -> RunRecord | None:
    """The promotion whose rollback window is still open, if any."""
    run = last_promotion(project, prod)
    return run if run is not None and seconds_left(run) > 0 else None
