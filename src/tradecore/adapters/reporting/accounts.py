"""The accounts journaled on one PostgreSQL server: one database per account, each bound to
its account by the one-row table `tradecore_account` (adapters/sql/binding.py).

`discover_accounts(server_url)` lists them: it connects to the server through `server_url`
(any database on it), reads the names of the databases, connects to each in turn and reads its
account, read-only. A database without the table is not an account's journal; one that cannot
be read (no CONNECT right, no SELECT right, the connection refused) is skipped with the reason.
`pick_account` chooses one by its fingerprint. Passwords never leave `Account.url`: everything
shown goes through `Account.shown_url`.
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import asyncpg
import attrs

from tradecore.adapters.dburl import Dialect, InvalidDatabaseUrl, parse_database_url
from tradecore.adapters.reporting.source import PositionRow
from tradecore.adapters.sql import binding

CONNECT_TIMEOUT_SECONDS = 10.0
_DATABASES = (
    "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname"
)
_HAS_TABLE = "SELECT to_regclass('tradecore_account') IS NOT NULL"


class AccountNotFound(LookupError):
    """No account on the server has the fingerprint asked for; the message names those found."""


@attrs.frozen(kw_only=True)
class Account:
    """One account's journal: its fingerprint, its database and how to reach it."""

    fingerprint: str
    database: str
    url: str = attrs.field(repr=False)  # may hold the password: connect with it, never show it
    key: str = ""  # the name it is shown and keyed by: the fingerprint, unless two share it

    @property
    def shown_url(self) -> str:
        return parse_database_url(self.url).redacted()

    @property
    def label(self) -> str:
        return f"{self.key or self.fingerprint} ({self.database})"


@attrs.frozen(kw_only=True)
class Skipped:
    database: str
    reason: str
    unreadable: bool  # True: it could not be read; False: it is simply no account's journal


@attrs.frozen(kw_only=True)
class Discovery:
    server: str  # the server URL without its password
    accounts: tuple[Account, ...]
    skipped: tuple[Skipped, ...]

    @property
    def unreadable(self) -> tuple[Skipped, ...]:
        return tuple(s for s in self.skipped if s.unreadable)

    def names(self) -> str:
        """The accounts found, for a message."""
        if not self.accounts:
            return "none"
        return ", ".join(a.label for a in self.accounts)


def database_url(server_url: str, database: str) -> str:
    """`server_url` pointed at `database` (user, password, host, port and options kept)."""
    parts = urlsplit(server_url)
    return parts._replace(path="/" + quote(database, safe="")).geturl()


async def discover_accounts(
    server_url: str, *, timeout: float = CONNECT_TIMEOUT_SECONDS
) -> Discovery:
    """Every account journaled on the server of `server_url`, by database name. Raises
    InvalidDatabaseUrl for a URL that is not PostgreSQL, and the connection's own error when
    the server cannot be reached through `server_url` at all."""
    parsed = parse_database_url(server_url)
    if parsed.dialect is not Dialect.POSTGRESQL:
        raise InvalidDatabaseUrl(
            f"{parsed.redacted()} is not a PostgreSQL server: the accounts of a server are its "
            "databases; a SQLite file journals one account: read it with --database-url alone"
        )
    connection = await asyncpg.connect(parsed.url, timeout=timeout)
    try:
        names = [str(r["datname"]) for r in await connection.fetch(_DATABASES)]
    finally:
        await connection.close()
    found: list[Account] = []
    skipped: list[Skipped] = []
    for name in names:
        url = database_url(parsed.url, name)
        try:
            fingerprint = await _account_of(url, timeout)
        except Exception as exc:  # no right to connect or to read: say why, go on
            skipped.append(Skipped(database=name, reason=_reason(exc), unreadable=True))
            continue
        if fingerprint is None:
            skipped.append(
                Skipped(database=name, reason="no tradecore_account table", unreadable=False)
            )
        elif not fingerprint:
            skipped.append(
                Skipped(database=name, reason="tradecore_account holds no row", unreadable=False)
            )
        else:
            found.append(Account(fingerprint=fingerprint, database=name, url=url))
    return Discovery(server=parsed.redacted(), accounts=_keyed(found), skipped=tuple(skipped))


async def _account_of(url: str, timeout: float) -> str | None:
    """The account the database at `url` journals; None without the table, "" when empty."""
    connection = await asyncpg.connect(url, timeout=timeout)
    try:
        if not await connection.fetchval(_HAS_TABLE):
            return None
        owner = await connection.fetchval(binding.OWNER)
        return "" if owner is None else str(owner)
    finally:
        await connection.close()


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}".rstrip(": ")


def _keyed(accounts: Sequence[Account]) -> tuple[Account, ...]:
    """Each account keyed by its fingerprint; two databases of one account (a copy, a restored
    backup) keyed `fingerprint@database` so that neither hides the other."""
    seen: dict[str, int] = {}
    for a in accounts:
        seen[a.fingerprint] = seen.get(a.fingerprint, 0) + 1
    return tuple(
        attrs.evolve(
            a, key=a.fingerprint if seen[a.fingerprint] == 1 else f"{a.fingerprint}@{a.database}"
        )
        for a in accounts
    )


