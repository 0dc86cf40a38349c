"""An Odoo-shaped PostgreSQL database: the demo's sample environment and the tests' fixture.

Usage::

    from liftgate.sandbox.odoo_sample import create_schema, populate, table_snapshot

    create_schema(conninfo)                      # every table liftgate touches
    result = populate(conninfo, filestore, partners=2000, attachments=200)
    before = table_snapshot(conninfo)            # {table: sorted rows}

What it models, and how faithfully
----------------------------------
* Column types are the ones Odoo's ORM creates: ``Char`` is ``varchar``, ``Text``/``Html`` is
  ``text``, ``Datetime`` is ``timestamp without time zone`` holding UTC, translated fields
  (``name`` of server actions, mail templates, payment providers, module ``shortdesc``,
  view ``arch_db``) are ``jsonb`` (``{"en_US": ...}``, Odoo 16+), ``Binary`` is ``bytea``.
  Every table has ``id SERIAL PRIMARY KEY``: the sequence is owned by the column, so a
  dump/restore round trip can be checked with :func:`sequence_values`. Odoo sets no column
  defaults in the database; neither does this schema, apart from the serial ids.
* Module tables are optional: ``with_mail`` (``mail_template``, ``mail_message``),
  ``with_payment`` (``payment_provider``), ``with_fetchmail`` (``fetchmail_server``; a part
  of ``mail`` since Odoo 16, kept separate here so tests can leave it out).
* ``payment_provider`` of Odoo 16/17 has ``state`` in ``disabled | enabled | test`` (and the
  ``payment`` module's ``data/neutralize.sql`` disables every provider whose state is not
  ``test`` or ``disabled``). Newer Odoo neutralizes with ``is_live = false`` instead;
  ``payment_variant="is_live"`` creates that shape: an ``is_live`` boolean and *no*
  ``state`` column, so tests can check that a missing column is skipped.
* The filestore is written exactly like ``ir.attachment._file_write``: content ``sha1`` hex
  digest, file ``<filestore>/<sha1[:2]>/<sha1>``, row ``store_fname = "<sha1[:2]>/<sha1>"``,
  ``checksum = sha1``, ``file_size``; equal contents share one file (Odoo deduplicates). With
  ``gc_checklist=True`` the empty ``checklist/<sha1[:2]>/<sha1>`` marker files of
  ``_mark_for_gc`` are left too, as in a filestore whose autovacuum has not run yet.
* Data is generated from word lists with a seeded :class:`random.Random`, so it is the
  same for the same ``seed`` and compresses like real business data (a plain ``pg_dump``
  gzips about 3-5:1), never like repeated padding.

:func:`populate` expects the fresh schema of :func:`create_schema` (it picks every id itself
and then moves each sequence past the highest id). :func:`insert_attachment` adds one more
attachment the way Odoo would, for concurrent-writer tests.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import random
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from liftgate.sandbox.odoo_schema import ODOO_VERSION, PaymentVariant, create_schema

__all__ = [
    "ODOO_VERSION",
    "PaymentVariant",
    "PopulateResult",
    "create_schema",
    "insert_attachment",
    "populate",
    "sequence_values",
    "store_path",
    "table_snapshot",
]


# -- word lists -----------------------------------------------------------------------------


def _split(words: str) -> tuple[str, ...]:
    return tuple(words.split())


_FIRST = _split(
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy "
    "Matthew Betty Anthony Sandra Mark Margaret Donald Ashley Steven Kimberly Andrew Emily "
    "Paul Donna Joshua Michelle Kenneth Carol Kevin Amanda Brian Melissa George Deborah "
    "Timothy Stephanie Ronald Rebecca Jason Sharon Edward Laura Jeffrey Cynthia Ryan Amy "
    "Jacob Kathleen Gary Angela Nicholas Shirley Eric Brenda Jonathan Emma Stephen Anna "
    "Larry Pamela Justin Nicole Scott Samantha Brandon Katherine Benjamin Christine Samuel "
    "Helen Gregory Debra Alexander Rachel Patrick Carolyn Frank Janet Raymond Maria Jack "
    "Olivia Dennis Heather Jerry Diane Tyler Julie Aaron Joyce Jose Victoria Adam Ruth "
    "Henry Virginia Nathan Lauren Douglas Kelly Zachary Christina Peter Joan Kyle Evelyn "
    "Amélie Lucas Chloé Louis Léa Hugo Manon Jules Camille Arthur Inès Noah Sofia Luca "
    "Giulia Matteo Aurora Leonardo Lena Finn Mia Paul Hannah Jonas Lea Elias Marie Ben"
)

_LAST = _split(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez "
    "Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson "
    "White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott "
    "Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter "
    "Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart "
    "Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed "
    "Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray "
    "Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez "
    "Dubois Lefebvre Moreau Laurent Simon Michel Bernard Petit Durand Leroy Rossi Russo "
    "Ferrari Esposito Bianchi Romano Colombo Müller Schmidt Schneider Fischer Weber Meyer "
    "Wagner Becker Schulz Hoffmann Janssens Peeters Maes Jacobs Mertens Willems Claes Goossens"
)

_STREETS = _split(
    "Main Oak Pine Maple Cedar Elm Washington Lake Hill Park Walnut Sunset Lincoln Jackson "
    "Church River Highland Willow Meadow Forest Spring Chestnut Ridge Valley Madison Franklin "
    "Jefferson Adams Cherry Mill Center Dogwood Hickory Birch Laurel Magnolia Poplar Sycamore "
    "Holly Aspen Juniper Spruce Cypress Harbor Bay Ocean Prairie Canyon Summit Orchard Grove "
    "Victoria Albert Regent Station Market Bridge Castle Abbey Garden Kings Queens Chapel"
)

_SUFFIXES = _split("Street Avenue Road Lane Drive Court Place Boulevard Way Terrace Square Parkway")

# (country code, country name, phone code, [(city, zip prefix)])
_COUNTRIES: list[tuple[str, str, int, list[tuple[str, str]]]] = [
    (
        "US",
        "United States",
        1,
        [
            ("San Francisco", "941"),
            ("Austin", "787"),
            ("Denver", "802"),
            ("Boston", "021"),
            ("Seattle", "981"),
            ("Chicago", "606"),
            ("Portland", "972"),
            ("Atlanta", "303"),
            ("Phoenix", "850"),
        ],
    ),
    (
        "BE",
        "Belgium",
        32,
        [
            ("Brussels", "10"),
            ("Antwerp", "20"),
            ("Ghent", "90"),
            ("Liège", "40"),
            ("Namur", "50"),
            ("Leuven", "30"),
            ("Mons", "70"),
        ],
    ),
    (
        "FR",
        "France",
        33,
        [
            ("Paris", "750"),
            ("Lyon", "690"),
            ("Marseille", "130"),
            ("Toulouse", "310"),
            ("Nantes", "440"),
            ("Lille", "590"),
            ("Bordeaux", "330"),
            ("Strasbourg", "670"),
        ],
    ),
    (
        "DE",
        "Germany",
        49,
        [
            ("Berlin", "10"),
            ("Hamburg", "20"),
            ("Munich", "80"),
            ("Cologne", "50"),
            ("Frankfurt", "60"),
            ("Stuttgart", "70"),
            ("Leipzig", "04"),
            ("Dresden", "01"),
        ],
    ),
    (
        "IT",
        "Italy",
        39,
        [
            ("Rome", "001"),
            ("Milan", "201"),
            ("Naples", "801"),
            ("Turin", "101"),
            ("Bologna", "401"),
            ("Florence", "501"),
        ],
    ),
    (
        "GB",
        "United Kingdom",
        44,
        [
            ("London", "EC"),
            ("Manchester", "M"),
            ("Bristol", "BS"),
            ("Leeds", "LS"),
            ("Glasgow", "G"),
            ("Edinburgh", "EH"),
        ],
    ),
    (
        "NL",
        "Netherlands",
        31,
        [
            ("Amsterdam", "10"),
            ("Rotterdam", "30"),
            ("Utrecht", "35"),
            ("Eindhoven", "56"),
            ("Groningen", "97"),
        ],
    ),
    (
        "ES",
        "Spain",
        34,
        [
            ("Madrid", "280"),
            ("Barcelona", "080"),
            ("Valencia", "460"),
            ("Seville", "410"),
            ("Bilbao", "480"),
        ],
    ),
    (
        "CA",
        "Canada",
        1,
        [
            ("Toronto", "M5"),
            ("Montreal", "H2"),
            ("Vancouver", "V6"),
            ("Calgary", "T2"),
            ("Ottawa", "K1"),
        ],
    ),
    (
        "IN",
        "India",
        91,
        [
            ("Mumbai", "400"),
            ("Bangalore", "560"),
            ("Delhi", "110"),
            ("Pune", "411"),
            ("Chennai", "600"),
        ],
    ),
]

_FUNCTIONS = (
    "Sales Manager", "Purchasing Officer", "Accountant", "CEO", "CFO", "Office Manager",
    "Warehouse Supervisor", "IT Administrator", "Project Manager", "Consultant",
    "Marketing Director", "Logistics Coordinator", "Buyer", "Assistant", "Engineer",
)  # fmt: skip

_DOMAINS = _split(
    "example.com example.org example.net mail.example.com acme.example globex.example "
    "initech.example umbrella.example hooli.example stark.example wayne.example "
    "wonka.example tyrell.example cyberdyne.example soylent.example"
)

_COMPANY_WORDS = _split(
    "Solutions Systems Logistics Consulting Partners Industries Trading Group Labs "
    "Services Foods Energy Design Works Analytics Healthcare Construction Media Retail"
)

_WORDS = _split(
    "the of and to in is for on with as by at from that this be are was an or it not "
    "customer order invoice delivery payment quote contract meeting call follow up "
    "shipment warehouse stock product price discount total tax amount due date account "
    "bank transfer credit note refund return request support ticket issue resolved "
    "pending confirmed cancelled draft sent received signed approved rejected review "
    "project task milestone deadline budget estimate hours timesheet employee manager team "
    "sales purchase vendor supplier lead opportunity pipeline stage won lost demo trial "
    "subscription renewal monthly yearly quarterly report dashboard export import file "
    "document attachment email phone address street city country zip website portal "
    "please kindly thanks regards hello dear best sincerely team office today tomorrow "
    "next week last month asap urgent note remember check update send call back about "
    "prefers morning afternoon evening weekend delivery window loading dock gate code "
    "fragile handle care pallet box carton unit kilogram liter meter size color model "
    "reference number batch lot serial expiry quality inspection certificate compliance "
    "onboarding training workshop installation maintenance repair warranty service level "
    "new existing key strategic small large regional national international partner "
    "discussed agreed proposed requested asked confirmed promised scheduled moved "
    "changed replaced added removed increased reduced extended renewed closed opened"
)

# Word frequencies in real text follow Zipf's law: the first words of _WORDS are the common ones.
_WORD_CUM = tuple(itertools.accumulate(1.0 / rank for rank in range(1, len(_WORDS) + 1)))

_MIME_TEXT = ("text/plain", "text/csv", "text/html", "application/json")
_MIME_BINARY = ("application/pdf", "image/png", "image/jpeg", "application/octet-stream")
_MAGIC = {
    "application/pdf": b"%PDF-1.7\n",
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "application/octet-stream": b"",
}
_EXT = {
    "text/plain": "txt",
    "text/csv": "csv",
    "text/html": "html",
    "application/json": "json",
    "application/pdf": "pdf",
    "image/png": "png",
    "image/jpeg": "jpg",
    "application/octet-stream": "bin",
}

_EPOCH = dt.datetime(2023, 1, 1, 8, 0, 0)  # naive UTC, as Odoo stores datetimes


# -- populate -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PopulateResult:
    """What :func:`populate` inserted (counts are rows, sizes are bytes)."""

    partners: int  # generated partners (res_partner also holds 4 base partners)
    messages: int
    attachments: int  # ir_attachment rows stored in the filestore
    url_attachments: int  # ir_attachment rows of type 'url' (no file)
    files: int  # distinct files written to the filestore
    duplicate_attachments: int  # rows that share a file with an earlier row
    filestore_bytes: int
    database_uuid: str
    modules: dict[str, str]  # installed module -> latest_version
    store_fnames: tuple[str, ...]  # of every file-stored attachment row, in id order
    elapsed_s: float
    tables: frozenset[str] = field(default_factory=frozenset)


def store_path(filestore: Path, store_fname: str) -> Path:
    """The file of ``store_fname`` (``"ab/ab12..."``) inside ``filestore``."""
    return filestore.joinpath(*store_fname.split("/"))


def _write_file(filestore: Path, content: bytes, *, gc_checklist: bool) -> str:
    """``ir.attachment._file_write``: write once per sha1, return the store_fname."""
    sha1 = hashlib.sha1(content, usedforsecurity=False).hexdigest()  # Odoo's content address
    fname = f"{sha1[:2]}/{sha1}"
    path = store_path(filestore, fname)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        if gc_checklist:
            marker = store_path(filestore / "checklist", fname)
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
    return fname


def _tables(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
    ).fetchall()
    return {r[0] for r in rows}


def _columns(conn: psycopg.Connection[Any], table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [r[0] for r in rows]


def _copy(
    conn: psycopg.Connection[Any],
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
) -> int:
    """COPY ``rows`` into ``table`` (the fast path for bulk inserts)."""
    stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    n = 0
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def _sync_sequences(conn: psycopg.Connection[Any]) -> None:
    """Move every ``<table>_id_seq`` past the highest id, as inserts through the ORM would."""
    for table in sorted(_tables(conn)):
        seq = conn.execute(
            "SELECT pg_get_serial_sequence(%s, 'id')",
            (sql.Identifier(table).as_string(conn),),
        ).fetchone()
        if seq is None or seq[0] is None:
            continue
        top = conn.execute(
            sql.SQL("SELECT max(id) FROM {}").format(sql.Identifier(table))
        ).fetchone()
        highest = top[0] if top else None
        if highest is None:
            conn.execute("SELECT setval(%s::regclass, 1, false)", (seq[0],))
        else:
            conn.execute("SELECT setval(%s::regclass, %s, true)", (seq[0], highest))


def _tr(text: str) -> Jsonb:
    """A translated field's value, as Odoo 16+ stores it."""
    return Jsonb({"en_US": text})


