"""A throwaway PostgreSQL server for tests and benchmarks, started from the machine's binaries.

    server = PostgresServer.start()        # initdb + pg_ctl start in a new temporary directory
    url = server.create_database()         # postgresql://postgres@127.0.0.1:<port>/<new name>
    server.stop(); server.restart()        # an outage of this server only
    server.close()                         # stopped and its directory removed (also at exit)

The server listens on 127.0.0.1 on a free port and on a unix socket inside its own directory, with
trust authentication for the superuser `postgres`. It never touches another cluster: no shared
socket directory, no port chosen in advance, no `pg_ctlcluster`. PostgreSQL refuses to run as
root, so under root initdb and the server run as the unprivileged user `nobody`, owner of the
directory. The binaries are looked up in `$TRADECORE_PG_BINDIR` if set (and only there), else on
PATH, then `pg_config --bindir`, then the newest `/usr/lib/postgresql/*/bin`.

The server is stopped and its directory removed by `close()`, at exit, and on SIGTERM. A process
killed outright (SIGKILL, `os._exit`) cannot clean up: each directory names the process that
made it, and the next `start()` stops and removes the servers of processes that are gone.
"""

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

BINDIR_VARIABLE = "TRADECORE_PG_BINDIR"
SUPERUSER = "postgres"
HOST = "127.0.0.1"
UNPRIVILEGED_USER = "nobody"
PREFIX = "tradecore-pg-"
OWNER_FILE = "owner"  # "<pid> <start time>" of the process that made the directory
UNCLAIMED_GRACE = 600.0  # seconds a directory without an owner file may be someone starting
_TOOLS = ("initdb", "pg_ctl")
# A test server's data is thrown away: skip the disk flushes that make a loaded machine crawl.
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class PostgresUnavailable(RuntimeError):
    """No throwaway server can be started here (binaries missing, or they failed); says why."""


def find_bindir() -> Path:
    """The directory with `initdb` and `pg_ctl`; else PostgresUnavailable says where it looked."""
    forced = os.environ.get(BINDIR_VARIABLE)
    candidates = [Path(forced)] if forced else _candidate_bindirs()
    for directory in candidates:
        if all(os.access(directory / tool, os.X_OK) for tool in _TOOLS):
            return directory
    where = ", ".join(str(d) for d in candidates) or "nowhere"
    raise PostgresUnavailable(
        f"the PostgreSQL server binaries ({' and '.join(_TOOLS)}) were not found (looked in "
        f"{where}); install them (e.g. `apt-get install postgresql`) or set {BINDIR_VARIABLE}"
    )


