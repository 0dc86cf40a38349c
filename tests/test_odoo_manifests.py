"""Addon manifests, the Enterprise guardrail and per-addon checksums.

The real-world part reads the 340 OCA manifests of ``shared/data/oca-addons`` from a clean
git checkout and checks every licence and dependency list against a second, independent
reading of the same files (the syntax tree, walked by hand).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from liftgate.errors import OperationError, PathError, UsageError
from liftgate.odoo import enterprise, modulehash
from liftgate.odoo.enterprise import check, community_names, enterprise_names, is_community
from liftgate.odoo.manifest import (
    MAX_MANIFEST_BYTES,
    ModuleManifest,
    full_version,
    read_manifest,
    scan_addons,
    scan_addons_paths,
)
from liftgate.odoo.modulehash import (
    PARAM_KEY,
    changed,
    checksums,
    module_checksum,
    read_recorded,
    write_recorded,
)
from liftgate.sandbox.cluster import PgCluster
from support.odoo_project import make_odoo_project

OCA = Path(__file__).resolve().parents[1].parent / "shared/data/oca-addons"
SERIES = ("16.0", "17.0", "18.0", "19.0")


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def oca_checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 340 OCA addons committed to a git repository, then cloned and checked out at
    that commit, as a deploy's ``releases/<sha>/``."""
    src = tmp_path_factory.mktemp("oca-repo")
    folders = sorted(p for p in OCA.iterdir() if p.is_dir())
    assert len(folders) == 340, f"{OCA} should hold 340 addon folders, found {len(folders)}"
    for folder in folders:
        shutil.copytree(folder, src / folder.name)
    _git("init", "-q", cwd=src)
    _git("add", "-A", cwd=src)
    _git("commit", "-q", "-m", "OCA addons", cwd=src)
    sha = _git("rev-parse", "HEAD", cwd=src)
    releases = tmp_path_factory.mktemp("releases")
    _git("clone", "-q", "--no-checkout", str(src), sha, cwd=releases)
    checkout = releases / sha
    _git("checkout", "-q", "--detach", sha, cwd=checkout)
    assert _git("status", "--porcelain", cwd=checkout) == ""
    return checkout


@pytest.fixture(scope="module")
def oca_modules(oca_checkout: Path) -> list[ModuleManifest]:
    return scan_addons(oca_checkout)


def _independent(text: str) -> dict[str, object]:
    """``license`` and ``depends`` read from the syntax tree by hand (no literal_eval)."""
    tree = ast.parse(text)
    assert len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr)
    node = tree.body[0].value
    assert isinstance(node, ast.Dict)
    found: dict[str, object] = {}
    for key, value in zip(node.keys, node.values, strict=True):
        if not (isinstance(key, ast.Constant) and key.value in ("license", "depends")):
            continue
        if key.value == "license":
            assert isinstance(value, ast.Constant)
            found["license"] = value.value
        else:
            assert isinstance(value, ast.List | ast.Tuple)
            items = []
            for elt in value.elts:
                assert isinstance(elt, ast.Constant)
                items.append(elt.value)
            found["depends"] = tuple(items)
    return found


# -- the real manifests -------------------------------------------------------------------


def test_oca_manifests_read_exactly_as_written(
    oca_checkout: Path, oca_modules: list[ModuleManifest]
) -> None:
    expected_names = sorted(p.name for p in OCA.iterdir() if p.is_dir())
    assert [m.name for m in oca_modules] == expected_names
    assert len(oca_modules) == 340
    assert all(m.path.parent == oca_checkout for m in oca_modules)

    mismatches: list[str] = []
    ours: Counter[str] = Counter()
    theirs: Counter[str] = Counter()
    for m in oca_modules:
        assert m.manifest_file == "__manifest__.py"
        text = (oca_checkout / m.name / m.manifest_file).read_text(encoding="utf-8")
        ref = _independent(text)
        want_license = ref.get("license") or "LGPL-3"
        want_given = bool(ref.get("license"))
        want_depends = ref.get("depends", ())
        if (m.license, m.license_given, m.depends) != (want_license, want_given, want_depends):
            mismatches.append(
                f"{m.name}: read {(m.license, m.license_given, m.depends)}, "
                f"expected {(want_license, want_given, want_depends)}"
            )
        assert m.depends_given == ("depends" in ref)
        ours[m.license if m.license_given else "(none: LGPL-3 by default)"] += 1
        theirs[str(ref["license"]) if ref.get("license") else "(none: LGPL-3 by default)"] += 1
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(ours.items()))
    assert not mismatches, "\n".join(mismatches)
    assert ours == theirs, f"licences read: {summary}; independent count: {dict(theirs)}"
    assert sum(ours.values()) == 340, summary
    assert "OEEL-1" not in ours, summary


