"""Odoo addon manifests, read the way Odoo reads them and never executed.

A manifest (``__manifest__.py``, or the legacy ``__openerp__.py``) is one Python dict
literal. Odoo reads it with ``ast.literal_eval`` (``odoo/modules/module.py``); so does
:func:`read_manifest`, after an ``ast.parse`` that only builds a syntax tree: nothing in a
manifest is ever imported, evaluated or executed, and a manifest that is not a pure literal
(a function call, a name, ``__import__``) is refused with one sentence naming the file and
the line.

Defaults follow Odoo's ``_DEFAULT_MANIFEST`` and ``load_manifest`` (16.0 to 18.0) /
``_load_manifest`` (19.0) in ``odoo/modules/module.py``:

* ``version`` defaults to ``'1.0'``;
* ``license`` is mandatory but, when missing or empty, Odoo logs a warning and uses
  ``'LGPL-3'`` (``if not manifest.get('license'): manifest['license'] = 'LGPL-3'``);
* ``depends`` defaults to ``[]``; from 19.0 an empty list is replaced by ``['base']`` for
  every module but ``base`` ("prevent the hack ``'depends': []``"), see
  :meth:`ModuleManifest.odoo_depends`;
* ``installable`` defaults to ``True``, ``auto_install`` and ``application`` to ``False``,
  ``external_dependencies`` to ``{}``.

:class:`ModuleManifest` keeps what the file says (``license_given``, ``depends`` exactly as
written and in order); the defaults are applied only where Odoo applies them.
"""

from __future__ import annotations

import ast
import errno
import os
import re
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liftgate.errors import PathError, UsageError

__all__ = [
    "DEFAULT_LICENSE",
    "DEFAULT_VERSION",
    "MANIFEST_NAMES",
    "MAX_MANIFEST_BYTES",
    "MODULE_NAME_RE",
    "AddonsScan",
    "ModuleManifest",
    "full_version",
    "read_manifest",
    "scan_addons",
    "scan_addons_paths",
]

MANIFEST_NAMES = ("__manifest__.py", "__openerp__.py")
MAX_MANIFEST_BYTES = 1024 * 1024
DEFAULT_VERSION = "1.0"
DEFAULT_LICENSE = "LGPL-3"
# Odoo's MODULE_NAME_RE (19.0) is r'^\w{1,256}$'; liftgate keeps it to ASCII.
MODULE_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,256}$")

_ALLOWED_NODES = (
    ast.Expression,
    ast.Constant,
    ast.Dict,
    ast.List,
    ast.Tuple,
    ast.Set,
    ast.Load,
    ast.UnaryOp,
    ast.UAdd,
    ast.USub,
    ast.BinOp,
    ast.Add,
    ast.Sub,
)


@dataclass(frozen=True)
class ModuleManifest:
    """One addon: its folder name and what its manifest says.

    ``depends`` and ``auto_install`` (when a list) are tuples in the order written;
    ``external_dependencies`` is a tuple of ``(kind, names)`` pairs in the order written
    (``kind`` is usually ``python`` or ``bin``). ``raw`` is the whole literal dict (not
    compared, not shown in ``repr``).
    """

    name: str
    path: Path
    manifest_file: str
    version: str = DEFAULT_VERSION
    license: str = DEFAULT_LICENSE
    license_given: bool = False
    depends: tuple[str, ...] = ()
    depends_given: bool = False
    installable: bool = True
    auto_install: bool | tuple[str, ...] = False
    application: bool = False
    external_dependencies: tuple[tuple[str, tuple[str, ...]], ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def manifest_path(self) -> Path:
        return self.path / self.manifest_file

    def odoo_depends(self, series: str) -> tuple[str, ...]:
        """The dependencies Odoo ``series`` uses: as written, except that from 19.0 an empty
        list means ``('base',)`` (and ``base`` itself never depends on anything)."""
        if self.name == "base":
            return ()
        major = _major(series)
        if not self.depends and (major is None or major >= 19):
            return ("base",)
        return self.depends

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "manifest_file": self.manifest_file,
            "version": self.version,
            "license": self.license,
            "license_given": self.license_given,
            "depends": list(self.depends),
            "depends_given": self.depends_given,
            "installable": self.installable,
            "auto_install": (
                self.auto_install
                if isinstance(self.auto_install, bool)
                else list(self.auto_install)
            ),
            "application": self.application,
            "external_dependencies": {k: list(v) for k, v in self.external_dependencies},
        }


