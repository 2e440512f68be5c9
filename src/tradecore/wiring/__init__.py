"""The composition layer: the library's adapters wired to the application, ready to run.

What `python -m runner` starts, reusable from a notebook or a test: the configuration schema
and its loader (`config`), the dependency-injector container that chooses and opens the
adapters (`container`), a paper session (`paper`), `/health` and `/metrics` (`health`), the
dashboard on the bot's health server (`dashboard`), the process around the kernel — signals,
stoppable start-up, resources closed (`lifecycle`) — and the secret-redacting log set-up
(`logs`). It may import every layer of the library; nothing in the library imports it (an
import-linter contract), and it never imports the runner, which only parses, wires and starts.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import (
        CONFIG_ENV,
        AlertSettings,
        Config,
        ConfigError,
        DatabaseSettings,
        HealthSettings,
        LogFormat,
        LoggingSettings,
        LogLevel,
        Mode,
        PaperSettings,
        Secrets,
        SignalSettings,
        TestingSettings,
        check_for_trading,
        check_venue_fit,
        load_config,
        read_secrets,
        structure_config,
    )
    from .container import Container, SignalSpec
    from .errors import StartupError, StoppedEarly
    from .health import Health, HealthServer, HealthSources
    from .lifecycle import resolve, shutdown, start_unless_stopped, stop_on_signals, unless_stopped
    from .logs import Redactor, configure_logging
    from .paper import PaperOptions, run_paper

# Each name is imported from its module on first use: `python -m runner check-config` reads
# the configuration without loading the container's adapters (aiohttp, httpx, the databases).
_MODULES = {
    "AlertSettings": "config",
    "CONFIG_ENV": "config",
    "Config": "config",
    "ConfigError": "config",
    "Container": "container",
    "DatabaseSettings": "config",
    "Health": "health",
    "HealthServer": "health",
    "HealthSettings": "config",
    "HealthSources": "health",
    "LogFormat": "config",
    "LogLevel": "config",
    "LoggingSettings": "config",
    "Mode": "config",
    "PaperOptions": "paper",
    "PaperSettings": "config",
    "Redactor": "logs",
    "Secrets": "config",
    "SignalSettings": "config",
    "SignalSpec": "container",
    "StartupError": "errors",
    "StoppedEarly": "errors",
    "TestingSettings": "config",
    "check_for_trading": "config",
    "check_venue_fit": "config",
    "configure_logging": "logs",
    "load_config": "config",
    "read_secrets": "config",
    "resolve": "lifecycle",
    "run_paper": "paper",
    "shutdown": "lifecycle",
    "start_unless_stopped": "lifecycle",
    "stop_on_signals": "lifecycle",
    "structure_config": "config",
    "unless_stopped": "lifecycle",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = [
    "CONFIG_ENV",
    "AlertSettings",
    "Config",
    "ConfigError",
    "Container",
    "DatabaseSettings",
    "Health",
    "HealthServer",
    "HealthSettings",
    "HealthSources",
    "LogFormat",
    "LogLevel",
    "LoggingSettings",
    "Mode",
    "PaperOptions",
    "PaperSettings",
    "Redactor",
    "Secrets",
    "SignalSettings",
    "SignalSpec",
    "StartupError",
    "StoppedEarly",
    "TestingSettings",
    "check_for_trading",
    "check_venue_fit",
    "configure_logging",
    "load_config",
    "read_secrets",
    "resolve",
    "run_paper",
    "shutdown",
    "start_unless_stopped",
    "stop_on_signals",
    "structure_config",
    "unless_stopped",
]
