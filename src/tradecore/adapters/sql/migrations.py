"""Versioned SQL migrations: `NNNN_name.sql` files applied in order, each recorded with its
checksum in `schema_migrations`. Every table is created by these files, none by code."""

import hashlib
import re
from importlib import resources

import attrs

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    """The migrations on disk and the ones recorded in the database disagree."""


@attrs.frozen(kw_only=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(package: str) -> tuple[Migration, ...]:
    """The migrations shipped in `package`'s `migrations/` folder, by version."""
    found = []
    for entry in resources.files(package).joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(
                Migration(version=int(match.group(1)), name=match.group(2), sql=entry.read_text())
            )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations in {package} share a version: {versions}")
    return tuple(found)


def pending(available: tuple[Migration, ...], applied: dict[int, str]) -> tuple[Migration, ...]:
    """The migrations still to run; refuses if an applied one was edited since it ran."""
    for migration in available:
        recorded = applied.get(migration.version)
        if recorded is not None and recorded != migration.checksum:
            raise MigrationError(
                f"migration {migration.version:04d}_{migration.name} was changed after it "
                "was applied; add a new migration instead of editing an applied one"
            )
    unknown = set(applied) - {m.version for m in available}
    if unknown:
        raise MigrationError(
            f"the database has migrations this tradecore does not know: {sorted(unknown)}; "
            "it was migrated by a newer version"
        )
    return tuple(m for m in available if m.version not in applied)
