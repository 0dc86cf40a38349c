"""The deploy part of ``liftgate demo``: two commits of an addons repository to staging.

Odoo itself is not installed in the demo's sandbox: the demo runs the Odoo server
STAND-IN of liftgate's source tree (``tests/odoo_standin``: a small ``odoo-bin`` that
honours the CLI and HTTP contract liftgate uses, on the real database) under its stand-in
service manager. liftgate drives it only through the configured command and URL, exactly
as it drives a real Odoo.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from liftgate.errors import UsageError

__all__ = ["DeploySetup", "deploy_tour", "prepare_deploy"]

_STANDIN_ROOT = Path(__file__).resolve().parents[2] / "tests"


def _standin() -> ModuleType:
    if not (_STANDIN_ROOT / "odoo_standin" / "__init__.py").is_file():
        raise UsageError(
            "the deploy part of the demo needs the Odoo server stand-in of liftgate's source "
            f"tree ({_STANDIN_ROOT / 'odoo_standin'}); run it from a checkout (make demo)"
        )
    if str(_STANDIN_ROOT) not in sys.path:
        sys.path.insert(0, str(_STANDIN_ROOT))
    return importlib.import_module("odoo_standin")


@dataclass
class DeploySetup:
    repo: Path
    url: str
    service: dict[str, list[str]]
    config: str  # keys for [env.staging]

    def stop(self) -> None:
        subprocess.run(self.service["stop"], check=False, capture_output=True, timeout=30)


def prepare_deploy(root: Path, *, host: str, port: int, user: str, db: str) -> DeploySetup:
    """An addons repository with its first commit, odoo-bin, odoo.conf and a service."""
    standin: Any = _standin()
    repo = standin.make_addons_repo(root / "addons")
    standin.write_module(repo, "demo_shop", version="1.0.0", depends=("base", "mail"))
    standin.write_module(repo, "demo_shop_report", version="1.0.0", depends=("demo_shop",))
    standin.commit(repo, "demo_shop 1.0.0")
    odoo_bin = standin.write_odoo_bin(root / "bin")
    http_port = standin.free_port()
    conf = standin.write_odoo_conf(
        root / "staging-odoo.conf",
        host=host,
        port=port,
        user=user,
        password=None,
        db=db,
        addons_path=[root / "app" / "current"],
        data_dir=root / "data",
        http_port=http_port,
    )
    service = standin.write_service(root / "service", odoo_bin, conf, http_port=http_port)
    url = f"http://127.0.0.1:{http_port}"
    config = (
        f'odoo_conf = "{conf}"\nreleases = "app"\nodoo_bin = "{odoo_bin}"\nrepo = "{repo}"\n'
        f'url = "{url}"\nhealth_timeout = 30\nservice = {standin.service_toml(service)}\n'
        'smoke = [{ path = "/web/login", status = 200, contains = "Odoo" }]\n'
    )
    return DeploySetup(repo=repo, url=url, service=service, config=config)


def deploy_tour(project: Any, setup: DeploySetup, say: Callable[[str], None]) -> list[str]:
    """Deploy two commits to staging and show its status; returns the runs' ids."""
    from liftgate.odoo.deploy import deploy
    from liftgate.odoo.status import env_status

    standin: Any = _standin()
    say("12. deploy from git: commit 1 installs demo_shop and demo_shop_report on staging")
    first = standin.git(setup.repo, "rev-parse", "HEAD")
    plan = deploy(project, "staging", commit=first[:10], dry_run=True).extra["plan"]
    for module in plan["modules"]:
        say(
            f"   plan: {module['name']} {module['version']} {module['license']} "
            f"enterprise={module['enterprise']} available={module['available']}"
        )
    one = deploy(project, "staging", commit=first, install=["demo_shop", "demo_shop_report"])
    say(f"   {one.status}: {one.message}")

    say("13. commit 2 changes demo_shop only: only demo_shop is updated")
    standin.write_module(setup.repo, "demo_shop", version="1.1.0", depends=("base", "mail"))
    second = standin.commit(setup.repo, "demo_shop 1.1.0")
    two = deploy(project, "staging", commit=second)
    say(f"   {two.status}: {two.message}")

    say("14. liftgate odoo status staging")
    status = env_status(project, "staging")
    say(f"   commit {status['commit']}, release {status['release']}")
    last = status["last_run"]
    say(f"   last run {last['run_id']} ({last['kind']}): {last['status']}")
    return [r for r in (one.run_id, two.run_id) if r]
