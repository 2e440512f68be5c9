"""The throwaway PostgreSQL the tests start: their own server, gone when the session ends —
however it ends — and never the machine's cluster."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tradecore.testing.pgserver import PostgresServer, reap_orphans

HOLDER = textwrap.dedent(
    """
    import time
    from tradecore.testing.pgserver import PostgresServer, reap_orphans

    server = PostgresServer.start()
    print(server.root, server.postmaster_pid(), flush=True)
    time.sleep(300)
    """
)


def alive(pid: int) -> bool:
    """Running (an exited process waiting for its parent to reap it counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_the_session_server_is_its_own_on_a_free_port_with_its_socket_in_its_directory(
    postgres_server: PostgresServer,
) -> None:
    settings = postgres_server.psql(
        "SELECT current_setting('port') || ' ' || current_setting('unix_socket_directories')"
        " || ' ' || current_setting('data_directory')"
    ).split()
    assert settings == [
        str(postgres_server.port),
        str(postgres_server.socket_dir),
        str(postgres_server.data_dir),
    ]
    assert postgres_server.port != 5432
    assert postgres_server.root.name.startswith("tradecore-pg-")


def start_holder() -> tuple[subprocess.Popen[str], Path, int]:
    """Another process that starts a server and waits; its server's directory and pid."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    root, pid = holder.stdout.readline().split()
    assert alive(int(pid)) and Path(root, "data").is_dir()
    return holder, Path(root), int(pid)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_an_interrupted_session_stops_its_server_and_removes_its_directory(
    postgres_server: PostgresServer, stop_signal: signal.Signals
) -> None:
    holder, root, pid = start_holder()
    try:
        holder.send_signal(stop_signal)
        holder.wait(timeout=120)
    finally:
        if holder.poll() is None:
            holder.kill()
    assert not alive(pid), "the interrupted session left its PostgreSQL running"
    assert not root.exists(), "the interrupted session left its directory behind"


def test_the_server_of_a_killed_session_is_stopped_and_removed_by_the_next_one(
    postgres_server: PostgresServer,
) -> None:
    holder, root, pid = start_holder()
    holder.kill()  # SIGKILL: no atexit, no handler; its server keeps running
    holder.wait(timeout=60)
    assert alive(pid)
    reaped = reap_orphans(postgres_server.bindir, root.parent)  # what the next start() does
    assert root in reaped
    assert not alive(pid) and not root.exists()
    assert postgres_server.psql("SELECT 1").strip() == "1"  # a live session's server is kept
