"""Screen an untrusted plain-SQL dump before psql runs it.

An Odoo backup zip's ``dump.sql`` comes from anywhere. liftgate loads it as the env's own
non-superuser role (the server refuses superuser-only SQL) and with psql in restricted mode
(``\\restrict``: no backslash command runs), and before that reads every line here, as psql
will read it, so that a hostile dump is refused with the statement named and nothing run.

Refused (the reason names what it would do):

* any psql backslash command or ``\\;`` / ``\\:`` outside quotes and COPY data (so ``\\!``,
  ``\\copy ... program``, ``\\connect``, ``\\set`` ...), except the ``\\restrict KEY`` /
  ``\\unrestrict KEY`` lines pg_dump itself writes: those are blanked (liftgate applies its
  own key) so line numbers stay those of the dump;
* psql variable interpolation (``:NAME`` with a capital letter, ``:'x'``, ``:"x"``, ``:{?x}``);
* ``COPY`` other than exactly ``COPY table [(columns)] FROM stdin;`` ending its line (so
  ``COPY ... PROGRAM`` and server-side files), ``ALTER SYSTEM``, ``LOAD``, ``DO``;
* ``CREATE EXTENSION`` of an untrusted language (``pl...u``) or of an extension that reaches
  outside the database (dblink, postgres_fdw, file_fdw, adminpack, ...); ``LANGUAGE`` other
  than sql, plpgsql and the trusted procedural languages; foreign servers, wrappers, user
  mappings; roles, databases, tablespaces, subscriptions, event triggers; ``SET ROLE`` and
  ``SET SESSION AUTHORIZATION``;
* calls of server file and large-object functions (``lo_import``, ``lo_export``,
  ``pg_read_file`` ...), also inside function bodies;
* anything that would change ``standard_conforming_strings`` or switch ``client_encoding``
  to an encoding whose multibyte characters can hide a quote or backslash: those decide how
  psql splits the rest of the file, and the scan assumes what pg_dump writes;
* a number glued to a letter (``1e'..'`` is read differently by different psql versions) and
  a line outside COPY data longer than :data:`MAX_LINE`.

The lexer follows psql's own (``src/fe_utils/psqlscan.l``, PostgreSQL 14+): quotes of every
kind with their continuation rules, nested comments, dollar quotes, parentheses and
``BEGIN ATOMIC ... END`` bodies, so it splits statements where psql does. Memory stays
bounded by the longest line: COPY data is passed through a chunk at a time.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import IO

from liftgate.errors import UsageError

__all__ = ["MAX_LINE", "DumpScan", "SqlRefusedError", "SqlScanner", "scan_stream"]

MAX_LINE = 256 * 1024 * 1024
READ = 1 << 20

_CODE = re.compile(
    rb"""
     (?P<ws>[ \t\n\r\f]+)
    |(?P<lc>--[^\n\r]*)
    |(?P<bc>/\*)
    |(?P<word>[A-Za-z_\x80-\xff][A-Za-z0-9_$\x80-\xff]*)
    |(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
    |(?P<dollar>\$(?:[A-Za-z_\x80-\xff][A-Za-z0-9_\x80-\xff]*)?\$)
    |(?P<param>\$\d+)
    |(?P<var>:(?:'[A-Za-z0-9_\x80-\xff]*|"[A-Za-z0-9_\x80-\xff]*|\{\?|[A-Za-z0-9_\x80-\xff]+))
    |(?P<cast>::)
    |(?P<other>.)
    """,
    re.X | re.S,
)
_IDENT_START = re.compile(rb"[A-Za-z_\x80-\xff]")
_WORDS = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
_RESTRICT = re.compile(rb"\\(un)?restrict [A-Za-z0-9]{1,256}[ \t]*\r?\n?")
_BODY_TAIL = 64

# functions that read or write server files, large objects from files, other databases
_DANGEROUS_CALLS = frozenset(
    {
        "lo_import", "lo_export", "pg_read_file", "pg_read_binary_file", "pg_ls_dir",
        "pg_stat_file", "pg_file_write", "pg_file_rename", "pg_file_unlink", "pg_file_sync",
        "pg_logdir_ls", "dblink", "dblink_exec", "dblink_connect", "dblink_connect_u",
        "dblink_send_query", "pg_reload_conf", "pg_rotate_logfile", "pg_promote",
    }
)  # fmt: skip
_LEXING_SETTINGS = frozenset({"standard_conforming_strings", "client_encoding"})
# client-only encodings: a byte of a multibyte character may be a quote or a backslash
_UNSAFE_ENCODINGS = frozenset(
    {
        "sjis", "shift_jis", "shiftjis", "shift_jis_2004", "shiftjis2004", "big5", "gbk",
        "uhc", "gb18030", "johab", "win932", "win936", "win949", "win950", "cp932", "cp936",
        "cp949", "cp950", "mskanji",
    }
)  # fmt: skip
_TRUSTED_LANGUAGES = frozenset({"sql", "plpgsql", "plperl", "pltcl", "plv8", "java"})
_OUTSIDE_EXTENSIONS = frozenset(
    {"adminpack", "dblink", "file_fdw", "postgres_fdw", "plsh", "http", "pgsql_http", "pg_cron"}
)
# (first words) -> why a dump may not contain it
_REFUSED_PREFIXES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("alter", "system"), "ALTER SYSTEM changes the server's configuration"),
    (("load",), "LOAD loads a shared library into the server"),
    (("do",), "an anonymous code block (DO) is not part of a database dump"),
    (("create", "server"), "a foreign server reaches outside the database"),
    (("alter", "server"), "a foreign server reaches outside the database"),
    (("create", "foreign", "data"), "a foreign-data wrapper reaches outside the database"),
    (("alter", "foreign", "data"), "a foreign-data wrapper reaches outside the database"),
    (("create", "user", "mapping"), "a user mapping holds credentials for another server"),
    (("alter", "user", "mapping"), "a user mapping holds credentials for another server"),
    (("import", "foreign"), "IMPORT FOREIGN SCHEMA reaches outside the database"),
    (("create", "subscription"), "a subscription connects to another server"),
    (("alter", "subscription"), "a subscription connects to another server"),
    (("create", "event"), "an event trigger needs a superuser"),
    (("create", "tablespace"), "a tablespace is a server-wide object"),
    (("create", "database"), "the dump must not create databases (made with pg_dump --create?)"),
    (("alter", "database"), "the dump must not alter databases (made with pg_dump --create?)"),
    (("drop", "database"), "the dump must not drop databases"),
    (("set", "role"), "the dump must not switch roles"),
    (("set", "session", "role"), "the dump must not switch roles"),
    (("set", "local", "role"), "the dump must not switch roles"),
    (("set", "session", "authorization"), "the dump must not switch roles"),
)
_ROLE_WORDS = frozenset({"role", "user", "group"})
_LANGUAGE = ("w", "language")
_NEWLINE = re.compile(rb"[\n\r]")
_TRAILING_WORD = re.compile(rb"[A-Za-z0-9_]*\Z")


class SqlRefusedError(UsageError):
    """The dump holds a statement liftgate will not run (message names it and its line)."""


@dataclass
class DumpScan:
    """What a scan saw: sizes and counts, and the sha256 of the bytes read."""

    lines: int = 0
    statements: int = 0
    copy_blocks: int = 0
    bytes_in: int = 0
    restrict_lines: int = 0
    sha256: str = ""
    _digest: hashlib._Hash = field(default_factory=hashlib.sha256, repr=False)


def _clip(raw: bytes | bytearray) -> str:
    text = " ".join(bytes(raw).decode("utf-8", "replace").split())
    return text[:200]


class SqlScanner:
    """Feed a dump line by line (``feed``), then ``finish``; raises SqlRefusedError."""

    def __init__(self, name: str = "dump.sql") -> None:
        self.name = name
        self.stats = DumpScan()
        self._line = 0
        self._pending = bytearray()  # a code line not yet complete
        self._data = False  # inside COPY data
        self._data_line_start = True
        self._copy_started_line = False
        # lexer state
        self._mode = "code"  # code | str | estr | qident | dollar | comment | xqs
        self._xqs_kind = "str"
        self._xqs_newline = False
        self._str = bytearray()
        self._tag = b""
        self._depth_comment = 0
        self._paren = 0
        self._begin = 0
        self._idents = 0
        self._first = ["", "", "", ""]
        self._body_words: set[str] = set()
        self._body_tail = b""
        # statement state
        self._in_stmt = False
        self._stmt_line = 0
        self._head = bytearray()
        self._here = b""  # the rest of the line at the token being read
        self._top: list[tuple[str, str]] = []
        self._top_overflow = False
        self._lexing_setting = False

    # ---------------------------------------------------------------- input
    def feed(self, piece: bytes) -> bytes:
        """One piece of input (a whole line or part of a long one); returns what to write."""
        self.stats.bytes_in += len(piece)
        self.stats._digest.update(piece)
        complete = piece.endswith(b"\n")
        if b"\0" in piece:
            self._pending += piece
            self._refuse_line("it holds a NUL byte, which psql and this scan would read apart")
        if self._data:
            return self._feed_data(piece, complete)
        self._pending += piece
        if not complete:
            if len(self._pending) > MAX_LINE:
                self._refuse_line(f"a line longer than {MAX_LINE // (1024 * 1024)} MiB")
            return b""
        line = bytes(self._pending)
        self._pending.clear()
        return self._code_line(line)

    def finish(self) -> DumpScan:
        """End of input: check the last line and statement."""
        if self._pending:
            line = bytes(self._pending)
            self._pending.clear()
            self._code_line(line)
        if self._mode == "xqs":
            self._mode = "code"
            self._string_done()
        if self._in_stmt:
            self._end_statement()
        self.stats.lines = self._line
        self.stats.sha256 = self.stats._digest.hexdigest()
        return self.stats

    def _feed_data(self, piece: bytes, complete: bool) -> bytes:
        if self._data_line_start:
            self._line += 1
            if piece in (b"\\.\n", b"\\.\r\n", b"\\."):
                self._data = False
        self._data_line_start = complete
        return piece

    # ---------------------------------------------------------------- errors
    def _refuse(self, reason: str, text: bytes | bytearray | None = None, line: int = 0) -> None:
        where = line or self._stmt_line or self._line
        shown = _clip(self._head if text is None else text)
        raise SqlRefusedError(
            f"{self.name} line {where} is refused because {reason}: {shown}",
            hint="liftgate runs only what pg_dump writes; remove the statement if the dump is "
            "yours, or ask where the file came from",
        )

    def _refuse_line(self, reason: str) -> None:
        self._refuse(reason, bytes(self._pending[:200]), self._line + 1)

    # ---------------------------------------------------------------- lexer
    def _code_line(self, line: bytes) -> bytes:
        self._line += 1
        if self._mode == "code" and line.startswith(b"\\") and _RESTRICT.fullmatch(line):
            self.stats.restrict_lines += 1
            return b"\n" if line.endswith(b"\n") else b""
        body = line[:-1] if line.endswith(b"\n") else line
        pos = 0
        end = len(body)
        while pos < end:
            pos = self._step(body, pos)
        if self._copy_started_line:
            self._copy_started_line = False
            self._data = True
            self._data_line_start = True
        return line

    def _step(self, line: bytes, pos: int) -> int:
        mode = self._mode
        if mode == "code":
            return self._code(line, pos)
        if mode in ("str", "estr"):
            return self._string(line, pos)
        if mode == "qident":
            close = line.find(b'"', pos)
            while close != -1 and line[close + 1 : close + 2] == b'"':
                close = line.find(b'"', close + 2)
            if close == -1:
                self._keep(line[pos:])
                return len(line)
            self._keep(line[pos : close + 1])
            self._mode = "code"
            return close + 1
        if mode == "dollar":
            return self._dollar(line, pos)
        if mode == "comment":
            return self._comment(line, pos)
        return self._continuation(line, pos)

    def _keep(self, raw: bytes) -> None:
        if self._in_stmt and len(self._head) < 400:
            self._head += raw[: 400 - len(self._head)]

    def _string(self, line: bytes, pos: int) -> int:
        escapes = self._mode == "estr"
        i = pos
        end = len(line)
        while i < end:
            ch = line[i]
            if escapes and ch == 0x5C:  # backslash: escapes the next byte, newline included
                i += 2
                continue
            if ch == 0x27:  # quote
                if line[i + 1 : i + 2] == b"'":
                    i += 2
                    continue
                self._text(line[pos:i])
                self._keep(line[pos : i + 1])
                self._xqs_kind = self._mode
                self._xqs_newline = False
                self._mode = "xqs"
                return i + 1
            i += 1
        self._text(line[pos:])
        self._keep(line[pos:])
        return end

    def _text(self, raw: bytes) -> None:
        if len(self._str) < 256:
            self._str += raw[: 256 - len(self._str)]

    def _string_done(self) -> None:
        value = bytes(self._str).decode("utf-8", "replace")
        if value.strip().lower() in _LEXING_SETTINGS:
            self._lexing_setting = True
        self._top_token("s", value)

    def _continuation(self, line: bytes, pos: int) -> int:
        """After a closing quote, psql continues the string if whitespace holding a newline
        and then a quote follow *on the same line*: psql lexes each line without its final
        newline, so only a carriage return counts. A quote ending its line keeps the state
        into the next line."""
        end = len(line)
        i = pos
        while i < end:
            ch = line[i]
            if ch in b" \t\f":
                i += 1
            elif ch == 0x0D:
                self._xqs_newline = True
                i += 1
            elif line.startswith(b"--", i):
                stop = _NEWLINE.search(line, i)
                i = stop.start() if stop else end
            elif ch == 0x27 and self._xqs_newline:
                self._keep(line[pos : i + 1])
                self._mode = self._xqs_kind
                return i + 1
            else:
                break
        else:
            if pos == end:  # nothing after the quote on this line: psql keeps waiting
                return end
        self._mode = "code"
        self._string_done()
        return pos

    def _dollar(self, line: bytes, pos: int) -> int:
        self._here = line[pos : pos + 200]
        close = line.find(self._tag, pos)
        body = line[pos:] if close == -1 else line[pos:close]
        self._body(body)
        if close == -1:
            self._keep(line[pos:])
            return len(line)
        self._keep(line[pos : close + len(self._tag)])
        self._mode = "code"
        self._body_check(final=True)
        return close + len(self._tag)

    def _body(self, chunk: bytes) -> None:
        text = self._body_tail + chunk
        tail = _TRAILING_WORD.search(text)
        cut = tail.start() if tail else len(text)
        if len(text) - cut > _BODY_TAIL:
            cut = len(text)
        for m in _WORDS.finditer(text[:cut]):
            self._body_words.add(m.group().decode().lower())
        self._body_tail = text[cut:]
        self._body_check(final=False)

    def _body_check(self, *, final: bool) -> None:
        if final and self._body_tail:
            self._body_words.update(w.decode().lower() for w in _WORDS.findall(self._body_tail))
            self._body_tail = b""
        words = self._body_words
        if bad := sorted(words & _DANGEROUS_CALLS):
            self._refuse(
                f"a function body calls {bad[0]}, which reaches outside the database",
                self._head + self._here,
            )
        if "copy" in words and "program" in words:
            self._refuse(
                "a function body runs COPY ... PROGRAM, a program on the server",
                self._head + self._here,
            )
        if bad := sorted(words & _LEXING_SETTINGS):
            self._refuse(
                f"a function body changes {bad[0]}, which decides how psql reads the file",
                self._head + self._here,
            )
        if final:
            self._body_words = set()

    def _comment(self, line: bytes, pos: int) -> int:
        i = pos
        end = len(line)
        while i < end:
            if line.startswith(b"/*", i):
                self._depth_comment += 1
                i += 2
            elif line[i] == 0x2A:  # '*': a run of stars then '/' closes
                j = i
                while j < end and line[j] == 0x2A:
                    j += 1
                if j < end and line[j] == 0x2F:
                    i = j + 1
                    if self._depth_comment == 0:
                        self._mode = "code"
                        return i
                    self._depth_comment -= 1
                else:
                    i = j
            else:
                i += 1
        return end

    def _code(self, line: bytes, pos: int) -> int:
        m = _CODE.match(line, pos)
        assert m is not None  # (?P<other>.) matches any byte
        kind = m.lastgroup
        text = m.group()
        nxt = m.end()
        if kind in ("ws", "lc"):
            self._keep(b" ")
            return nxt
        self._here = line[pos : pos + 200]
        if kind == "bc":
            self._mode = "comment"
            self._depth_comment = 0
            return nxt
        self._start(line, pos)
        if kind == "word":
            return self._word(line, text, nxt)
        if kind == "num":
            if _IDENT_START.match(line, nxt):
                self._refuse(
                    "a number is glued to a letter, which psql versions read differently",
                    self._head + self._here,
                )
            self._top_token("n", text.decode())
        elif kind == "dollar":
            self._tag = text
            self._mode = "dollar"
            self._keep(text)
            return nxt
        elif kind == "var":
            if text[1:2] in (b"'", b'"', b"{") or any(65 <= c <= 90 for c in text[1:]):
                self._refuse("psql would substitute a variable here", line[pos : pos + 200])
            self._top_token("p", text.decode("utf-8", "replace"))
        elif text == b"'":
            self._mode = "str"
            self._str = bytearray()
        elif text == b'"':
            self._mode = "qident"
            return self._quoted_ident(line, nxt)
        elif text == b"\\":
            self._refuse("it is a psql backslash command", line[pos : pos + 200], self._line)
        elif text == b"(":
            if self._paren == 0:
                self._top_token("p", "(")
            self._paren += 1
        elif text == b")":
            if self._paren > 0:
                self._paren -= 1
            if self._paren == 0:
                self._top_token("p", ")")
        elif text == b";":
            self._keep(text)
            self._top_token("p", ";")
            if self._paren == 0 and self._begin == 0:
                self._end_statement(line, nxt)
                return nxt
        else:
            self._top_token("p", text.decode("utf-8", "replace"))
        self._keep(text)
        return nxt

    def _start(self, line: bytes, pos: int) -> None:
        if not self._in_stmt:
            self._in_stmt = True
            self._stmt_line = self._line
            self._head = bytearray()

    def _quoted_ident(self, line: bytes, pos: int) -> int:
        close = line.find(b'"', pos)
        while close != -1 and line[close + 1 : close + 2] == b'"':
            close = line.find(b'"', close + 2)
        if close == -1:
            self._keep(b'"' + line[pos:])
            return len(line)
        name = line[pos:close].replace(b'""', b'"').decode("utf-8", "replace")
        if name.lower() in _LEXING_SETTINGS:
            self._lexing_setting = True
        self._top_token("q", name)
        self._keep(line[pos - 1 : close + 1])
        self._mode = "code"
        return close + 1

    def _word(self, line: bytes, text: bytes, nxt: int) -> int:
        after = line[nxt : nxt + 2]
        low = text.decode("utf-8", "replace").lower()
        if len(text) == 1 and after[:1] == b"'" and low in "bxne":
            self._keep(text + b"'")
            self._mode = "estr" if low == "e" else "str"
            self._str = bytearray()
            return nxt + 1
        if low == "u" and after[:1] == b"&":
            if after == b"&'":
                self._keep(text + after)
                self._mode = "str"
                self._str = bytearray()
                return nxt + 2
            if after == b'&"':
                self._mode = "qident"
                return self._quoted_ident(line, nxt + 2)
            self._keep(text)
            self._top_token("w", low)
            return nxt
        self._identifier(low)
        if low in _DANGEROUS_CALLS:
            self._refuse(
                f"it calls {low}, which reaches outside the database", self._head + self._here
            )
        if low in _LEXING_SETTINGS:
            self._lexing_setting = True
        self._top_token("w", low)
        self._keep(text)
        return nxt

    def _identifier(self, low: str) -> None:
        """psql's BEGIN ... END tracking for CREATE [OR REPLACE] FUNCTION|PROCEDURE."""
        if self._idents == 0:
            self._first = ["", "", "", ""]
        if low in ("create", "function", "procedure", "or", "replace") and self._idents < 4:
            self._first[self._idents] = low[0]
        self._idents += 1
        f = self._first
        if (
            f[0] == "c"
            and (f[1] in ("f", "p") or (f[1] == "o" and f[2] == "r" and f[3] in ("f", "p")))
            and self._paren == 0
        ):
            if low == "begin" or (low == "case" and self._begin >= 1):
                self._begin += 1
            elif low == "end" and self._begin > 0:
                self._begin -= 1

    def _top_token(self, kind: str, value: str) -> None:
        if self._paren > 0 and value not in ("(", ")"):
            return
        if len(self._top) >= 512:
            self._top_overflow = True
            return
        self._top.append((kind, value))

    # ---------------------------------------------------------------- statements
    def _end_statement(self, line: bytes = b"", rest_at: int = 0) -> None:
        self.stats.statements += 1
        try:
            self._check_statement(line, rest_at)
        finally:
            self._in_stmt = False
            self._top = []
            self._top_overflow = False
            self._lexing_setting = False
            self._idents = 0

    def _words(self) -> list[str]:
        return [v for k, v in self._top if k == "w"]

    def _check_statement(self, line: bytes, rest_at: int) -> None:
        top = self._top
        if not top or top[0][0] != "w":
            if self._lexing_setting:
                self._check_setting()
            return
        words = self._words()
        first = words[0]
        for prefix, reason in _REFUSED_PREFIXES:
            if tuple(words[: len(prefix)]) == prefix:
                self._refuse(reason)
        if first in ("create", "alter", "drop") and words[1:2] and words[1] in _ROLE_WORDS:
            self._refuse("roles are server-wide objects a dump must not change")
        if first in ("grant", "revoke") and "on" not in words:
            self._refuse("role memberships are server-wide and a dump must not change them")
        if first == "copy":
            self._check_copy(line, rest_at)
        if first == "create":
            self._check_create(words)
        if first == "set" and "names" in words[1:3]:
            self._lexing_setting = True
        if self._lexing_setting:
            self._check_setting()

    def _check_copy(self, line: bytes, rest_at: int) -> None:
        top = [t for t in self._top if t != ("p", ";")]
        i = 1
        while i < len(top) and top[i][0] in ("w", "q") and top[i] != ("w", "from"):
            i += 1
            if i < len(top) and top[i] == ("p", "."):
                i += 1
        if i < len(top) and top[i] == ("p", "("):
            i += 2 if i + 1 < len(top) and top[i + 1] == ("p", ")") else len(top)
        ok = (
            not self._top_overflow
            and i > 1
            and top[i:] == [("w", "from"), ("w", "stdin")]
            and self._top[-1] == ("p", ";")
        )
        if not ok:
            self._refuse(
                "COPY may only read FROM stdin (COPY ... PROGRAM runs a program on the server, "
                "COPY with a file name reads or writes the server's files)"
            )
        if line[rest_at:].strip():
            self._refuse("more follows COPY ... FROM stdin; on its line")
        self.stats.copy_blocks += 1
        self._copy_started_line = True

    def _check_create(self, words: list[str]) -> None:
        rest = words[1:]
        while rest and rest[0] in ("or", "replace", "trusted", "procedural"):
            rest = rest[1:]
        kind = rest[0] if rest else ""
        if kind == "extension":
            names = [v.lower() for k, v in self._top[2:] if k in ("w", "q")]
            while names and names[0] in ("if", "not", "exists"):
                names = names[1:]
            name = names[0] if names else ""
            if re.fullmatch(r"pl\w*u", name) or name in _OUTSIDE_EXTENSIONS:
                self._refuse(
                    f"extension {name} runs untrusted code or reaches outside the database"
                )
        if kind in ("function", "procedure", "language", "transform"):
            top = self._top
            for i, (k, value) in enumerate(top):
                if k == "w" and value == "language" and kind != "language":
                    name = top[i + 1][1].lower() if i + 1 < len(top) else ""
                elif kind == "language" and k in ("w", "q") and top[i - 1 : i] == [_LANGUAGE]:
                    name = value.lower()
                else:
                    continue
                if name not in _TRUSTED_LANGUAGES:
                    self._refuse(f"LANGUAGE {name} is not a trusted language")

    def _check_setting(self) -> None:
        """Only ``SET standard_conforming_strings = on``, a safe ``SET client_encoding`` /
        ``SET NAMES`` and their RESET may name the settings psql's reading depends on."""
        top = [t for t in self._top if t != ("p", ";")]
        verb = top[0][1] if top and top[0][0] == "w" else ""
        rest = top[1:]
        if rest and rest[0] in (("w", "session"), ("w", "local")):
            rest = rest[1:]
        name = rest[0][1].lower() if rest and rest[0][0] in ("w", "q") else ""
        if verb == "reset" and len(rest) == 1 and name in _LEXING_SETTINGS:
            return
        if verb == "set" and name == "names" and len(rest) == 2:
            rest = [rest[0], ("p", "="), rest[1]]
            name = "client_encoding"
        if verb == "set" and len(rest) == 3 and rest[1] in (("p", "="), ("w", "to")):
            value = rest[2][1].lower()
            if name == "standard_conforming_strings" and value in ("on", "true", "1"):
                return
            safe = value.replace("-", "_") not in _UNSAFE_ENCODINGS
            if name == "client_encoding" and rest[2][0] in ("s", "w", "q") and safe:
                return
        self._refuse(
            "it changes standard_conforming_strings or client_encoding, which decide how psql "
            "reads the rest of the file"
        )


def scan_stream(
    src: IO[bytes], dst: IO[bytes] | None, scanner: SqlScanner, *, limit: int | None = None
) -> DumpScan:
    """Read ``src`` line by line through ``scanner``, writing what it passes to ``dst``.

    ``limit``: refuse input longer than this many bytes (a zip member's declared size).
    """
    while True:
        piece = src.readline(READ)
        if not piece:
            break
        if limit is not None and scanner.stats.bytes_in + len(piece) > limit:
            raise UsageError(f"{scanner.name} is longer than the size its archive declares")
        out = scanner.feed(piece)
        if dst is not None and out:
            dst.write(out)
    stats = scanner.finish()
    return stats