def _sentence(rng: random.Random, lo: int, hi: int) -> str:
    words = rng.choices(_WORDS, cum_weights=_WORD_CUM, k=rng.randint(lo, hi))
    return " ".join(words).capitalize() + "."


def _secret(rng: random.Random, n: int = 24) -> str:
    return base64.urlsafe_b64encode(rng.randbytes(n)).decode().rstrip("=")


def _password_hash(rng: random.Random) -> str:
    """Looks like the passlib pbkdf2_sha512 hash Odoo stores in res_users.password."""
    salt = base64.b64encode(rng.randbytes(16)).decode().rstrip("=").replace("+", ".")
    digest = base64.b64encode(rng.randbytes(64)).decode().rstrip("=").replace("+", ".")
    return f"$pbkdf2-sha512$600000${salt}${digest}"


def _text_content(rng: random.Random, size: int, mimetype: str, index: int) -> bytes:
    header = f"Document {index} generated by liftgate's Odoo fixture\n"
    words = rng.choices(_WORDS, cum_weights=_WORD_CUM, k=max(4, size // 6))
    if mimetype == "text/csv":
        lines = [",".join(words[i : i + 6]) for i in range(0, len(words), 6)]
        body = "reference,product,quantity,price,note,status\n" + "\n".join(lines)
    elif mimetype == "text/html":
        paras = [" ".join(words[i : i + 25]) for i in range(0, len(words), 25)]
        body = "<html><body>" + "".join(f"<p>{p}</p>" for p in paras) + "</body></html>"
    elif mimetype == "application/json":
        body = "[" + ",".join(f'{{"n": {i}, "w": "{w}"}}' for i, w in enumerate(words)) + "]"
    else:
        lines = [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]
        body = "\n".join(lines)
    return (header + body).encode()[: max(size, len(header))]


def _attachment_contents(
    rng: random.Random, count: int, size: int
) -> list[tuple[bytes, str, bool]]:
    """``count`` (content, mimetype, is_duplicate): text-like, random, and a few duplicates."""
    out: list[tuple[bytes, str, bool]] = []
    unique: list[tuple[bytes, str]] = []
    for i in range(count):
        if count >= 10 and i % 20 == 19:
            content, mimetype = unique[rng.randrange(len(unique))]
            out.append((content, mimetype, True))
            continue
        n = max(16, int(size * rng.uniform(0.5, 1.5)))
        if rng.random() < 0.5:
            mimetype = rng.choice(_MIME_TEXT)
            content = _text_content(rng, n, mimetype, i)
        else:
            mimetype = rng.choice(_MIME_BINARY)
            magic = _MAGIC[mimetype]
            content = magic + rng.randbytes(max(0, n - len(magic)))
        unique.append((content, mimetype))
        out.append((content, mimetype, False))
    return out


_MODULES: list[tuple[str, str, str, bool]] = [
    # name, latest_version, shortdesc, installed (when its tables exist)
    ("base", "17.0.1.3", "Base", True),
    ("web", "17.0.1.0", "Web", True),
    ("bus", "17.0.1.0", "IM Bus", True),
    ("base_setup", "17.0.1.0", "Initial Setup Tools", True),
    ("web_tour", "17.0.1.0", "Tours", True),
    ("auth_totp", "17.0.1.0", "2-Factor Authentication", True),
    ("mail", "17.0.1.15", "Discuss", True),
    ("payment", "17.0.2.0", "Payment Engine", True),
    ("account", "17.0.1.2", "Invoicing", False),
    ("sale", "17.0.1.2", "Sales", False),
    ("stock", "17.0.1.1", "Inventory", False),
    ("crm", "17.0.1.9", "CRM", False),
    ("website", "17.0.1.0", "Website", False),
    ("project", "17.0.1.3", "Project", False),
]


def populate(
    conninfo: str,
    filestore: Path,
    *,
    partners: int,
    attachments: int,
    attachment_bytes: int = 2048,
    seed: int = 0,
    gc_checklist: bool = False,
) -> PopulateResult:
    """Fill the fresh schema of :func:`create_schema` with realistic data; write the filestore.

    ``filestore`` is the database's own folder (``<data_dir>/filestore/<db>``); it is created
    if missing. Same ``seed``, same rows and files (only ``database.uuid``/``secret`` and the
    timestamps derived from the seed are reproducible too: everything comes from the seed).
    """
    started = time.perf_counter()
    rng = random.Random(seed)
    filestore = Path(filestore)
    filestore.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(conninfo) as conn:
        tables = _tables(conn)
        has_mail = {"mail_template", "mail_message"} <= tables
        has_payment = "payment_provider" in tables
        has_fetchmail = "fetchmail_server" in tables

        def when(days: float) -> dt.datetime:
            return _EPOCH + dt.timedelta(days=days, seconds=rng.randrange(86400))

        xmlids: list[tuple[str, str, str, int, bool]] = []  # module, name, model, res_id, noupd

        # countries
        country_ids: list[int] = []
        country_rows = []
        for cid, (code, cname, phone_cc, _cities) in enumerate(_COUNTRIES, start=1):
            country_rows.append((cid, _tr(cname), code, phone_cc, when(0), when(0)))
            country_ids.append(cid)
            xmlids.append(("base", code.lower(), "res.country", cid, False))
        _copy(
            conn,
            "res_country",
            ["id", "name", "code", "phone_code", "create_date", "write_date"],
            country_rows,
        )

        # partners: 1 company, 2 OdooBot, 3 admin, 4 public, then the generated ones
        p_cols = [
            "id", "name", "complete_name", "company_id", "type", "ref", "lang", "tz", "email",
            "phone", "mobile", "street", "street2", "city", "zip", "country_id", "comment",
            "is_company", "active", "parent_id", "create_date", "write_date",
            "commercial_partner_id", "function", "website", "vat", "email_normalized",
            "partner_share", "employee", "color", "message_bounce", "user_id",
        ]  # fmt: skip
        base_partners = [
            (1, "YourCompany", "YourCompany", None, "contact", None, "en_US", "Europe/Brussels",
             "info@yourcompany.example.com", "+32 2 290 34 90", None, "250 Executive Park Blvd",
             "Suite 3400", "Brussels", "1000", 2, None, True, True, None, when(0), when(0),
             1, None, "https://www.yourcompany.example.com", "BE0477472701",
             "info@yourcompany.example.com", False, False, 0, 0, None),
            (2, "OdooBot", "OdooBot", 1, "contact", None, "en_US", None, "odoobot@example.com",
             None, None, None, None, None, None, None, None, False, False, None, when(0), when(0),
             2, None, None, None, "odoobot@example.com", False, False, 0, 0, None),
            (3, "Mitchell Admin", "YourCompany, Mitchell Admin", 1, "contact", None, "en_US",
             "Europe/Brussels", "admin@yourcompany.example.com", "+1 555-555-5555", None,
             "215 Vine St", None, "Scranton", "18503", 1, None, False, True, 1, when(0),
             when(1), 1, "Chief Executive Officer", None, None, "admin@yourcompany.example.com",
             False, True, 0, 0, None),
            (4, "Public user", "Public user", 1, "contact", None, "en_US", None, None, None,
             None, None, None, None, None, None, None, False, False, None, when(0), when(0),
             4, None, None, None, None, True, False, 0, 0, None),
        ]  # fmt: skip
        xmlids += [
            ("base", "main_partner", "res.partner", 1, True),
            ("base", "partner_root", "res.partner", 2, True),
            ("base", "partner_admin", "res.partner", 3, True),
            ("base", "public_partner", "res.partner", 4, True),
        ]
        first_generated = 5
        generated: list[tuple[Any, ...]] = []
        company_ids: list[int] = []
        company_names: dict[int, str] = {}
        for i in range(partners):
            pid = first_generated + i
            code, _cname, phone_code, cities = _COUNTRIES[rng.randrange(len(_COUNTRIES))]
            city, zip_prefix = rng.choice(cities)
            country_id = country_ids[[c[0] for c in _COUNTRIES].index(code)]
            is_company = rng.random() < 0.15
            parent_id = None
            if is_company:
                name = f"{rng.choice(_LAST)} {rng.choice(_COMPANY_WORDS)}" + rng.choice(
                    ["", " Inc.", " SA", " GmbH", " Ltd", " BV", " & Co"]
                )
                email = f"contact@{name.split()[0].lower()}.{rng.choice(_DOMAINS)}"
                complete = name
            else:
                first, last = rng.choice(_FIRST), rng.choice(_LAST)
                name = f"{first} {last}"
                email = f"{first.lower()}.{last.lower()}@{rng.choice(_DOMAINS)}"
                complete = name
                if company_ids and rng.random() < 0.4:
                    parent_id = rng.choice(company_ids)
                    complete = f"{company_names[parent_id]}, {name}"
            street = f"{rng.randint(1, 9999)} {rng.choice(_STREETS)} {rng.choice(_SUFFIXES)}"
            street2 = f"Floor {rng.randint(1, 30)}" if rng.random() < 0.1 else None
            zipcode = zip_prefix + "".join(rng.choices("0123456789", k=max(0, 5 - len(zip_prefix))))
            phone = f"+{phone_code} {rng.randint(100, 999)} {rng.randint(10, 99)} " + (
                f"{rng.randint(10, 99)} {rng.randint(10, 99)}"
            )
            mobile = (
                f"+{phone_code} {rng.randint(400, 499)} {rng.randint(100000, 999999)}"
                if (rng.random() < 0.3)
                else None
            )
            comment = None
            if rng.random() < 0.6:
                comment = (
                    "<p>"
                    + " ".join(_sentence(rng, 6, 18) for _ in range(rng.randint(1, 4)))
                    + "</p>"
                )
            created = when(rng.uniform(0, 600))
            vat = None
            if is_company:
                vat = f"{code}{rng.randint(100000000, 999999999)}" if rng.random() < 0.7 else None
            website = f"https://www.{email.split('@')[1]}" if is_company else None
            function = None if is_company or rng.random() < 0.5 else rng.choice(_FUNCTIONS)
            generated.append((
                pid, name, complete, 1, rng.choice(["contact", "contact", "invoice", "delivery"]),
                f"C{pid:06d}" if rng.random() < 0.5 else None,
                rng.choice(["en_US", "en_US", "fr_BE", "nl_BE", "de_DE", "fr_FR"]),
                rng.choice(["Europe/Brussels", "Europe/Paris", "America/New_York", None]),
                email, phone, mobile, street, street2, city, zipcode, country_id, comment,
                is_company, rng.random() > 0.03, parent_id, created,
                created + dt.timedelta(days=rng.uniform(0, 90)),
                parent_id or pid, function, website, vat, email.lower(), True, False, 0,
                1 if rng.random() < 0.02 else 0, 2 if rng.random() < 0.3 else None,
            ))  # fmt: skip
            if is_company:
                company_ids.append(pid)
                company_names[pid] = name
        # the company and its partner reference each other: partner, company, then the link
        _copy(conn, "res_partner", p_cols, base_partners[:1])
        conn.execute(
            "INSERT INTO res_company (id, name, partner_id, email, phone, sequence, active, "
            "create_date, write_date) VALUES (1, 'YourCompany', 1, "
            "'info@yourcompany.example.com', '+32 2 290 34 90', 10, true, %s, %s)",
            (when(0), when(0)),
        )
        conn.execute("UPDATE res_partner SET company_id = 1 WHERE id = 1")
        _copy(conn, "res_partner", p_cols, [*base_partners[1:], *generated])
        xmlids.append(("base", "main_company", "res.company", 1, True))

        # users
        u_cols = ["id", "login", "password", "partner_id", "company_id", "active", "share",
                  "create_date", "write_date"]  # fmt: skip
        users = [
            (1, "__system__", None, 2, 1, False, False, when(0), when(0)),
            (2, "admin", _password_hash(rng), 3, 1, True, False, when(0), when(2)),
            (3, "public", None, 4, 1, False, True, when(0), when(0)),
        ]
        xmlids += [
            ("base", "user_root", "res.users", 1, True),
            ("base", "user_admin", "res.users", 2, True),
            ("base", "public_user", "res.users", 3, True),
        ]
        people = [row for row in generated if not row[17]][: min(12, partners)]
        for n, row in enumerate(people, start=4):
            users.append((n, row[8], _password_hash(rng), row[0], 1, True, n % 3 == 0,
                          when(rng.uniform(0, 300)), when(rng.uniform(300, 600))))  # fmt: skip
        _copy(conn, "res_users", u_cols, users)

        # modules
        installed: dict[str, str] = {}
        mod_rows = []
        for mid, (mname, version, desc, wanted) in enumerate(_MODULES, start=1):
            present = wanted and (
                (mname != "mail" or has_mail) and (mname != "payment" or has_payment)
            )
            state = "installed" if present else "uninstalled"
            if present:
                installed[mname] = version
            mod_rows.append((
                mid, mname, _tr(desc), "Odoo S.A.", state, version if present else None,
                version, "LGPL-3", mname in ("mail", "account", "sale", "crm"),
                mname in ("web", "bus", "base_setup", "web_tour"), False, when(0), when(1),
            ))  # fmt: skip
            xmlids.append(("base", f"module_{mname}", "ir.module.module", mid, True))
        _copy(
            conn,
            "ir_module_module",
            ["id", "name", "shortdesc", "author", "state", "latest_version",
             "published_version", "license", "application", "auto_install", "demo",
             "create_date", "write_date"],
            mod_rows,
        )  # fmt: skip

        # system parameters
        db_uuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        params = [
            ("database.uuid", db_uuid),
            ("database.secret", str(uuid.UUID(int=rng.getrandbits(128), version=4))),
            ("database.create_date", when(0).strftime("%Y-%m-%d %H:%M:%S")),
            ("web.base.url", "https://erp.yourcompany.example.com"),
            ("web.base.url.freeze", "True"),
            ("base.login_cooldown_after", "10"),
            ("base.login_cooldown_duration", "60"),
            ("auth_signup.reset_password", "True"),
            ("mail.catchall.domain", "yourcompany.example.com"),
            ("mail.bounce.alias", "bounce"),
            ("mail.catchall.alias", "catchall"),
            ("mail.default.from", "notifications"),
            ("mail.web_push_vapid_private_key", _secret(rng, 32)),
            ("mail.web_push_vapid_public_key", _secret(rng, 65)),
            ("report.url", "http://localhost:8069"),
        ]
        _copy(
            conn,
            "ir_config_parameter",
            ["id", "key", "value", "create_uid", "create_date", "write_uid", "write_date"],
            [(i, k, v, 1, when(0), 1, when(0)) for i, (k, v) in enumerate(params, start=1)],
        )

        # server actions (the crons' code actions and a few automations)
        act_cols = ["id", "name", "type", "usage", "state", "model_id", "model_name", "code",
                    "webhook_url", "sequence", "create_date", "write_date"]  # fmt: skip
        crons = [
            # module, xml name, name, model, active, interval (number, type)
            ("base", "autovacuum_job", "Base: Auto-vacuum internal data", "ir.autovacuum",
             True, 1, "days"),
            ("base", "ir_cron_res_users_deletion", "Base: Portal Users Deletion",
             "res.users.deletion", True, 1, "days"),
            ("mail", "ir_cron_mail_scheduler_action", "Mail: Email Queue Manager", "mail.mail",
             True, 1, "hours"),
            ("mail", "ir_cron_mail_gateway_action", "Mail: Fetchmail Service",
             "fetchmail.server", True, 5, "minutes"),
            ("mail", "ir_cron_delete_notification", "Notification: Delete Notifications",
             "mail.notification", True, 1, "days"),
            ("payment", "cron_post_process_payment_tx", "Payment: Post-process transactions",
             "payment.transaction", True, 10, "minutes"),
            ("base", "ir_cron_partner_autocomplete", "Partner Autocomplete: Sync with remote",
             "res.partner", False, 1, "weeks"),
            # another module's cron with the same xml name: NOT base.autovacuum_job
            ("custom_ops", "autovacuum_job", "Custom: nightly vacuum of staging tables",
             "res.partner", True, 1, "days"),
        ]  # fmt: skip
        actions: list[tuple[Any, ...]] = []
        cron_rows: list[tuple[Any, ...]] = []
        for n, (mod, xname, cname, model, active, num, unit) in enumerate(crons, start=1):
            actions.append((n, _tr(cname), "ir.actions.server", "ir_cron", "code", None, model,
                            f"model._run_{xname}()", None, 5, when(0), when(0)))  # fmt: skip
            cron_rows.append((n, n, cname, 1, active, num, unit, -1, False,
                              when(rng.uniform(600, 610)), when(rng.uniform(590, 600)), 5,
                              when(0), when(0)))  # fmt: skip
            xmlids.append((mod, xname, "ir.cron", n, True))
            xmlids.append((mod, f"{xname}_ir_actions_server", "ir.actions.server", n, True))
        extra_actions = [
            ("Notify fulfilment on new order", "webhook", "sale.order",
             "https://hooks.fulfil.example.com/odoo/orders"),
            ("Sync partner to CRM", "webhook", "res.partner",
             "https://crm.example.org/api/webhooks/partner?token=" + _secret(rng, 12)),
            ("Mark as VIP", "object_write", "res.partner", None),
            ("Recompute rankings", "code", "res.partner", None),
        ]  # fmt: skip
        for n, (aname, state, model, url) in enumerate(extra_actions, start=len(actions) + 1):
            actions.append((n, _tr(aname), "ir.actions.server", "ir_actions_server", state, None,
                            model, "pass" if state == "code" else None, url, 5, when(3),
                            when(4)))  # fmt: skip
        _copy(conn, "ir_act_server", act_cols, actions)
        _copy(
            conn,
            "ir_cron",
            ["id", "ir_actions_server_id", "cron_name", "user_id", "active", "interval_number",
             "interval_type", "numbercall", "doall", "nextcall", "lastcall", "priority",
             "create_date", "write_date"],
            cron_rows,
        )  # fmt: skip

        # outgoing mail servers: two active, one archived
        _copy(
            conn,
            "ir_mail_server",
            ["id", "name", "from_filter", "smtp_host", "smtp_port", "smtp_authentication",
             "smtp_user", "smtp_pass", "smtp_encryption", "smtp_debug", "sequence", "active",
             "create_date", "write_date"],
            [
                (1, "Primary SMTP", "yourcompany.example.com", "smtp.yourcompany.example.com",
                 587, "login", "odoo@yourcompany.example.com", _secret(rng), "starttls", False,
                 10, True, when(1), when(2)),
                (2, "Bulk mailer", None, "smtp.mailgun.example.org", 465, "login",
                 "postmaster@mg.yourcompany.example.com", _secret(rng), "ssl", False, 20, True,
                 when(1), when(2)),
                (3, "Old relay", None, "relay.old.example.net", 25, "login", None, None, "none",
                 False, 30, False, when(1), when(2)),
            ],
        )  # fmt: skip

        # views: the neutralization banner of the web module is inactive in production
        _copy(
            conn,
            "ir_ui_view",
            ["id", "name", "key", "type", "model", "arch_db", "priority", "mode", "active",
             "create_date", "write_date"],
            [
                (1, "neutralize_banner", "web.neutralize_banner", "qweb", None,
                 _tr('<t t-name="web.neutralize_banner"><span class="badge">Neutralized'
                     "</span></t>"), 16, "primary", False, when(0), when(0)),
                (2, "res.partner.form", None, "form", "res.partner",
                 _tr('<form><field name="name"/><field name="email"/></form>'), 16, "primary",
                 True, when(0), when(0)),
            ],
        )  # fmt: skip
        xmlids.append(("web", "neutralize_banner", "ir.ui.view", 1, False))
        xmlids.append(("base", "view_partner_form", "ir.ui.view", 2, False))

        messages = 0
        if has_mail:
            _copy(
                conn,
                "mail_template",
                ["id", "name", "model", "subject", "email_from", "body_html", "mail_server_id",
                 "auto_delete", "active", "create_date", "write_date"],
                [
                    (1, _tr("Invoice: Sending"), "account.move", _tr("Invoice {{ object.name }}"),
                     "{{ user.email_formatted }}", _tr("<p>Dear customer, ...</p>"), 1, True,
                     True, when(1), when(1)),
                    (2, _tr("Sales: Order Confirmation"), "sale.order", _tr("Order confirmed"),
                     None, _tr("<p>Your order is confirmed.</p>"), 1, True, True, when(1),
                     when(1)),
                    (3, _tr("Newsletter"), "res.partner", _tr("News"), None,
                     _tr("<p>Hello {{ object.name }}</p>"), 2, False, True, when(1), when(1)),
                    (4, _tr("Auth: Reset Password"), "res.users", _tr("Password reset"), None,
                     _tr("<p>Reset your password</p>"), None, True, True, when(1), when(1)),
                ],
            )  # fmt: skip
            xmlids.append(("mail", "mail_template_data_notification_email_default",
                           "mail.template", 4, True))  # fmt: skip
            msg_rows = []
            targets = [row[0] for row in generated]
            for mid in range(1, partners + 1):
                res_id = rng.choice(targets) if targets else 3
                mtype = rng.choice(["comment", "comment", "notification", "email"])
                body = (
                    "<p>"
                    + " ".join(_sentence(rng, 5, 16) for _ in range(rng.randint(1, 3)))
                    + "</p>"
                )
                date = when(rng.uniform(0, 600))
                msg_rows.append((mid, None if mtype != "email" else _sentence(rng, 3, 7), body,
                                 "res.partner", res_id, None, mtype,
                                 "Mitchell Admin <admin@yourcompany.example.com>", 3, date,
                                 date, date))  # fmt: skip
            messages = _copy(
                conn,
                "mail_message",
                ["id", "subject", "body", "model", "res_id", "record_name", "message_type",
                 "email_from", "author_id", "date", "create_date", "write_date"],
                msg_rows,
            )  # fmt: skip

        if has_payment:
            known = {"id", "name", "sequence", "code", "state", "is_live", "company_id",
                     "is_published", "create_date", "write_date"}  # fmt: skip
            pcols = [c for c in _columns(conn, "payment_provider") if c in known]
            providers = [
                # name, code, state, live
                ("Stripe", "stripe", "enabled", True),
                ("Wire Transfer", "custom", "enabled", True),
                ("Demo", "demo", "test", False),
                ("Adyen", "adyen", "disabled", False),
            ]
            prov_rows = []
            for n, (pname, code, state, live) in enumerate(providers, start=1):
                vals: dict[str, Any] = {
                    "id": n, "name": _tr(pname), "sequence": n * 10, "code": code,
                    "state": state, "is_live": live, "company_id": 1,
                    "is_published": live, "create_date": when(2), "write_date": when(3),
                }  # fmt: skip
                prov_rows.append([vals[c] for c in pcols])
                xmlids.append(("payment", f"payment_provider_{code}", "payment.provider", n, True))
            _copy(conn, "payment_provider", pcols, prov_rows)

        if has_fetchmail:
            _copy(
                conn,
                "fetchmail_server",
                ["id", "name", "active", "state", "server", "port", "server_type", "is_ssl",
                 "attach", "original", "date", "user", "password", "priority", "create_date",
                 "write_date"],
                [
                    (1, "Support inbox", True, "done", "imap.yourcompany.example.com", 993,
                     "imap", True, True, False, when(599), "support@yourcompany.example.com",
                     _secret(rng), 5, when(2), when(2)),
                    (2, "Old POP box", False, "draft", "pop.old.example.net", 995, "pop", True,
                     True, False, None, "old@yourcompany.example.com", _secret(rng), 10,
                     when(2), when(2)),
                ],
            )  # fmt: skip

        # attachments: files in the filestore, rows pointing at them; two url attachments
        att_rows: list[tuple[Any, ...]] = []
        store_fnames: list[str] = []
        files: set[str] = set()
        filestore_bytes = 0
        duplicates = 0
        targets = [row[0] for row in generated] or [3]
        contents = _attachment_contents(rng, attachments, attachment_bytes)
        for n, (content, mimetype, is_dup) in enumerate(contents, start=1):
            fname = _write_file(filestore, content, gc_checklist=gc_checklist)
            if fname not in files:
                files.add(fname)
                filestore_bytes += len(content)
            duplicates += is_dup
            store_fnames.append(fname)
            index_content = None
            if mimetype in _MIME_TEXT:
                index_content = content[:1024].decode(errors="replace")
            created = when(rng.uniform(0, 600))
            att_rows.append((
                n, f"{rng.choice(_WORDS)}-{rng.choice(_WORDS)}-{n}.{_EXT[mimetype]}", None,
                "res.partner", rng.choice(targets), None, 1, "binary", None, False, None, None,
                fname, len(content), fname.split("/")[1], mimetype, index_content, 2, created,
                2, created,
            ))  # fmt: skip
        next_id = len(att_rows) + 1
        for n, url in enumerate(
            ("/web/assets/1/web.assets_frontend.min.css", "https://cdn.example.com/logo.svg"),
            start=next_id,
        ):
            att_rows.append((n, url.rsplit("/", 1)[1], None, None, None, None, 1, "url", url,
                             True, None, None, None, None, None, None, None, 1, when(0), 1,
                             when(0)))  # fmt: skip
        _copy(
            conn,
            "ir_attachment",
            ["id", "name", "description", "res_model", "res_id", "res_field", "company_id",
             "type", "url", "public", "access_token", "db_datas", "store_fname", "file_size",
             "checksum", "mimetype", "index_content", "create_uid", "create_date", "write_uid",
             "write_date"],
            att_rows,
        )  # fmt: skip

        _copy(
            conn,
            "ir_model_data",
            ["id", "module", "name", "model", "res_id", "noupdate", "create_date", "write_date"],
            [
                (i, mod, name, model, res_id, noupd, when(0), when(0))
                for i, (mod, name, model, res_id, noupd) in enumerate(xmlids, start=1)
            ],
        )
        _sync_sequences(conn)
    return PopulateResult(
        partners=partners,
        messages=messages,
        attachments=attachments,
        url_attachments=2,
        files=len(files),
        duplicate_attachments=duplicates,
        filestore_bytes=filestore_bytes,
        database_uuid=db_uuid,
        modules=installed,
        store_fnames=tuple(store_fnames),
        elapsed_s=time.perf_counter() - started,
        tables=frozenset(tables),
    )


def insert_attachment(conn: psycopg.Connection[Any], filestore: Path, content: bytes) -> str:
    """Add one attachment the way Odoo does: file first, then the row; return its store_fname.

    Runs in ``conn``'s current transaction and does not commit (use an autocommit
    connection, or commit yourself). Like Odoo, a rolled-back insert leaves its file behind.
    """
    fname = _write_file(Path(filestore), content, gc_checklist=False)
    sha1 = fname.split("/")[1]
    conn.execute(
        "INSERT INTO ir_attachment (name, res_model, type, store_fname, file_size, checksum, "
        "mimetype, public, create_uid, create_date, write_uid, write_date) "
        "VALUES (%s, 'res.partner', 'binary', %s, %s, %s, 'application/octet-stream', false, "
        "2, now() AT TIME ZONE 'UTC', 2, now() AT TIME ZONE 'UTC')",
        (f"upload-{sha1[:12]}.bin", fname, len(content), sha1),
    )
    return fname


def table_snapshot(conninfo: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of the current schema: its rows, sorted by every column (for equality)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with psycopg.connect(conninfo) as conn:
        for table in sorted(_tables(conn)):
            ncols = len(_columns(conn, table))
            order = sql.SQL(", ").join(sql.Literal(i) for i in range(1, ncols + 1))
            rows = conn.execute(
                sql.SQL("SELECT * FROM {} ORDER BY {}").format(sql.Identifier(table), order)
            ).fetchall()
            out[table] = [tuple(r) for r in rows]
    return out


def sequence_values(conninfo: str) -> dict[str, int]:
    """Every sequence of the current schema -> the value its next ``nextval()`` returns."""
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            "SELECT sequencename, last_value, increment_by, start_value FROM pg_sequences "
            "WHERE schemaname = current_schema() ORDER BY sequencename"
        ).fetchall()
    return {
        name: (int(last) + int(inc) if last is not None else int(start))
        for name, last, inc, start in rows
    }