@dataclass(frozen=True)
class AddonsScan:
    """What :func:`scan_addons_paths` found.

    ``modules`` holds one manifest per name, from the first addons path that has it
    (Odoo's rule), sorted by name. ``duplicates`` maps every name found in more than one
    path to all its folders, the one in use first; the shadowed copies are not read, as in
    Odoo.
    """

    modules: tuple[ModuleManifest, ...]
    duplicates: Mapping[str, tuple[Path, ...]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "modules": [m.as_dict() for m in self.modules],
            "duplicates": {k: [str(p) for p in v] for k, v in self.duplicates.items()},
        }


# -- reading ------------------------------------------------------------------------------


def read_manifest(module_dir: Path) -> ModuleManifest:
    """Read the manifest of the addon in ``module_dir`` (``__manifest__.py`` first, then the
    legacy ``__openerp__.py``), without executing anything.

    Raises :class:`UsageError` (one sentence naming the file, and the line when known) when
    there is no manifest, it is a symbolic link or not a regular file, it is larger than
    :data:`MAX_MANIFEST_BYTES`, it is not UTF-8, it is not valid Python, it is not a pure
    literal, it is not a dict, or a known key has a value of the wrong type.
    """
    module_dir = Path(module_dir)
    manifest_file = _manifest_name(module_dir)
    if manifest_file is None:
        raise UsageError(
            f"{module_dir} has no {MANIFEST_NAMES[0]} (nor {MANIFEST_NAMES[1]}): "
            f"it is not an Odoo addon."
        )
    path = module_dir / manifest_file
    text = _read_text(path)
    data = _parse_literal(text, path)
    return _build(module_dir, manifest_file, path, data)


def _manifest_name(module_dir: Path) -> str | None:
    for name in MANIFEST_NAMES:
        try:
            st = os.lstat(module_dir / name)
        except FileNotFoundError:
            continue
        except NotADirectoryError:
            return None
        except OSError as exc:
            raise UsageError(f"Cannot read {module_dir / name}: {exc.strerror}.") from exc
        if stat.S_ISLNK(st.st_mode):
            raise UsageError(
                f"{module_dir / name} is a symbolic link; liftgate reads only a regular "
                f"manifest file."
            )
        if stat.S_ISREG(st.st_mode):
            return name
        raise UsageError(f"{module_dir / name} is not a regular file.")
    return None


def _read_text(path: Path) -> str:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(f"{path} is a symbolic link; not read.") from exc
        raise UsageError(f"Cannot read {path}: {exc.strerror}.") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{path} is not a regular file.")
        if st.st_size > MAX_MANIFEST_BYTES:
            raise UsageError(
                f"{path} is {st.st_size} bytes, more than the {MAX_MANIFEST_BYTES} bytes a "
                f"manifest may have."
            )
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_MANIFEST_BYTES:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise UsageError(f"Cannot read {path}: {exc.strerror}.") from exc
    finally:
        os.close(fd)
    if size > MAX_MANIFEST_BYTES:
        raise UsageError(
            f"{path} grew past the {MAX_MANIFEST_BYTES} bytes a manifest may have while it "
            f"was read."
        )
    raw = b"".join(chunks)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UsageError(f"{path}, line {line}: the manifest is not valid UTF-8.") from exc
    return text.removeprefix("\ufeff")


def _parse_literal(text: str, path: Path) -> dict[Any, Any]:
    try:
        tree = ast.parse(text, filename=str(path), mode="eval")
    except SyntaxError as exc:
        where = f", line {exc.lineno}" if exc.lineno else ""
        raise UsageError(f"{path}{where}: the manifest is not valid Python ({exc.msg}).") from exc
    except (ValueError, MemoryError, RecursionError) as exc:  # e.g. NUL bytes, deep nesting
        raise UsageError(f"{path}: the manifest cannot be parsed ({exc}).") from exc
    bad = _first_non_literal(tree)
    if bad is not None:
        raise UsageError(
            f"{path}, line {getattr(bad, 'lineno', '?')}: the manifest must be a plain "
            f"literal, not {_describe(bad)}; it was not executed."
        )
    try:
        value = ast.literal_eval(tree)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise UsageError(
            f"{path}: the manifest is not a plain literal ({exc}); it was not executed."
        ) from exc
    if not isinstance(value, dict):
        raise UsageError(
            f"{path}: the manifest must be a dict literal, not a {type(value).__name__}."
        )
    return value


