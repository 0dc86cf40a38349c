"""A production env with blue/green slots behind a real HAProxy (or nginx), a staging env
deployed by liftgate, and the Odoo server stand-in serving staging, blue and green — all on
the test cluster."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from liftgate.engine.durability import Durability
from liftgate.engine.fsops import link_or_copy_tree
from liftgate.odoo.releases import Releases
from liftgate.sandbox.cluster import PgCluster
from odoo_standin import (
    commit,
    free_port,
    git,
    make_addons_repo,
    run_odoo_bin,
    service_toml,
    wait_http,
    write_module,
    write_odoo_bin,
    write_odoo_conf,
    write_service,
)
from support.odoo_project import OdooProject, make_odoo_project
from support.proxies import Haproxy, Nginx
from support.tree import cli_json, run_cli

__all__ = ["STABILITY", "Address", "PromoteEnv", "build_promote_env", "make_promote_env"]


@dataclass(frozen=True)
class Address:
    """Where a slot's Odoo answers (what the proxies route to)."""

    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class PromoteEnv:
    project: OdooProject
    root: Path
    repo: Path
    odoo_bin: Path
    services: dict[str, dict[str, list[str]]]
    urls: dict[str, str]
    dbs: dict[str, str]
    proxy: Haproxy | Nginx
    public_url: str
    first_commit: str
    staged_commit: str
    extra: dict[str, Any] = field(default_factory=dict)

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_cli(list(args), self.root, env, timeout=300)

    def cli_json(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        return cli_json(list(args), self.root, env)

    def promote(self, *extra: str) -> tuple[int, dict[str, Any]]:
        return self.cli_json("odoo", "promote", "staging", "prod", *extra)

    def conninfo(self, slot_or_env: str) -> str:
        return self.project.conninfo(self.dbs[slot_or_env])

    def active(self) -> str:
        code, out = self.cli_json("odoo", "status", "prod")
        assert code == 0, out
        return str(out["active_slot"])

    def stop(self) -> None:
        for service in self.services.values():
            subprocess.run(service["stop"], check=False, capture_output=True, timeout=30)
        self.proxy.stop()


def _release(root: Path, repo: Path, sha: str) -> None:
    """Put commit ``sha`` of ``repo`` in ``root/releases/<sha>`` and point ``current`` at it."""
    releases = Releases(root)

    def export(folder: Path) -> None:
        folder.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", "--format=tar", sha],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)

    releases.ensure(sha, export, {"repo": str(repo), "by": "test fixture"}, Durability())
    releases.switch(sha)


STABILITY = 'window = "2s"\ninterval = "0.2s"\nmax_error_rate = 0.2\n'


def make_promote_env(
    tmp: Path,
    cluster: PgCluster,
    *,
    switch: str = "haproxy",
    stability: str = STABILITY,
    smoke_text: str = "Odoo",
    partners: int = 60,
) -> PromoteEnv:
    """A new sample database (``partners`` rows) made into production; see build_promote_env."""
    project = make_odoo_project(tmp / "proj", cluster, partners=partners, attachments=8)
    return build_promote_env(
        tmp, project, switch=switch, stability=stability, smoke_text=smoke_text
    )


def build_promote_env(
    tmp: Path,
    project: OdooProject,
    *,
    switch: str = "haproxy",
    stability: str = STABILITY,
    smoke_text: str = "Odoo",
) -> PromoteEnv:
    """``project``'s populated database becomes blue; a staging copy is deployed by
    liftgate; blue and staging are served by the stand-in, blue and green sit behind the
    proxy, and ``project.root/liftgate.toml`` describes it all."""
    root, cluster = project.root, project.cluster
    blue_db = project.prod_db
    dbs = {
        "blue": blue_db,
        "green": f"{blue_db}_green",
        "staging": f"{blue_db}_stg",
    }
    host = cluster.conninfo("x").split("host=")[1].split()[0]
    pg_port = int(cluster.conninfo("x").split("port=")[1].split()[0])

    repo = make_addons_repo(tmp / "addons")
    write_module(repo, "shop", version="1.0.0", depends=("base", "mail"))
    write_module(repo, "shop_extra", version="1.0.0", depends=("shop",))
    first = commit(repo, "shop 1.0.0")

    odoo_bin = write_odoo_bin(tmp / "bin")
    ports = {name: free_port() for name in ("blue", "green", "staging")}
    confs: dict[str, Path] = {}
    services: dict[str, dict[str, list[str]]] = {}
    for name in ("blue", "green", "staging"):
        confs[name] = write_odoo_conf(
            root / f"{name}.conf",
            host=host,
            port=pg_port,
            user=project.role,
            password=None,
            db=dbs[name],
            addons_path=[root / f"app-{name}" / "current"],
            data_dir=root / "data",
            http_port=ports[name],
        )
        services[name] = write_service(
            tmp / f"svc-{name}", odoo_bin, confs[name], http_port=ports[name]
        )
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}

    # blue runs the first commit with shop installed
    _release(root / "app-blue", repo, first)
    done = run_odoo_bin(
        odoo_bin, "-c", str(confs["blue"]), "-i", "shop,shop_extra", "--stop-after-init"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # staging: a copy of production, then deployed by liftgate
    with psycopg.connect(cluster.dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                sql.Identifier(dbs["staging"]),
                sql.Identifier(blue_db),
                sql.Identifier(project.role),
            )
        )
    link_or_copy_tree(
        root / "data" / "filestore" / blue_db, root / "data" / "filestore" / dbs["staging"]
    )
    (root / "data" / "filestore" / dbs["green"]).parent.mkdir(parents=True, exist_ok=True)

    proxy: Haproxy | Nginx | None = None
    try:
        for name in ("blue", "staging"):
            subprocess.run(services[name]["start"], check=True, capture_output=True, timeout=30)
            wait_http(f"{urls[name]}/web/health", 20)

        backends = {slot: Address(ports[slot]) for slot in ("blue", "green")}
        (tmp / switch).mkdir()
        if switch == "haproxy":
            proxy = Haproxy(tmp / "haproxy", backends, initial="blue")
        else:
            proxy = Nginx(tmp / "nginx", backends, initial="blue")
        proxy.start()
        public = f"http://127.0.0.1:{proxy.port}"
        switch_toml = _switch_toml(proxy.switch_settings(), proxy.workdir)

        smoke = f'smoke = [{{ path = "/web/login", status = 200, contains = "{smoke_text}" }}]\n'
        config = (
            '[project]\nroots = ["."]\n\n'
            f'[postgres]\ndsn = "host={host} port={pg_port} user={project.role}"\n\n'
            f'[env.staging]\nrole = "staging"\ndb = "{dbs["staging"]}"\n'
            f'odoo_conf = "staging.conf"\nreleases = "app-staging"\nodoo_bin = "{odoo_bin}"\n'
            f'repo = "{repo}"\nurl = "{urls["staging"]}"\nhealth_timeout = 20\n'
            f"service = {service_toml(services['staging'])}\n" + smoke + "\n"
            f'[env.prod]\nrole = "production"\nurl = "{public}"\nrepo = "{repo}"\n'
            f'odoo_bin = "{odoo_bin}"\nrollback_window = "1h"\n' + smoke + "\n"
            f"[env.prod.stability]\n{stability}\n"
            f"[env.prod.switch]\n{switch_toml}\n"
        )
        for slot in ("blue", "green"):
            config += (
                f'[env.prod.slots.{slot}]\ndb = "{dbs[slot]}"\nodoo_conf = "{slot}.conf"\n'
                f'releases = "app-{slot}"\nurl = "{urls[slot]}"\nhealth_timeout = 20\n'
                f"service = {service_toml(services[slot])}\n\n"
            )
        (root / "liftgate.toml").write_text(config)

        # the staged commit: shop changes, deployed to staging by liftgate
        write_module(repo, "shop", version="1.1.0", depends=("base", "mail"))
        staged = commit(repo, "shop 1.1.0")
        code, out = cli_json(["odoo", "deploy", "staging", "--commit", staged], root)
        assert code == 0, out
        env = PromoteEnv(
            project=project,
            root=root,
            repo=repo,
            odoo_bin=odoo_bin,
            services=services,
            urls=urls,
            dbs=dbs,
            proxy=proxy,
            public_url=public,
            first_commit=first,
            staged_commit=staged,
        )
        assert git(repo, "rev-parse", "HEAD") == staged
        return env
    except BaseException:
        for service in services.values():
            subprocess.run(service["stop"], check=False, capture_output=True, timeout=30)
        if proxy is not None:
            proxy.stop()
        raise


def _switch_toml(settings: dict[str, Any], workdir: Path) -> str:
    lines = []
    for key, value in settings.items():
        if key in ("state_file", "upstream_file", "pid_file") and not str(value).startswith("/"):
            value = str(workdir / str(value))
        if isinstance(value, dict):
            inner = ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items())
            lines.append(f"{key} = {{ {inner} }}")
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"