def test_oca_versions_follow_odoo(oca_modules: list[ModuleManifest]) -> None:
    """Every OCA version carries its series: Odoo's adapt_version keeps it as written."""
    for m in oca_modules:
        series = ".".join(m.version.split(".")[:2])
        assert full_version(m.version, series) == m.version, m.name


def test_oca_no_enterprise_false_positive(oca_modules: list[ModuleManifest]) -> None:
    repo = {m.name for m in oca_modules}
    for series in SERIES:
        report = check(oca_modules, series)
        ee = enterprise_names(series)
        # An independent verdict: a licence OEEL-1 or a dependency, outside the repository,
        # on a name of the Enterprise list (the OCA addons do not chain to such addons).
        expected = sorted(
            m.name
            for m in oca_modules
            if m.license == "OEEL-1" or any(d in ee and d not in repo for d in m.depends)
        )
        assert sorted(report.offending) == expected, (series, report.message())
        if series in ("16.0", "17.0"):
            assert report.ok, report.message()
        else:
            # A true positive, not a false one: AMOdoo's l10n_mx_edi_addenda_audi (19.0,
            # website github.com/amxodoo/enterprise) extends l10n_mx_edi, which the 18.0
            # and 19.0 odoo/enterprise translation configs list.
            assert report.offending == {
                "l10n_mx_edi_addenda_audi": ("depends on Enterprise module l10n_mx_edi",)
            }, report.message()
        # OCA's former account_avatax carries an Enterprise name but is not refused.
        assert report.shadowing == ("account_avatax",)
        assert "account_avatax" not in report.offending
        json.dumps(report.as_dict())


# -- reading manifests: never executed ----------------------------------------------------


def _module(root: Path, name: str, text: str, file: str = "__manifest__.py") -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / file).write_text(text, encoding="utf-8")
    return folder


def test_manifest_with_code_is_refused_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    cases = {
        "m_open": '{"name": open("x").read()}',
        "m_import": (
            '{\n  "name": "x",\n  "license": __import__("pathlib").Path('
            + repr(str(marker))
            + ').write_text("1"),\n}'
        ),
        "m_lambda": '{"name": (lambda: open(' + repr(str(marker)) + ', "w"))()}',
        "m_fstring": '{"name": f"{__import__(\'os\').getcwd()}"}',
    }
    messages = {}
    for name, text in cases.items():
        folder = _module(tmp_path / "addons", name, text)
        with pytest.raises(UsageError) as info:
            read_manifest(folder)
        messages[name] = msg = str(info.value)
        assert str(folder / "__manifest__.py") in msg and "line" in msg, msg
        assert "not executed" in msg and "\n" not in msg
    assert not marker.exists()
    assert not (tmp_path / "x").exists()
    assert "line 3: the manifest must be a plain literal, not a call to" in messages["m_import"]
    assert "not a call to .read()" in messages["m_open"]
    with pytest.raises(UsageError):  # every reader of the list refuses it too
        scan_addons(tmp_path / "addons")
    assert not marker.exists()