def _candidate_bindirs() -> list[Path]:
    found: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        found.append(Path(on_path).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            found.append(Path(out.stdout.strip()))
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    found.extend(sorted(versions, key=lambda p: _version_key(p.parent.name), reverse=True))
    return list(dict.fromkeys(found))


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def free_port() -> int:
    """A TCP port nobody listens on right now (the server may still lose a race for it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory, owned and stopped by this process."""

    def __init__(self, bindir: Path, root: Path, port: int, settings: dict[str, str]) -> None:
        self.bindir = bindir
        self.root = root
        self.port = port
        self._settings = settings
        self._owner = _unprivileged_owner()
        self._closed = False

    @classmethod
    def start(cls, *, durable: bool = False, attempts: int = 3) -> "PostgresServer":
        """A new running server. `durable=False` turns fsync off (data is thrown away anyway);
        benchmarks that measure writes pass `durable=True` to keep PostgreSQL's defaults."""
        bindir = find_bindir()
        settings = {} if durable else dict(FAST_SETTINGS)
        base = _base_dir()
        reap_orphans(bindir, base)
        root = _make_root(base)
        server = cls(bindir, root, free_port(), settings)
        _LIVE.add(server)
        try:
            server._initdb()
            for attempt in range(1, attempts + 1):
                try:
                    server.restart()
                    break
                except PostgresUnavailable:
                    if attempt == attempts:
                        raise
                    server.port = free_port()  # another process took the port meanwhile
        except BaseException:
            server.close()
            raise
        return server

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/{database}"

    @property
    def admin_url(self) -> str:
        """The maintenance database, for CREATE/DROP DATABASE."""
        return self.url("postgres")

    def create_database(self, prefix: str = "tradecore_test") -> str:
        """A new empty database on this server; its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def psql(self, sql: str) -> str:
        """Run one statement through the server's unix socket; its output (unaligned)."""
        psql = self.bindir / "psql"
        command = [str(psql if psql.exists() else "psql"), "-X", "-q", "-A", "-t"]
        command += ["-h", str(self.socket_dir), "-p", str(self.port), "-U", SUPERUSER]
        return self._run([*command, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql])

    def postmaster_pid(self) -> int | None:
        """The server's process id while it runs (from postmaster.pid), else None."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def restart(self) -> None:
        """Start the (stopped) server again on the same port and wait until it accepts."""
        options = [f"-p {self.port}", f"-k {self.socket_dir}", f"-c listen_addresses={HOST}"]
        options += [f"-c {name}={value}" for name, value in self._settings.items()]
        command = [str(self.bindir / "pg_ctl"), "start", "-w", "-t", "60"]
        self._run(
            [*command, "-D", str(self.data_dir), "-l", str(self.log_file)],
            options=" ".join(options),
        )

    def stop(self) -> None:
        """Stop this server (fast shutdown: open connections are ended), keeping its data."""
        command = [str(self.bindir / "pg_ctl"), "stop", "-w", "-t", "60", "-m", "fast"]
        self._run([*command, "-D", str(self.data_dir)])

    def close(self) -> None:
        """Stop the server if it runs and remove its directory. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        _LIVE.discard(self)
        if self.postmaster_pid() is not None:
            with contextlib.suppress(PostgresUnavailable):
                self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _initdb(self) -> None:
        self.data_dir.mkdir()
        self.socket_dir.mkdir()
        if self._owner is not None:
            for path in (self.root, self.data_dir, self.socket_dir):
                os.chown(path, self._owner.pw_uid, self._owner.pw_gid)
        command = [str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER]
        self._run([*command, "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"])

    def _run(self, command: Sequence[str], *, options: str | None = None) -> str:
        if options is not None:
            command = [*command, "-o", options]
        owner = self._owner
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=120,
                cwd=self.root,
                env={**os.environ, "LC_ALL": "C", "PGTZ": "UTC"},
                user=None if owner is None else owner.pw_uid,
                group=None if owner is None else owner.pw_gid,
                extra_groups=None if owner is None else [],
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise PostgresUnavailable(f"{command[0]} could not run: {exc}") from exc
        if done.returncode != 0:
            log = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise PostgresUnavailable(
                f"{' '.join(command[:2])} failed ({done.returncode}): "
                f"{done.stderr.strip() or done.stdout.strip()}\n{log}".strip()
            )
        return done.stdout


def _unprivileged_owner() -> pwd.struct_passwd | None:
    """Whom to run PostgreSQL as: None (ourselves) unless we are root, which it refuses."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError as exc:
        raise PostgresUnavailable(
            f"running as root, and PostgreSQL refuses root: no user {UNPRIVILEGED_USER!r} "
            "to run it as"
        ) from exc


def _base_dir() -> Path:
    """Where servers live: the temp dir, or /tmp if the server's user could not reach it."""
    base = Path(tempfile.gettempdir())
    if os.geteuid() == 0 and not _world_traversable(base):
        base = Path("/tmp")
    return base


def _make_root(base: Path) -> Path:
    root = Path(tempfile.mkdtemp(prefix=PREFIX, dir=base))
    (root / OWNER_FILE).write_text(_process_identity(os.getpid()) or str(os.getpid()))
    return root


def _process_identity(pid: int) -> str | None:
    """ "<pid> <start time>" while the process runs (the start time tells a reused pid apart)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return str(pid)  # no /proc: the pid alone
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return f"{pid} {fields[19]}"


def reap_orphans(bindir: Path, base: Path) -> list[Path]:
    """Stop and remove the servers whose making process is gone (killed before it could)."""
    reaped = []
    for root in base.glob(f"{PREFIX}*"):
        if root.is_dir() and _orphaned(root):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                _stop_immediately(bindir, root)
            shutil.rmtree(root, ignore_errors=True)
            reaped.append(root)
    return reaped


def _orphaned(root: Path) -> bool:
    try:
        claim = (root / OWNER_FILE).read_text().strip()
    except FileNotFoundError:
        try:
            return time.time() - root.stat().st_mtime > UNCLAIMED_GRACE
        except OSError:
            return False
    except OSError:
        return False
    pid = claim.split()[0]
    return not pid.isdigit() or _process_identity(int(pid)) != claim


def _stop_immediately(bindir: Path, root: Path) -> None:
    data = root / "data"
    if not (data / "postmaster.pid").exists():
        return
    owner = data.stat()
    as_owner = os.geteuid() == 0 and owner.st_uid != 0
    subprocess.run(
        [str(bindir / "pg_ctl"), "stop", "-w", "-t", "30", "-m", "immediate", "-D", str(data)],
        capture_output=True,
        timeout=60,
        cwd=root,
        user=owner.st_uid if as_owner else None,
        group=owner.st_gid if as_owner else None,
        extra_groups=[] if as_owner else None,
    )


def _world_traversable(path: Path) -> bool:
    return all(os.stat(p).st_mode & 0o001 for p in (path.resolve(), *path.resolve().parents))


class _LiveServers:
    """Every server this process started and has not closed: closed at exit and on SIGTERM."""

    def __init__(self) -> None:
        self._servers: set[PostgresServer] = set()
        self._hooked = False

    def add(self, server: PostgresServer) -> None:
        if not self._hooked:
            self._hooked = True
            atexit.register(self.close_all)
            _close_on_sigterm()
        self._servers.add(server)

    def discard(self, server: PostgresServer) -> None:
        self._servers.discard(server)

    def close_all(self) -> None:
        for server in list(self._servers):
            server.close()


def _close_on_sigterm() -> None:
    # By default SIGTERM kills Python without running atexit: close the servers first, then die
    # of the signal as before. Only when nobody else handles SIGTERM, only from the main thread.
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def close_then_die(signum: int, frame: FrameType | None) -> None:
        _LIVE.close_all()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, close_then_die)


_LIVE = _LiveServers()
