"""An Odoo env ready for ``liftgate odoo deploy``: addons repository, releases folder,
odoo.conf, the Odoo server stand-in run by the stand-in service manager, on the test
cluster."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from liftgate.sandbox.cluster import PgCluster
from odoo_standin import (
    commit,
    free_port,
    make_addons_repo,
    service_toml,
    write_module,
    write_odoo_bin,
    write_odoo_conf,
    write_service,
)
from support.odoo_project import OdooProject, make_odoo_project
from support.tree import cli_json, run_cli

__all__ = ["DeployEnv", "make_deploy_env"]


@dataclass
class DeployEnv:
    project: OdooProject
    root: Path
    repo: Path
    releases: Path
    odoo_bin: Path
    conf: Path
    service: dict[str, list[str]]
    url: str
    env_name: str

    @property
    def db(self) -> str:
        return self.project.prod_db

    @property
    def filestore(self) -> Path:
        return self.project.prod_filestore

    def conninfo(self) -> str:
        return self.project.conninfo(self.db)

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_cli(list(args), self.root, env)

    def cli_json(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        return cli_json(list(args), self.root, env)

    def deploy(self, commit_ref: str, *extra: str) -> tuple[int, dict[str, Any]]:
        return self.cli_json("odoo", "deploy", self.env_name, "--commit", commit_ref, *extra)

    def current(self) -> str | None:
        link = self.releases / "current"
        return Path(link.readlink()).name if link.is_symlink() else None

    def modules(self) -> dict[str, tuple[str, str | None]]:
        with psycopg.connect(self.conninfo()) as conn:
            rows = conn.execute("SELECT name, state, latest_version FROM ir_module_module")
            return {str(n): (str(s), v) for n, s, v in rows}

    def stop_service(self) -> None:
        subprocess.run(self.service["stop"], check=False, capture_output=True, timeout=30)


def make_deploy_env(
    tmp: Path,
    cluster: PgCluster,
    *,
    role: str = "staging",
    env_name: str = "staging",
    smoke_text: str = "Odoo",
    extra_env: str = "",
) -> DeployEnv:
    """A project whose env ``env_name`` is the sample database, deployable from ``repo``.

    The repository's first commit has ``shop`` and ``shop_extra`` (depends on ``shop``).
    """
    root = tmp / "proj"
    project = make_odoo_project(root, cluster, partners=50, attachments=8)
    repo = make_addons_repo(tmp / "addons")
    write_module(repo, "shop", version="1.0.0", depends=("base", "mail"))
    write_module(repo, "shop_extra", version="1.0.0", depends=("shop",))
    commit(repo, "shop 1.0.0")
    releases = root / "app"
    odoo_bin = write_odoo_bin(tmp / "bin")
    port = free_port()
    host = cluster.conninfo("x").split("host=")[1].split()[0]
    pg_port = int(cluster.conninfo("x").split("port=")[1].split()[0])
    conf = write_odoo_conf(
        root / "odoo.conf",
        host=host,
        port=pg_port,
        user=project.role,
        password=None,
        db=project.prod_db,
        addons_path=[releases / "current"],
        data_dir=root / "data",
        http_port=port,
    )
    service = write_service(tmp / "svc", odoo_bin, conf, http_port=port)
    url = f"http://127.0.0.1:{port}"
    config = (
        '[project]\nroots = ["."]\n\n'
        f'[postgres]\ndsn = "host={host} port={pg_port} user={project.role}"\n\n'
        f'[env.{env_name}]\nrole = "{role}"\ndb = "{project.prod_db}"\n'
        f'odoo_conf = "odoo.conf"\nreleases = "app"\nodoo_bin = "{odoo_bin}"\n'
        f'repo = "{repo}"\nurl = "{url}"\nhealth_timeout = 20\n'
        f"service = {service_toml(service)}\n"
        f'smoke = [{{ path = "/web/login", status = 200, contains = "{smoke_text}" }}]\n'
        + extra_env
    )
    (root / "liftgate.toml").write_text(config)
    return DeployEnv(
        project=project,
        root=root,
        repo=repo,
        releases=releases,
        odoo_bin=odoo_bin,
        conf=conf,
        service=service,
        url=url,
        env_name=env_name,
    )
