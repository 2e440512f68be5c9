"""The migration files: ordered, recorded by checksum, edited ones refused, SQLite's split
into statements."""

import pytest

from tradecore.adapters.sql.migrations import MigrationError, load_migrations, pending
from tradecore.adapters.sqlite.database import statements


@pytest.mark.parametrize("package", ["tradecore.adapters.postgres", "tradecore.adapters.sqlite"])
def test_both_dialects_ship_the_same_versions(package: str) -> None:
    versions = [m.version for m in load_migrations(package)]
    other = "tradecore.adapters.sqlite" if "postgres" in package else "tradecore.adapters.postgres"
    assert versions == [m.version for m in load_migrations(other)]
    assert versions == sorted(versions)
    assert versions[0] == 1


def test_nothing_is_pending_once_every_migration_is_recorded() -> None:
    available = load_migrations("tradecore.adapters.postgres")
    applied = {m.version: m.checksum for m in available}
    assert pending(available, applied) == ()


def test_an_applied_migration_that_was_edited_is_refused() -> None:
    available = load_migrations("tradecore.adapters.postgres")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        pending(available, {available[0].version: "0" * 64})


def test_a_database_migrated_by_a_newer_version_is_refused() -> None:
    available = load_migrations("tradecore.adapters.postgres")
    applied = {m.version: m.checksum for m in available} | {9999: "x"}
    with pytest.raises(MigrationError, match="newer version"):
        pending(available, applied)


def test_the_sqlite_script_splits_into_whole_statements() -> None:
    script = "-- a comment\nCREATE TABLE a (x TEXT DEFAULT ';');\n\nCREATE INDEX i ON a (x);\n"
    assert statements(script) == [
        "-- a comment\nCREATE TABLE a (x TEXT DEFAULT ';');",
        "CREATE INDEX i ON a (x);",
    ]