def test_manifest_refusals(tmp_path: Path) -> None:
    root = tmp_path / "addons"
    syntax = _module(root, "syntax", '{\n  "name": "x",\n  "depends": ["base",\n}\n')
    with pytest.raises(UsageError, match=r"syntax/__manifest__.py, line \d+: .*not valid Python"):
        read_manifest(syntax)
    with pytest.raises(UsageError, match="must be a dict literal, not a list"):
        read_manifest(_module(root, "listy", '["base"]'))
    with pytest.raises(UsageError, match="'depends' must be a list of module names"):
        read_manifest(_module(root, "strdeps", '{"depends": "base"}'))
    with pytest.raises(UsageError, match="'license' must be a string"):
        read_manifest(_module(root, "numlic", '{"license": 3}'))
    big = _module(root, "big", '{"name": "x"}')
    (big / "__manifest__.py").write_text("#" * MAX_MANIFEST_BYTES + '\n{"name": "x"}')
    with pytest.raises(UsageError, match="more than the 1048576 bytes"):
        read_manifest(big)
    latin = _module(root, "latin", "")
    (latin / "__manifest__.py").write_bytes(b'{\n"name": "caf\xe9"}')
    with pytest.raises(UsageError, match=r"line 2: the manifest is not valid UTF-8"):
        read_manifest(latin)
    linked = root / "linked"
    linked.mkdir()
    os.symlink(root / "big" / "__manifest__.py", linked / "__manifest__.py")
    with pytest.raises(UsageError, match="symbolic link"):
        read_manifest(linked)
    with pytest.raises(UsageError, match="not an Odoo addon"):
        read_manifest(tmp_path)


def test_manifest_defaults_follow_odoo(tmp_path: Path) -> None:
    bare = read_manifest(_module(tmp_path, "bare", '{"name": "Bare"}'))
    assert (bare.version, bare.license, bare.license_given) == ("1.0", "LGPL-3", False)
    assert (bare.depends, bare.depends_given, bare.installable) == ((), False, True)
    assert (bare.auto_install, bare.application, bare.external_dependencies) == (False, False, ())
    # Odoo 16.0-18.0 keep [] as written; 19.0 turns it into ['base'] (not for base itself).
    assert bare.odoo_depends("17.0") == ()
    assert bare.odoo_depends("19.0") == ("base",)
    empty_license = read_manifest(_module(tmp_path, "empty", '{"license": "", "depends": []}'))
    assert (empty_license.license, empty_license.license_given) == ("LGPL-3", False)
    assert empty_license.depends_given
    full = read_manifest(
        _module(
            tmp_path,
            "full",
            "# comment\n{\n 'version': '17.0.1.2.3', 'license': 'OPL-1',\n"
            " 'depends': ['sale', 'account', 'sale'],  # order kept\n"
            " 'installable': False, 'auto_install': ['sale'], 'application': True,\n"
            " 'external_dependencies': {'python': ['satcfdi'], 'bin': ['wkhtmltopdf']},\n}\n",
        )
    )
    assert full.depends == ("sale", "account", "sale")
    assert (full.version, full.license, full.license_given) == ("17.0.1.2.3", "OPL-1", True)
    assert (full.installable, full.auto_install, full.application) == (False, ("sale",), True)
    assert full.external_dependencies == (("python", ("satcfdi",)), ("bin", ("wkhtmltopdf",)))
    assert json.loads(json.dumps(full.as_dict()))["depends"] == ["sale", "account", "sale"]
    legacy = read_manifest(_module(tmp_path, "legacy", "{'name': 'x'}", "__openerp__.py"))
    assert legacy.manifest_file == "__openerp__.py"


def test_full_version_is_odoo_adapt_version() -> None:
    assert full_version("1.0", "17.0") == "17.0.1.0"
    assert full_version("1.0.3", "18.0") == "18.0.1.0.3"
    assert full_version("17.0.1.0.0", "17.0") == "17.0.1.0.0"
    assert full_version("19.0.1.0.0", "19.0") == "19.0.1.0.0"
    # 17.0/18.0 check only the last three parts and prefix what lacks the series ...
    assert full_version("16.0.1.0.0", "17.0") == "17.0.16.0.1.0.0"
    # ... 19.0 prefixes only versions of at most three parts.
    assert full_version("16.0.1.0.0", "19.0") == "16.0.1.0.0"
    # up to 16.0: "<series>" alone is prefixed, what follows the series must be x.y(.z)
    assert full_version("16.0", "16.0") == "16.0.16.0"
    assert full_version("16.0.1.2", "16.0") == "16.0.1.2"
    for bad, series in (
        ("1", "17.0"),
        ("a.b", "17.0"),
        ("1.0.0.0.0.0", "19.0"),
        ("1.0.0.0", "16.0"),
    ):
        with pytest.raises(UsageError, match="not valid for Odoo"):
            full_version(bad, series)


# -- scanning -----------------------------------------------------------------------------


