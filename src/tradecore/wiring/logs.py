"""Logs through loguru: stderr, and a file rotated at 100 MB keeping 10, optionally JSON lines.

Every record passes a filter that replaces each known secret (API keys, tokens, webhook URL)
with `***` before any sink formats it, and the standard `logging` module (httpx, asyncio,
aiohttp) is routed through the same sinks, so nothing reaches a log without the filter.
"""

import logging as std_logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from loguru import logger

from .config import LogFormat, LoggingSettings

REDACTED = "***"
_TEXT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {name}:{line} | {message}"


class Redactor:
    """A loguru filter: rewrites the message (and extra values, nested ones too) without
    any secret in them."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def _scrub(self, value: Any) -> Any:
        """`value` with every secret redacted, nested mappings and lists too (event data)."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self._scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrub(v) for v in value]
        return value

    def __call__(self, record: Any) -> bool:
        record["message"] = self.redact(record["message"])
        for key, value in list(record["extra"].items()):
            record["extra"][key] = self._scrub(value)
        exception = record["exception"]
        if exception is not None and exception.value is not None:
            exception.value.args = tuple(
                self.redact(a) if isinstance(a, str) else a for a in exception.value.args
            )
        return True


class _ToLoguru(std_logging.Handler):
    def emit(self, record: std_logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def configure_logging(
    settings: LoggingSettings,
    secrets: Iterable[str],
    *,
    stderr: TextIO | None = None,
    stderr_level: str | None = None,
) -> Redactor:
    """Replace every sink with ours; returns the redactor (for other outputs to reuse)."""
    redactor = Redactor(secrets)
    serialize = settings.format is LogFormat.JSON
    logger.remove()
    logger.add(
        stderr or sys.stderr,
        level=stderr_level or settings.level.value,
        format=_TEXT,
        filter=redactor,
        serialize=serialize,
        backtrace=False,
        diagnose=False,  # variable values in tracebacks could hold a secret
    )
    if settings.file:
        Path(settings.file).parent.mkdir(parents=True, exist_ok=True)
        logger.add(
            settings.file,
            level=settings.level.value,
            format=_TEXT,
            filter=redactor,
            serialize=serialize,
            rotation=f"{settings.rotation_mb} MB",
            retention=settings.retention_files,
            encoding="utf-8",
            backtrace=False,
            diagnose=False,
        )
    std_logging.basicConfig(handlers=[_ToLoguru()], level=std_logging.WARNING, force=True)
    return redactor
