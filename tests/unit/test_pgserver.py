"""The throwaway PostgreSQL the tests start: their own server, gone when the session ends —
however it ends — and never the machine's cluster."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tradecore.testing.pgserver import PostgresServer

HOLDER = textwrap.dedent(
    """
    import time
    from tradecore.testing.pgserver import PostgresServer

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


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_an_interrupted_session_stops_its_server_and_removes_its_directory(
    postgres_server: PostgresServer, stop_signal: signal.Signals
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        root, pid = holder.stdout.readline().split()
        assert alive(int(pid)) and Path(root, "data").is_dir()
        holder.send_signal(stop_signal)
        holder.wait(timeout=120)
    finally:
        if holder.poll() is None:
            holder.kill()
    assert not alive(int(pid)), "the interrupted session left its PostgreSQL running"
    assert not Path(root).exists(), "the interrupted session left its directory behind"