def _first_non_literal(tree: ast.AST) -> ast.AST | None:
    bad = [node for node in ast.walk(tree) if not isinstance(node, _ALLOWED_NODES)]
    if not bad:
        return None
    return min(bad, key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0)))


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            return f"a call to {func.id}()"
        if isinstance(func, ast.Attribute):
            return f"a call to .{func.attr}()"
        return "a function call"
    if isinstance(node, ast.Name):
        return f"the name {node.id}"
    if isinstance(node, ast.Attribute):
        return f"the attribute .{node.attr}"
    return f"an expression ({type(node).__name__})"


def _build(
    module_dir: Path, manifest_file: str, path: Path, data: dict[Any, Any]
) -> ModuleManifest:
    def bad(key: str, what: str) -> UsageError:
        return UsageError(
            f"{path}: '{key}' must be {what}, not {type(data[key]).__name__} {data[key]!r}."
        )

    version = data.get("version", DEFAULT_VERSION)
    if isinstance(version, bool) or not isinstance(version, str | int | float):
        raise bad("version", "a string")
    version = str(version)

    license_value = data.get("license")
    if license_value is not None and not isinstance(license_value, str):
        raise bad("license", "a string")
    license_given = bool(license_value)  # Odoo: `if not manifest.get('license')`
    license_text = license_value if license_value else DEFAULT_LICENSE

    depends_value = data.get("depends", [])
    if not isinstance(depends_value, list | tuple) or not all(
        isinstance(d, str) for d in depends_value
    ):
        raise bad("depends", "a list of module names")

    auto_value = data.get("auto_install", False)
    auto_install: bool | tuple[str, ...]
    if isinstance(auto_value, list | tuple | set | frozenset):
        if not all(isinstance(d, str) for d in auto_value):
            raise bad("auto_install", "a boolean or a list of module names")
        auto_install = (
            tuple(auto_value)
            if not isinstance(auto_value, set | frozenset)
            else (tuple(sorted(auto_value)))
        )
    else:
        auto_install = bool(auto_value)

    ext_value = data.get("external_dependencies", {})
    if not isinstance(ext_value, dict):
        raise bad("external_dependencies", "a dict")
    external: list[tuple[str, tuple[str, ...]]] = []
    for kind, names in ext_value.items():
        if (
            not isinstance(kind, str)
            or not isinstance(names, list | tuple)
            or not all(isinstance(n, str) for n in names)
        ):
            raise bad("external_dependencies", "a dict of lists of names")
        external.append((kind, tuple(names)))

    return ModuleManifest(
        name=module_dir.name,
        path=module_dir,
        manifest_file=manifest_file,
        version=version,
        license=license_text,
        license_given=license_given,
        depends=tuple(depends_value),
        depends_given="depends" in data,
        installable=bool(data.get("installable", True)),
        auto_install=auto_install,
        application=bool(data.get("application", False)),
        external_dependencies=tuple(external),
        raw=data,
    )


# -- versions -----------------------------------------------------------------------------

_SERIES_RE = re.compile(r"^(?:saas~)?(\d+)\.\d+$")
_OLD_BASE_RE = re.compile(r"^[0-9]+\.[0-9]+(?:\.[0-9]+)?$")


def _major(series: str) -> int | None:
    m = _SERIES_RE.match(series)
    return int(m.group(1)) if m else None