def pick_account(discovery: Discovery, wanted: str) -> Account:
    """The account whose fingerprint (or key, or database name) is `wanted`; AccountNotFound,
    naming the accounts found, when none or more than one is."""
    chosen = [a for a in discovery.accounts if wanted in (a.key, a.fingerprint)]
    if not chosen:
        chosen = [a for a in discovery.accounts if a.database == wanted]
    if len(chosen) == 1:
        return chosen[0]
    if chosen:
        raise AccountNotFound(
            f"account {wanted!r} is journaled in {len(chosen)} databases on {discovery.server}: "
            f"{', '.join(a.database for a in chosen)}; name one: "
            f"{', '.join(repr(a.key) for a in chosen)}"
        )
    raise AccountNotFound(
        f"no account {wanted!r} on {discovery.server}; the accounts found: {discovery.names()}"
    )


async def accounts_to_show(server_url: str, wanted: str | None) -> tuple[Discovery, list[Account]]:
    """The accounts a command shows: all those on the server, or the one `wanted`.
    AccountNotFound when the server journals none, or not the one wanted."""
    discovery = await discover_accounts(server_url)
    if not discovery.accounts:
        looked = ", ".join(f"{s.database} ({s.reason})" for s in discovery.skipped) or "none"
        raise AccountNotFound(
            f"no database on {discovery.server} journals a tradecore account; the databases "
            f"looked at: {looked}"
        )
    if wanted is None:
        return discovery, list(discovery.accounts)
    return discovery, [pick_account(discovery, wanted)]


# -- one account in several databases ------------------------------------------------------
# A backup restored next to the live database journals the same account (the same
# fingerprint). Both are shown, keyed `fingerprint@database`; the totals count the account
# once and each of its positions once, by position id: where the copies disagree on one, the
# copy whose row was updated last (then the one whose journal is the more recent) is taken.

WARNING_SAME_ACCOUNT = "same account fingerprint in two databases: totals count it once"


def fingerprint_of(key: str, database: str) -> str:
    """The account fingerprint of the account keyed `key` in `database` (`_keyed`)."""
    return key.removesuffix(f"@{database}")


@attrs.frozen(kw_only=True)
class Counted:
    """What the totals count: the number of accounts, and from each account key the ids of
    the positions it adds (each position once per account) and whether its journal-wide
    figures (events, errors) are added; with a warning per account found in several
    databases."""

    accounts: int
    positions: Mapping[str, frozenset[str]]
    journal: frozenset[str]
    warnings: tuple[str, ...]


@attrs.frozen(kw_only=True)
class Copy:
    """One account database as read: its key, database, the fingerprint it journals, its
    last event (None: none, or it could not be read) and the positions it holds (None: it
    could not be read)."""

    key: str
    database: str
    fingerprint: str
    journal_at: datetime | None
    positions: Sequence[PositionRow] | None


def count_once(copies: Sequence[Copy]) -> Counted:
    """Which copy of each account and of each of its positions the totals count."""
    groups: dict[str, list[Copy]] = {}
    for c in copies:
        groups.setdefault(c.fingerprint, []).append(c)
    positions: dict[str, set[str]] = {c.key: set() for c in copies}
    journal: set[str] = set()
    warnings = []
    for fingerprint, group in groups.items():
        read = [c for c in group if c.positions is not None]
        rank = {c.key: (c.journal_at is not None, c.journal_at or _EPOCH, -i)
                for i, c in enumerate(read)}  # fmt: skip
        if read:
            journal.add(max(read, key=lambda c: rank[c.key]).key)
        chosen: dict[str, tuple[Any, Copy, PositionRow]] = {}
        differ: set[str] = set()
        for c in read:
            for p in c.positions or ():
                mine = (p.updated_at or p.created_at, rank[c.key])
                taken = chosen.get(p.id)
                if taken is not None and _facts(taken[2]) != _facts(p):
                    differ.add(p.id)
                if taken is None or mine > taken[0]:
                    chosen[p.id] = (mine, c, p)
        for pid, (_, c, _row) in chosen.items():
            positions[c.key].add(pid)
        if len(group) > 1:
            where = ", ".join(c.database for c in group)
            warning = f"{WARNING_SAME_ACCOUNT} ({fingerprint}: {where})"
            if differ:
                taken_from = ", ".join(f"{pid} from {chosen[pid][1].database}"
                                       for pid in sorted(differ))  # fmt: skip
                warning += f"; the copies differ on {taken_from}, the later update counted"
            warnings.append(warning)
    return Counted(
        accounts=len(groups),
        positions={key: frozenset(ids) for key, ids in positions.items()},
        journal=frozenset(journal),
        warnings=tuple(warnings),
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _facts(row: PositionRow) -> PositionRow:
    """The row without its bookkeeping time: what two copies of a position are compared on."""
    return attrs.evolve(row, updated_at=None)
