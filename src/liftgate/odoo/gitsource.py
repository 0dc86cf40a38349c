"""The addons repository: a local mirror of it, commits resolved to full SHAs, exports.

liftgate keeps one bare mirror per repository URL under ``<state_dir>/git/`` and fetches
into it (heads and tags) before each deploy, so a deploy never depends on what a working
copy somewhere happens to hold. The URL is never written into the mirror's config (it may
carry a token): it is passed to ``git fetch`` on each call and registered with the
redactor. Git runs with argv lists only, no terminal prompts, no system or global config,
and only the ``file``, ``git``, ``ssh``, ``http`` and ``https`` transports (``ext::`` is
refused by git itself).

A release is exported with ``git read-tree`` + ``git checkout-index`` into a fresh folder:
git refuses paths that escape the work tree (``..``, ``.git``), and the release holds no
``.git`` folder.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from liftgate.errors import OperationError, UsageError

__all__ = ["CommitInfo", "GitSource", "valid_ref"]

_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
_SHA = re.compile(r"^[0-9a-f]{40}$")
_TIMEOUT = 600.0


def valid_ref(ref: str) -> bool:
    """A commit SHA (short or full), branch or tag name — never an option or a revision
    expression (no ``-``-prefix, ``..``, ``@{``, ``~``, ``^`` or ``:``)."""
    return bool(_REF.match(ref)) and ".." not in ref and not ref.endswith((".lock", "/"))


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    subject: str
    author: str
    committed_at: str

    def as_dict(self) -> dict[str, str]:
        return {
            "sha": self.sha,
            "subject": self.subject,
            "author": self.author,
            "committed_at": self.committed_at,
        }


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_ALLOW_PROTOCOL="file:git:ssh:http:https",
        LC_ALL="C",
    )
    return env


class GitSource:
    """One addons repository (``url``: a URL or a local path) and its mirror."""

    def __init__(self, url: str, mirrors: Path) -> None:
        self.url = url
        key = hashlib.sha256(url.encode()).hexdigest()[:20]
        self.mirror = mirrors / f"{key}.git"

    @classmethod
    def from_setting(cls, value: str, base_dir: Path, mirrors: Path) -> GitSource:
        """A URL (``scheme://`` or scp-like ``host:path``) as given; anything else is a path,
        relative to the config's folder, that must be an existing git repository."""
        if value.startswith("-"):
            raise UsageError(f"repository {value!r} must not start with '-'")
        if "::" in value:  # git's remote helpers (ext::, fd::, ...) run commands
            raise UsageError(f"repository {value!r} uses a transport liftgate does not allow")
        if re.match(r"^[a-z][a-z0-9+.-]*://", value) or re.match(r"^[\w.-]+@[\w.-]+:", value):
            return cls(value, mirrors)
        path = (base_dir / value).resolve()
        if not path.is_dir():
            raise UsageError(f"repository {path} does not exist or is not a folder")
        return cls(str(path), mirrors)

    # git --------------------------------------------------------------------
    def _git(
        self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = ["git", "--git-dir", str(self.mirror), *args]
        try:
            return subprocess.run(
                argv,
                cwd=cwd,
                env=env or _git_env(),
                capture_output=True,
                text=True,
                timeout=_TIMEOUT,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise OperationError("git is not installed (apt-get install git)") from None
        except subprocess.TimeoutExpired:
            raise OperationError(f"git {args[0]} did not finish in {_TIMEOUT:.0f} s") from None

    def _checked(self, *args: str, what: str) -> str:
        done = self._git(*args)
        if done.returncode != 0:
            lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
            reason = lines[-1] if lines else f"exit status {done.returncode}"
            raise OperationError(f"{what} failed: {reason}")
        return done.stdout

    def fetch(self) -> None:
        """Create the mirror if needed, then fetch every head and tag from the repository."""
        if not (self.mirror / "HEAD").exists():
            self.mirror.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.mirror.parent))
            done = subprocess.run(
                ["git", "init", "--quiet", "--bare", str(tmp)],
                env=_git_env(),
                capture_output=True,
                text=True,
                timeout=_TIMEOUT,
                check=False,
                stdin=subprocess.DEVNULL,
            )
            if done.returncode != 0:
                shutil.rmtree(tmp, ignore_errors=True)
                raise OperationError(f"git init of the mirror failed: {done.stderr.strip()}")
            try:
                os.rename(tmp, self.mirror)
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)  # another process made it first
        self._checked(
            "fetch",
            "--quiet",
            "--prune",
            "--no-write-fetch-head",
            "--",
            self.url,
            "+refs/heads/*:refs/heads/*",
            "+refs/tags/*:refs/tags/*",
            what=f"git fetch from {self.url}",
        )

    def resolve(self, ref: str) -> str:
        """The full 40-hex SHA of commit ``ref`` (a SHA, short SHA, branch or tag)."""
        if not valid_ref(ref):
            raise UsageError(f"{ref!r} is not a commit SHA, branch or tag name")
        for candidate in (
            ref if _SHA.match(ref) else None,
            f"refs/heads/{ref}",
            f"refs/tags/{ref}",
            ref,
        ):
            if candidate is None:
                continue
            done = self._git("rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}")
            if done.returncode == 0:
                return done.stdout.strip()
        raise UsageError(f"commit {ref} does not exist in {self.url}")

    def info(self, sha: str) -> CommitInfo:
        out = self._checked(
            "log", "-1", "--format=%H%x00%s%x00%an <%ae>%x00%cI", sha, "--", what="git log"
        )
        full, subject, author, date = out.rstrip("\n").split("\x00")
        return CommitInfo(sha=full, subject=subject, author=author, committed_at=date)

    def export(self, sha: str, dest: Path) -> None:
        """Write the tree of commit ``sha`` into the new folder ``dest`` (must not exist)."""
        if not _SHA.match(sha):
            raise UsageError(f"{sha!r} is not a full commit SHA")
        dest.mkdir(mode=0o755)
        index = dest.parent / f".{dest.name}.index"
        env = {**_git_env(), "GIT_INDEX_FILE": str(index)}
        try:
            for args in (
                ("--work-tree", str(dest), "read-tree", sha),
                ("--work-tree", str(dest), "checkout-index", "--all", "--force"),
            ):
                done = self._git(*args, cwd=dest, env=env)
                if done.returncode != 0:
                    raise OperationError(
                        f"git could not export commit {sha}: {done.stderr.strip()}"
                    )
        finally:
            index.unlink(missing_ok=True)

    def changed_paths(self, old: str, new: str) -> list[str]:
        """Paths that differ between two commits (for the evidence)."""
        out = self._checked("diff", "--name-only", "-z", old, new, "--", what="git diff")
        return [p for p in out.split("\x00") if p]