def full_version(version: str, series: str) -> str:
    """Odoo's ``adapt_version``: the version Odoo ``series`` records for a module.

    * up to 16.0: ``<series>.`` is prefixed unless the version already starts with
      ``<series>.``, and what follows the series must be ``x.y`` or ``x.y.z``;
    * 17.0 and 18.0: 2 to 5 dot-separated parts, the last three integers, and the prefix is
      added when the version does not start with the series;
    * 19.0 and later (and series liftgate cannot parse): 2 to 5 integer parts, the prefix is
      added only to versions of at most 3 parts that do not start with the series.

    ``full_version("1.0.3", "17.0") == "17.0.1.0.3"``. Raises :class:`UsageError` for a
    version Odoo would refuse.
    """

    def invalid(detail: str) -> UsageError:
        return UsageError(
            f"Module version {version!r} is not valid for Odoo {series} ({detail}); use x.y, "
            f"x.y.z, {series}.x.y or {series}.x.y.z."
        )

    major = _major(series)
    if major is not None and major <= 16:
        if version == series or not version.startswith(series + "."):
            base, full = version, f"{series}.{version}"
        else:
            base, full = version[len(series) + 1 :], version
        if not _OLD_BASE_RE.match(base):
            raise invalid("expected x.y or x.y.z after the series")
        return full
    parts = version.split(".")
    if not 2 <= len(parts) <= 5:
        raise invalid("it must have between 2 and 5 parts")
    if major is not None and major <= 18:
        checked = parts[-3:]
    else:
        checked = list(parts)
        if version.startswith(series) and not checked[0].isdigit():
            checked[0] = "".join(c for c in checked[0] if c.isdigit())
    if not all(p.isascii() and p.isdigit() for p in checked):
        raise invalid("its parts must be integers")
    if (len(checked) <= 3) and not version.startswith(series):
        return f"{series}.{version}"
    return version


# -- scanning -----------------------------------------------------------------------------


def _candidates(root: Path) -> Iterator[tuple[str, Path]]:
    """(name, folder) of every immediate sub-folder of ``root`` that holds a manifest,
    sorted by name; hidden folders are skipped, symbolic links leaving ``root`` refused."""
    root = Path(root)
    try:
        root_real = root.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise PathError(f"Addons folder {root} does not exist or cannot be resolved.") from exc
    if not root_real.is_dir():
        raise PathError(f"Addons folder {root} is not a directory.")
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        raise PathError(f"Cannot list addons folder {root}: {exc.strerror}.") from exc
    for entry in entries:
        if entry.name.startswith("."):
            continue
        folder = Path(entry.path)
        if entry.is_symlink():
            try:
                target = folder.resolve(strict=True)
            except (OSError, RuntimeError):
                continue  # dangling or looping link: not a module Odoo could load
            if not target.is_relative_to(root_real) or target == root_real:
                if _has_manifest(target):
                    raise PathError(
                        f"Module folder {entry.name} in {root} is a symbolic link to "
                        f"{target}, outside the addons folder."
                    )
                continue
        if not entry.is_dir():  # follows a link that stays inside root
            continue
        if not _has_manifest(folder):
            continue
        if not MODULE_NAME_RE.match(entry.name):
            raise UsageError(
                f"Folder {entry.name!r} in {root} holds an Odoo manifest but is not a valid "
                f"module name (letters, digits and underscores only)."
            )
        yield entry.name, folder


def _has_manifest(folder: Path) -> bool:
    for name in MANIFEST_NAMES:
        try:
            st = os.lstat(folder / name)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
            return True
    return False


def scan_addons(root: Path) -> list[ModuleManifest]:
    """Every addon directly under ``root`` (a folder holding a manifest), sorted by name.

    Hidden folders and folders without a manifest are skipped. A folder whose name is not a
    valid module name, or a symbolic link to a module outside ``root``, is refused
    (:class:`UsageError` / :class:`PathError`); a manifest that cannot be read raises as
    :func:`read_manifest` does.
    """
    return [read_manifest(folder) for _, folder in _candidates(root)]


def scan_addons_paths(paths: Sequence[Path]) -> AddonsScan:
    """The addons of several addons paths with Odoo's rule: a name found in more than one
    path is taken from the first; the others are reported in ``duplicates``, not read."""
    found: dict[str, ModuleManifest] = {}
    seen: dict[str, list[Path]] = {}
    for root in paths:
        for name, folder in _candidates(root):
            if name in seen:
                seen[name].append(folder)
                continue
            seen[name] = [folder]
            found[name] = read_manifest(folder)
    duplicates = {
        name: tuple(folders) for name, folders in sorted(seen.items()) if len(folders) > 1
    }
    return AddonsScan(modules=tuple(found[name] for name in sorted(found)), duplicates=duplicates)