def test_scan_addons_rules(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    _module(root, "b_mod", "{}")
    _module(root, "a_mod", "{}")
    _module(root, ".hidden", "{}")
    (root / "setup" / "a_mod").mkdir(parents=True)  # no manifest: not a module
    (root / "README.md").write_text("x")
    os.symlink(root / "a_mod", root / "c_alias")  # a link that stays inside: fine
    assert [m.name for m in scan_addons(root)] == ["a_mod", "b_mod", "c_alias"]

    outside = _module(tmp_path / "elsewhere", "evil", "{}")
    os.symlink(outside, root / "evil")
    with pytest.raises(PathError, match=r"evil .*symbolic link to .*outside the addons folder"):
        scan_addons(root)
    (root / "evil").unlink()
    os.symlink(tmp_path / "elsewhere", root / "plain_link")  # outside but no manifest: skipped
    assert [m.name for m in scan_addons(root)] == ["a_mod", "b_mod", "c_alias"]

    _module(root, "bad-name", "{}")
    with pytest.raises(UsageError, match=r"'bad-name' .* not a valid module name"):
        scan_addons(root)
    with pytest.raises(PathError, match="does not exist"):
        scan_addons(tmp_path / "missing")


def test_scan_addons_paths_first_path_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    _module(first, "dup", "{'version': '1.1'}")
    _module(second, "dup", "broken(")  # shadowed: never read, as in Odoo
    _module(second, "only_second", "{}")
    scan = scan_addons_paths([first, second])
    assert [m.name for m in scan.modules] == ["dup", "only_second"]
    assert scan.modules[0].version == "1.1"
    assert scan.duplicates == {"dup": (first / "dup", second / "dup")}
    assert scan.as_dict()["duplicates"] == {"dup": [str(first / "dup"), str(second / "dup")]}


# -- the Enterprise guardrail -------------------------------------------------------------


def _m(
    name: str, *depends: str, license: str | None = None, installable: bool = True
) -> ModuleManifest:
    return ModuleManifest(
        name=name,
        path=Path("/r") / name,
        manifest_file="__manifest__.py",
        license=license or "LGPL-3",
        license_given=license is not None,
        depends=depends,
        depends_given=True,
        installable=installable,
    )


def test_enterprise_rules() -> None:
    mods = [
        _m("ee_licence", "base", license="OEEL-1"),
        _m("ee_hidden", "base", license="OEEL-1", installable=False),
        _m("studio_user", "web", "web_studio"),
        _m("via_repo", "sale", "studio_user"),
        _m("via_via", "via_repo"),
        _m("paid", "sale", license="OPL-1"),
        _m("no_licence", "account"),
        _m("loc", "l10n_fr", "l10n_be_hr_payroll_acerta_unknown_but_l10n"),
        _m("mystery", "base", "some_oca_module", "other_missing"),
        _m("cycle_a", "cycle_b"),
        _m("cycle_b", "cycle_a"),
    ]
    report = check(mods, "17.0")
    assert not report.ok
    assert report.offending == {
        "ee_hidden": ("licence OEEL-1, though not installable",),
        "ee_licence": ("licence OEEL-1",),
        "studio_user": ("depends on Enterprise module web_studio",),
        "via_repo": ("depends on studio_user, which is refused",),
        "via_via": ("depends on via_repo, which is refused",),
    }
    assert "paid" not in report.offending and "no_licence" not in report.offending
    assert report.unresolved == {"mystery": ("some_oca_module", "other_missing")}
    msg = report.message()
    assert msg.startswith("5 addons are Odoo Enterprise or need it (Odoo 17.0): ee_hidden (")
    assert "studio_user (depends on Enterprise module web_studio)" in msg and msg.endswith(".")
    assert "\n" not in msg

    extra = check(
        [_m("x", "acme_enterprise_addon")], "18.0", extra_enterprise=["acme_enterprise_addon"]
    )
    assert extra.offending == {"x": ("depends on Enterprise module acme_enterprise_addon",)}
    assert check([_m("x", "acme_enterprise_addon")], "18.0").unresolved == {
        "x": ("acme_enterprise_addon",)
    }
    known = check([_m("x", "queue_job")], "18.0", known=["queue_job"])
    assert known.ok and known.unresolved == {}
    assert (
        known.message() == "No addon of the repository is Odoo Enterprise or needs it (Odoo 18.0)."
    )
    # A repository addon shadows the Enterprise one of the same name.
    shadow = check([_m("web_studio", "web"), _m("user", "web_studio")], "17.0")
    assert shadow.ok and shadow.shadowing == ("web_studio",)
    # A licence is compared without regard to case or spaces.
    assert not check([_m("y", license=" oeel-1 ")], "16.0").ok


def test_module_lists() -> None:
    assert enterprise.known_series() == ("16.0", "17.0", "18.0", "19.0")
    for series in enterprise.known_series():
        names = enterprise_names(series)
        assert {"web_studio", "account_accountant", "helpdesk", "sign", "planning"} <= names
        assert {"base", "web", "mail", "account", "sale", "stock"}.isdisjoint(names)
        assert not names & community_names(series)
    assert "knowledge" in enterprise_names("18.0") and "ai" in enterprise_names("19.0")
    assert enterprise_names("17") == enterprise_names("17.0")
    union = enterprise_names("saas~17.2")
    assert (
        union
        == enterprise_names("20.0")
        == frozenset().union(*(enterprise_names(s) for s in enterprise.known_series()))
    )
    assert "custom_x" in enterprise_names("17.0", ["custom_x"])
    assert is_community("l10n_fr", "18.0") and is_community("hr_contract", "17.0")
    assert not is_community("l10n_be_hr_payroll", "18.0")  # Enterprise localisation
    assert not is_community("web_studio", "16.0")
    data = Path(enterprise.__file__).with_name("data")
    for name in ("enterprise_modules.json", "community_modules.json"):
        loaded = json.loads((data / name).read_text())
        assert isinstance(loaded["_source"], str) and loaded["_source"]


# -- checksums ----------------------------------------------------------------------------


def _tree(root: Path) -> Path:
    (root / "models").mkdir(parents=True)
    (root / "__manifest__.py").write_text("{'name': 'x'}\n")
    (root / "__init__.py").write_text("from . import models\n")
    (root / "models" / "a.py").write_text("A = 1\n")
    (root / "models" / "b.py").write_text("B = 2\n")
    (root / ".gitignore").write_text("*.pyc\n")
    return root


def test_checksum_stable_and_sensitive(tmp_path: Path) -> None:
    one, two = _tree(tmp_path / "one" / "mod"), _tree(tmp_path / "two" / "mod")
    base = module_checksum(one)
    assert base == module_checksum(two) and len(base) == 64
    int(base, 16)

    (two / "models" / "a.py").write_text("A = 2\n")  # content
    assert module_checksum(two) != base
    (two / "models" / "a.py").write_text("A = 1\n")
    assert module_checksum(two) == base

    (two / "models" / "b.py").rename(two / "models" / "c.py")  # rename
    assert module_checksum(two) != base
    (two / "models" / "c.py").rename(two / "models" / "b.py")
    (two / "models" / "b.py").rename(two / "b.py")  # move
    assert module_checksum(two) != base
    (two / "b.py").rename(two / "models" / "b.py")
    assert module_checksum(two) == base

    (two / "models" / "new.py").write_text("")  # an added empty file
    assert module_checksum(two) != base
    (two / "models" / "new.py").unlink()
    (two / "models" / "a.py~").write_text("A = 1\n")  # editor junk is content
    assert module_checksum(two) != base
    (two / "models" / "a.py~").unlink()

    # caches and version control metadata do not count
    (two / "__pycache__").mkdir()
    (two / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0" * 10)
    (two / "models" / "old.pyc").write_bytes(b"\1")
    (two / ".git").mkdir()
    (two / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (two / "empty_dir").mkdir()
    assert module_checksum(two) == base


def test_checksum_symlink_not_followed(tmp_path: Path) -> None:
    mod = _tree(tmp_path / "mod")
    target = tmp_path / "outside.txt"
    target.write_text("first")
    os.symlink(target, mod / "link")
    with_link = module_checksum(mod)
    target.write_text("second, longer")  # the target's content does not count
    assert module_checksum(mod) == with_link
    (mod / "link").unlink()
    os.symlink(tmp_path / "other.txt", mod / "link")  # the link text does
    assert module_checksum(mod) != with_link
    (mod / "link").unlink()
    (mod / "link").write_text(str(target))  # a file with the same text is not the link
    assert module_checksum(mod) != with_link
    (mod / "link").unlink()
    os.symlink(tmp_path, mod / "dirlink")  # a link to a folder is not walked
    assert module_checksum(mod) != with_link
    os.mkfifo(mod / "pipe")
    with pytest.raises(UsageError, match="pipe is neither a file"):
        module_checksum(mod)


def test_checksum_streams_large_files(tmp_path: Path) -> None:
    mod = tmp_path / "mod"
    mod.mkdir()
    block = os.urandom(1024 * 1024)
    with open(mod / "big.bin", "wb") as fh:
        for _ in range(5):
            fh.write(block)
    first = module_checksum(mod)
    with open(mod / "big.bin", "r+b") as fh:
        fh.seek(3 * 1024 * 1024 + 17)
        fh.write(b"\xff" if block[17] != 0xFF else b"\x00")
    assert module_checksum(mod) != first


def test_checksums_and_changed(tmp_path: Path, oca_modules: list[ModuleManifest]) -> None:
    sums = checksums(oca_modules)
    assert len(sums) == 340 and len(set(sums.values())) == 340
    assert changed(sums, sums) == set()
    recorded = dict(sums)
    first, second = oca_modules[0].name, oca_modules[1].name
    recorded[first] = "0" * 64  # content changed since the last deploy
    del recorded[second]  # new since the last deploy
    recorded["gone_module"] = "1" * 64  # left the repository
    assert changed(sums, recorded) == {first, second}
    assert "gone_module" not in changed(sums, recorded)
    assert changed(sums, {}) == set(sums)


# -- recorded checksums in the database ---------------------------------------------------


@pytest.fixture
def odoo_db(tmp_path: Path, pg_cluster: PgCluster) -> Iterator[str]:
    p = make_odoo_project(tmp_path / "proj", pg_cluster, partners=5, attachments=1)
    yield p.conninfo(p.prod_db)
    with p.admin() as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(p.prod_db)))


def test_recorded_checksums_roundtrip(odoo_db: str) -> None:
    with psycopg.connect(odoo_db) as conn:
        assert read_recorded(conn) == {}
        write_recorded(conn, {"sale_x": "b" * 64, "account_y": "a" * 64})
        conn.commit()
    with psycopg.connect(odoo_db) as conn:
        assert read_recorded(conn) == {"account_y": "a" * 64, "sale_x": "b" * 64}
        row = conn.execute(
            "SELECT value, create_uid, write_uid, create_date, write_date, "
            "(now() AT TIME ZONE 'UTC') - write_date FROM ir_config_parameter WHERE key = %s",
            (PARAM_KEY,),
        ).fetchall()
        assert len(row) == 1
        value, create_uid, write_uid, create_date, write_date, age = row[0]
        assert value == '{"account_y":"' + "a" * 64 + '","sale_x":"' + "b" * 64 + '"}'
        assert (create_uid, write_uid) == (1, 1)
        assert create_date == write_date and abs(age.total_seconds()) < 60
        write_recorded(conn, {"sale_x": "c" * 64})  # an update, not a second row
        conn.commit()
        assert read_recorded(conn) == {"sale_x": "c" * 64}
        count = conn.execute(
            "SELECT count(*) FROM ir_config_parameter WHERE key = %s", (PARAM_KEY,)
        ).fetchone()
        assert count == (1,)

        for malformed in ("not json", "[1, 2]", '{"a": 1}', "null", '"text"'):
            conn.execute(
                "UPDATE ir_config_parameter SET value = %s WHERE key = %s", (malformed, PARAM_KEY)
            )
            assert read_recorded(conn) == {}, malformed
        conn.rollback()
        with pytest.raises(UsageError):
            write_recorded(conn, {"x": 1})  # type: ignore[dict-item]


def test_recorded_checksums_without_odoo_tables(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        assert read_recorded(conn) == {}
        with pytest.raises(OperationError, match="no ir_config_parameter table"):
            write_recorded(conn, {"x": "y"})
        conn.execute("CREATE TABLE ir_config_parameter (key varchar UNIQUE, value text)")
        write_recorded(conn, {"x": "y"})
        assert read_recorded(conn) == {"x": "y"}
        assert {".git", "__pycache__"} <= modulehash.IGNORED_NAMES
