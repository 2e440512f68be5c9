"""The PostgreSQL fixture: without the server binaries, tests that need one are skipped with a
reason, except under CI=true, where they fail — CI must never go green by skipping the database."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"
NEEDS_POSTGRES = "def test_needs_postgres(postgres_url):\n    assert postgres_url\n"


def run_without_server(tmp_path: Path, *, ci: str) -> subprocess.CompletedProcess[str]:
    empty = tmp_path / "no-postgres-here"
    empty.mkdir()
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_needs_postgres.py").write_text(NEEDS_POSTGRES)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    postgres: real PostgreSQL\n")
    env = {**os.environ, "CI": ci, "TRADECORE_PG_BINDIR": str(empty)}  # no initdb, no pg_ctl
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_a_server_postgres_tests_are_skipped_with_the_reason(tmp_path: Path) -> None:
    result = run_without_server(tmp_path, ci="")
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
    assert "PostgreSQL server binaries (initdb and pg_ctl) were not found" in result.stdout


def test_under_ci_a_missing_server_fails_instead_of_skipping(tmp_path: Path) -> None:
    result = run_without_server(tmp_path, ci="true")
    assert result.returncode != 0
    assert "1 error" in result.stdout or "1 failed" in result.stdout
    assert "CI=true" in result.stdout
