"""The blue-green part of ``liftgate demo``: promotion to production, then a rollback.

It builds a production env with two slots (blue serving, green inactive) behind a real
HAProxy, and a staging env deployed by liftgate, with the Odoo server STAND-IN of
liftgate's source tree serving staging, blue and green (``tests/odoo_standin``; the set-up
helpers are the tests' own, ``tests/support/promote_env.py``). liftgate drives them only
through the configured commands, URLs and HAProxy's admin socket.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from liftgate.demo_deploy import _STANDIN_ROOT, _standin
from liftgate.engine.evidence import verify_bundle
from liftgate.errors import IntegrityError, OperationError
from liftgate.sandbox.cluster import PgCluster

__all__ = ["promote_tour"]


def _cli(env: Any, *args: str) -> dict[str, Any]:
    code, out = env.cli_json(*args)
    if code != 0:
        raise OperationError(f"liftgate {' '.join(args)} failed: {out.get('message')}")
    return dict(out)


def promote_tour(root: Path, cluster: PgCluster, say: Callable[[str], None]) -> None:
    _standin()  # checks the stand-in is there, puts tests/ on sys.path
    if str(_STANDIN_ROOT) not in sys.path:
        sys.path.insert(0, str(_STANDIN_ROOT))
    promote_env: Any = importlib.import_module("support.promote_env")
    say("16. blue-green: production with two slots behind HAProxy, staging deployed by liftgate")
    env = promote_env.make_promote_env(root / "bluegreen", cluster)
    try:
        say(f"   project {env.root}; public URL {env.public_url} (HAProxy)")
        say(f"   staging runs {env.staged_commit[:12]}; blue runs {env.first_commit[:12]}")
        status = _cli(env, "odoo", "status", "prod")
        say(f"   active slot (read from HAProxy): {status['active_slot']}")

        say("17. liftgate odoo promote staging prod --approve")
        out = _cli(env, "odoo", "promote", "staging", "prod", "--approve")
        say(f"   {out['status']}: {out['message']}")
        evidence = Path(out["evidence_path"])
        cutover = json.loads((evidence / "cutover.json").read_text())
        say(
            f"   cutover {cutover['from']} -> {cutover['to']} in {cutover['switch_ms']:.1f} ms; "
            f"writes frozen for {cutover['write_freeze_seconds']} s"
        )
        say(f"   evidence: {evidence} ({len(list(evidence.iterdir()))} files)")

        say("18. liftgate odoo rollback prod: back to blue within the rollback window")
        back = _cli(env, "odoo", "rollback", "prod")
        say(f"   {back['status']}: {back['message']}")
        status = _cli(env, "odoo", "status", "prod")
        say(f"   active slot now: {status['active_slot']}")

        say("19. evidence verify of the promotion and the rollback")
        for folder in (evidence, Path(back["evidence_path"])):
            problems = verify_bundle(folder)
            say(f"   {folder.name}: {'OK' if not problems else 'FAIL ' + problems[0]}")
            if problems:
                raise IntegrityError(f"the evidence of run {folder.name} does not verify")
        say(f"   evidence folders: {evidence.parent}")
    finally:
        env.stop()
