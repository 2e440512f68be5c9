"""Database URLs: the two accepted forms, and a refusal that names the wrong part."""

from pathlib import Path

import pytest

from tradecore.adapters.dburl import Dialect, InvalidDatabaseUrl, parse_database_url


def test_a_postgresql_url_names_its_database() -> None:
    url = parse_database_url("postgresql://trader:secret@db.internal:5433/tradecore")
    assert url.dialect is Dialect.POSTGRESQL
    assert url.database == "tradecore"


def test_the_short_postgres_scheme_is_accepted() -> None:
    assert parse_database_url("postgres://u@h/db").dialect is Dialect.POSTGRESQL


def test_a_redacted_url_hides_the_password() -> None:
    url = parse_database_url("postgresql://trader:secret@db:5432/tradecore")
    assert "secret" not in url.redacted()
    assert "trader" in url.redacted()


def test_sqlite_in_memory_is_accepted() -> None:
    url = parse_database_url("sqlite:///:memory:")
    assert url.dialect is Dialect.SQLITE
    assert url.is_memory


def test_a_sqlite_file_path_is_kept(tmp_path: Path) -> None:
    url = parse_database_url(f"sqlite:///{tmp_path}/trades.db")
    assert url.path == f"{tmp_path}/trades.db"


@pytest.mark.parametrize(
    ("raw", "part"),
    [
        ("", "empty"),
        ("tradecore.db", "scheme"),
        ("mysql://u@h/db", "scheme"),
        ("postgresql:///tradecore", "host"),
        ("postgresql://u@h:99999/db", "port"),
        ("postgresql://u@h:abc/db", "port"),
        ("postgresql://u@h:5432", "database"),
        ("postgresql://u@h:5432/", "database"),
        ("sqlite://relative.db", "three slashes"),
        ("sqlite:///", "path"),
        ("sqlite:///no/such/directory/x.db", "directory"),
        ("sqlite:///tmp/", "directory"),
    ],
)
def test_a_wrong_url_says_which_part_is_wrong(raw: str, part: str) -> None:
    with pytest.raises(InvalidDatabaseUrl, match=part):
        parse_database_url(raw)
