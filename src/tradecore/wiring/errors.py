"""Start-up failures the operator can fix: each becomes one line on stderr and exit code 2."""


class StartupError(Exception):
    """The message says what is wrong and how to fix it; no traceback is shown."""


class StoppedEarly(Exception):
    """SIGINT / SIGTERM arrived during start-up; everything was closed cleanly (exit 0)."""
