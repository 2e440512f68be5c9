"""The configuration: one TOML file, `TRADECORE_*` overrides, secrets from outside.

Precedence, lowest first: the defaults in the classes below (the SPEC's), the TOML file
(`--config PATH`), then environment overrides. An override names a key path with double
underscores: `TRADECORE_TRADING__SIZING__LEVERAGE=5` sets `[trading.sizing] leverage = 5`,
`TRADECORE_MODE=demo` sets the top-level `mode`. Its value is read as a TOML value when it is
one (`5`, `2.5`, `true`, `["BTCUSDT"]`, `"text"`) and as a plain string otherwise.

Secrets never come from the TOML file (a key that looks like one is refused): API keys, the
signal token and the alert credentials come from the environment, or from a file named by the
matching `*_FILE` variable (Docker / systemd credentials). Every problem is a `ConfigError`
whose message names the key, the value and what is allowed. `docs/configuration.md` lists
every key; a test keeps it complete.
"""

import os
import tomllib
from collections.abc import Callable, Mapping
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError

from tradecore.adapters.dburl import parse_database_url
from tradecore.adapters.signals import WebSocketSettings
from tradecore.app.settings import TradingSettings, conditional_orders_problem
from tradecore.domain.leverage import CONFIGURABLE_MARGIN_MODES, MarginMode
from tradecore.domain.model import Venue

ENV_PREFIX = "TRADECORE_"
CONFIG_ENV = "TRADECORE_CONFIG"
T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration tradecore refuses; the message says what is wrong and how to fix it."""


class Mode(StrEnum):
    PAPER = "paper"  # the simulated venue, no keys
    DEMO = "demo"  # the venue's demo / testnet account
    LIVE = "live"  # real money: needs `mode = "live"` AND `trade --live`


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class LogLevel(StrEnum):
    TRACE = "TRACE"
    DEBUG = "DEBUG"
    INFO = "INFO"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


def _port(_: object, attribute: "attrs.Attribute[int]", value: int) -> None:
    if not 0 <= value <= 65535:
        raise ConfigError(f"{attribute.name} = {value!r} is not allowed; use 0 to 65535")


def _positive(_: object, attribute: "attrs.Attribute[Any]", value: Any) -> None:
    if value <= 0:
        raise ConfigError(f"{attribute.name} = {value!r} is not allowed; it must be above 0")


def _a_rate(_: object, attribute: "attrs.Attribute[Any]", value: Any) -> None:
    if not -1 < value < 1:
        raise ConfigError(
            f"paper.{attribute.name} = {value} is not allowed; use a rate per 8 hours "
            "between -1 and 1, e.g. 0.0001 (0.01 %)"
        )


def _not_negative(_: object, attribute: "attrs.Attribute[Any]", value: Any) -> None:
    if value < 0:
        raise ConfigError(f"{attribute.name} = {value!r} is not allowed; it must be 0 or more")


@attrs.frozen(kw_only=True)
class DatabaseSettings:
    url: str = "sqlite:///var/tradecore.db"
    spool_path: str = "var/events.spool"  # events wait here while the database is down


@attrs.frozen(kw_only=True)
class SignalSettings:
    url: str = "ws://127.0.0.1:8765"
    auth_message: bool = False
    token_file: str | None = None  # or TRADECORE_SIGNALS_TOKEN


@attrs.frozen(kw_only=True)
class HealthSettings:
    host: str = "127.0.0.1"
    port: int = attrs.field(default=8080, validator=_port)  # 0: no endpoint
    in_paper: bool = False  # serve it during a paper session as well


@attrs.frozen(kw_only=True)
class LoggingSettings:
    level: LogLevel = LogLevel.INFO
    format: LogFormat = LogFormat.TEXT
    file: str = "var/log/tradecore.log"  # "" logs to stderr only
    rotation_mb: int = attrs.field(default=100, validator=_positive)
    retention_files: int = attrs.field(default=10, validator=_positive)


@attrs.frozen(kw_only=True)
class AlertSettings:
    telegram_chat_id: str | None = None  # with TRADECORE_TELEGRAM_TOKEN
    # answer /status /positions /pnl /health in that chat (demo and live; read-only)
    telegram_commands: bool = True
    # in a group chat, answer only these members (Telegram user ids); empty: every member
    telegram_user_ids: tuple[str, ...] = ()
    dedupe_seconds: float = attrs.field(default=300.0, validator=_not_negative)
    per_minute: int = attrs.field(default=20, validator=_positive)
    timeout_seconds: float = attrs.field(default=10.0, validator=_positive)


@attrs.frozen(kw_only=True)
class PaperSettings:
    seed: int = 7
    hours: float = attrs.field(default=4.0, validator=_positive)
    symbols: int = attrs.field(default=30, validator=_positive)
    balance: Decimal = attrs.field(default=Decimal(10_000), validator=_positive)
    # virtual seconds per venue round trip
    latency_seconds: float = attrs.field(default=0.05, validator=_not_negative)
    database_url: str = ""  # "": a new SQLite file per session under var/paper/
    # charged every 8 hours (00:00, 08:00, 16:00 UTC) on each open position's value: longs
    # pay shorts when positive; 0.0001 = 0.01 %, the venues' baseline rate
    funding_rate: Decimal = attrs.field(default=Decimal("0.0001"), validator=_a_rate)


def _exchange_url(_: object, attribute: "attrs.Attribute[str]", value: str) -> None:
    parts = urlsplit(value)
    if value and (
        parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/")
    ):
        raise ConfigError(
            f'testing.exchange_url = {value!r} is not allowed; use "" (off) or the base URL '
            'of a loopback exchange, e.g. "http://127.0.0.1:8901" (no path)'
        )


@attrs.frozen(kw_only=True)
class TestingSettings:
    """Only for tests: trade against a loopback exchange (refused in live mode)."""

    __test__ = False  # not a pytest class

    exchange_url: str = attrs.field(default="", validator=_exchange_url)


@attrs.frozen(kw_only=True)
class Config:
    mode: Mode = Mode.PAPER
    venue: Venue = Venue.BINANCE
    account: str = "default"  # a label: the lock is keyed by the API key's fingerprint
    # where the machine's account locks live ("": the temp dir's tradecore-locks/)
    lock_dir: str = ""
    database: DatabaseSettings = attrs.Factory(DatabaseSettings)
    signals: SignalSettings = attrs.Factory(SignalSettings)
    health: HealthSettings = attrs.Factory(HealthSettings)
    logging: LoggingSettings = attrs.Factory(LoggingSettings)
    alerts: AlertSettings = attrs.Factory(AlertSettings)
    paper: PaperSettings = attrs.Factory(PaperSettings)
    trading: TradingSettings = attrs.Factory(TradingSettings)
    testing: TestingSettings = attrs.Factory(TestingSettings)


# -- secrets ---------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Secrets:
    """Credentials from the environment; never in a repr, a log line or the config file."""

    binance_api_key: str | None = attrs.field(default=None, repr=False)
    binance_api_secret: str | None = attrs.field(default=None, repr=False)
    bybit_api_key: str | None = attrs.field(default=None, repr=False)
    bybit_api_secret: str | None = attrs.field(default=None, repr=False)
    signals_token: str | None = attrs.field(default=None, repr=False)
    telegram_token: str | None = attrs.field(default=None, repr=False)
    webhook_url: str | None = attrs.field(default=None, repr=False)
    dashboard_token: str | None = attrs.field(default=None, repr=False)  # docs/operations.md
    # a venue added with Venue.register (docs/extending.md): (its name, its key, its secret)
    other_venues: tuple[tuple[str, str | None, str | None], ...] = attrs.field(
        default=(), repr=False
    )

    def values(self) -> tuple[str, ...]:
        """Every secret that is set (for the log redaction filter)."""
        plain = (getattr(self, name) for name in _PLAIN_SECRETS)
        others = (value for _, *pair in self.other_venues for value in pair)
        return tuple(v for v in (*plain, *others) if v)

    def keys_for(self, venue: Venue) -> tuple[str | None, str | None]:
        for name, key, secret in self.other_venues:
            if name == venue.value:
                return key, secret
        return (
            getattr(self, f"{venue.value}_api_key", None),
            getattr(self, f"{venue.value}_api_secret", None),
        )


def venue_key_names(venue: Venue) -> tuple[str, str]:
    """The environment variables of `venue`'s API key and secret (a hyphen in its name is an
    underscore: TRADECORE_ACME_X_API_KEY for "acme-x")."""
    stem = f"{ENV_PREFIX}{venue.value.upper().replace('-', '_')}"
    return f"{stem}_API_KEY", f"{stem}_API_SECRET"


def _other_venues() -> list[Venue]:
    """The venues known now whose keys have no field of their own in `Secrets`."""
    return [v for v in Venue if f"{v.value}_api_key" not in _PLAIN_SECRETS]


def _venue_secret_variables() -> set[str]:
    names = {name for venue in _other_venues() for name in venue_key_names(venue)}
    return {*names, *(f"{name}_FILE" for name in names)}


_PLAIN_SECRETS = tuple(f.name for f in attrs.fields(Secrets) if f.name != "other_venues")
SECRET_NAMES = tuple(f"{ENV_PREFIX}{name.upper()}" for name in _PLAIN_SECRETS)
_RESERVED = {*SECRET_NAMES, *(f"{n}_FILE" for n in SECRET_NAMES), CONFIG_ENV}
_SECRET_WORDS = ("token", "secret", "password", "api_key", "apikey", "webhook_url")


def read_secrets(env: Mapping[str, str], *, signals_token_file: str | None = None) -> Secrets:
    found: dict[str, str | None] = {}
    for field in _PLAIN_SECRETS:
        found[field] = _secret(env, f"{ENV_PREFIX}{field.upper()}")
    if found["signals_token"] is None and signals_token_file:
        found["signals_token"] = _read_secret_file(signals_token_file, "signals.token_file")
    others = []
    for venue in _other_venues():
        key, secret = venue_key_names(venue)
        others.append((venue.value, _secret(env, key), _secret(env, secret)))
    return Secrets(**found, other_venues=tuple(others))


def _secret(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    if value:
        return value
    path = env.get(f"{name}_FILE", "").strip()
    return _read_secret_file(path, f"{name}_FILE") if path else None


def _read_secret_file(path: str, key: str) -> str:
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"{key} = {path!r} cannot be read ({exc.strerror}); "
            "point it at a readable file holding the secret"
        ) from None
    if not value:
        raise ConfigError(f"{key} = {path!r} is an empty file; put the secret in it")
    return value


# -- loading ---------------------------------------------------------------------------------


def load_config(path: str | Path | None, env: Mapping[str, str] | None = None) -> Config:
    """The configuration from `path` (None: defaults only) and the `TRADECORE_*` overrides."""
    env = os.environ if env is None else env
    raw = _read_toml(Path(path)) if path is not None else {}
    for key_path, value in _overrides(env):
        _set(raw, key_path, value)
    _refuse_secrets(raw, ())
    return structure_config(raw)


def structure_config(raw: Mapping[str, Any]) -> Config:
    _check_sections(raw, Config, ())
    try:
        return _CONVERTER.structure(raw, Config)
    except ClassValidationError as group:
        raise ConfigError(_first_problem(group, Config, ())) from None
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def _check_sections(raw: Mapping[str, Any], cls: type, path: tuple[str, ...]) -> None:
    for field in attrs.fields(cls):
        if field.name not in raw or not (isinstance(field.type, type) and attrs.has(field.type)):
            continue
        value, here = raw[field.name], ".".join((*path, field.name))
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"{here} = {_shown(value)} is not allowed; {here} is a section: "
                f"write [{here}] and its keys below it"
            )
        _check_sections(value, field.type, (*path, field.name))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"the config file {str(path)!r} does not exist; check --config "
            "(an example is in docs/configuration.md)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"the config file {str(path)!r} cannot be read: {exc.strerror}") from None
    try:
        # Decimal for every TOML float: 2.5 stays exactly 2.5 on its way to a price.
        return tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the config file {str(path)!r} is not valid TOML: {exc}") from None


def _overrides(env: Mapping[str, str]) -> list[tuple[tuple[str, ...], Any]]:
    found = []
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name in _RESERVED:
            continue
        if name in _venue_secret_variables():  # a registered venue's keys (read_secrets)
            continue
        parts = tuple(p.lower() for p in name[len(ENV_PREFIX) :].split("__"))
        if not all(parts):
            raise ConfigError(
                f"the environment variable {name} is not a key path; write it as "
                "TRADECORE_SECTION__KEY, e.g. TRADECORE_TRADING__SIZING__LEVERAGE=5"
            )
        found.append((parts, _env_value(env[name])))
    return found


def _env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}", parse_float=Decimal)["v"]
    except tomllib.TOMLDecodeError:
        return text


def _set(raw: dict[str, Any], key_path: tuple[str, ...], value: Any) -> None:
    node = raw
    for part in key_path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            dotted = ".".join(key_path)
            raise ConfigError(f"{dotted}: {part!r} is a value, not a section")
        node = child
    node[key_path[-1]] = value


def _refuse_secrets(raw: Mapping[str, Any], path: tuple[str, ...]) -> None:
    for key, value in raw.items():
        here = (*path, key)
        if isinstance(value, Mapping):
            _refuse_secrets(value, here)
        elif not key.endswith("_file") and any(w in key.lower() for w in _SECRET_WORDS):
            raise ConfigError(_secret_in_file(here))


def _secret_in_file(path: tuple[str, ...]) -> str:
    """Where the secret at `path` is read from instead: the variable `read_secrets` reads
    (`[signals] token` -> TRADECORE_SIGNALS_TOKEN), or that no secret has that name."""
    dotted = ".".join(path)
    fields = set(_PLAIN_SECRETS)
    for name in (path[-1], "_".join(path[-2:])):
        if name in fields:
            variable = f"{ENV_PREFIX}{name.upper()}"
            return (
                f"{dotted}: secrets are not read from the config file; set {variable} in the "
                f"environment (or {variable}_FILE naming a file that holds it) and remove the key"
            )
    return (
        f"{dotted}: secrets are not read from the config file, and tradecore reads no secret "
        f"by that name; remove the key (a database password belongs in the URL, set by "
        f"{ENV_PREFIX}DATABASE__URL; the secrets read are {', '.join(SECRET_NAMES)})"
    )


def env_variable(path: tuple[str, ...]) -> str:
    """The environment variable that sets the key at `path` (`TRADECORE_TRADING__SIZING__…`)."""
    return ENV_PREFIX + "__".join(part.upper() for part in path)


# -- structuring with messages that name key, value and what is allowed ----------------------


class _Invalid(ValueError):
    def __init__(self, value: Any, allowed: str) -> None:
        super().__init__(f"{value!r} is not allowed; {allowed}")
        self.value = value
        self.allowed = allowed


def _decimal(value: Any, _: type) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str | float):
        raise _Invalid(value, 'use a number, e.g. 2.5 or "2.5"')
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _Invalid(value, 'use a number, e.g. 2.5 or "2.5"') from None
    if not number.is_finite():
        raise _Invalid(value, "use a finite number")
    return number


def _float(value: Any, _: type) -> float:
    return float(_decimal(value, Decimal))


def _int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(value, "use a whole number, e.g. 20")
    return value


def _bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(value, "use true or false")
    return value


def _str(value: Any, _: type) -> str:
    # A whole number is taken as text too: chat ids and account names are often digits, and
    # an environment override `=42` reads as the TOML integer 42.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise _Invalid(value, "use a string in quotes")
    return value


def _seconds(value: Any, _: type) -> timedelta:
    return timedelta(seconds=_float(value, float))


def _enum(value: Any, kind: type[Enum]) -> Enum:
    allowed = [str(member.value) for member in kind]
    for member in kind:
        if isinstance(value, str) and value.lower() == str(member.value).lower():
            return member
    raise _Invalid(value, f"use one of {', '.join(repr(a) for a in allowed)}")


def _margin_mode(value: Any, _: type) -> MarginMode:
    allowed = [m.value for m in CONFIGURABLE_MARGIN_MODES]
    if isinstance(value, str) and value.strip().lower() in allowed:
        return MarginMode(value.strip().lower())
    raise _Invalid(value, f"use one of {', '.join(repr(a) for a in allowed)}")


def _symbols(value: Any, _: type) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Invalid(value, 'use a list of symbols, e.g. ["BTCUSDT", "ETHUSDT"]')
    return frozenset(v.strip().upper() for v in value)


def _user_ids(value: Any, _: type) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(
        isinstance(v, int | str) and not isinstance(v, bool) and str(v).strip().isdigit()
        for v in value
    ):
        raise _Invalid(value, "use a list of Telegram user ids, e.g. [123456789, 987654321]")
    return tuple(str(v).strip() for v in value)


def _build_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    hooks: list[tuple[type, Callable[[Any, type], Any]]] = [
        (Decimal, _decimal),
        (float, _float),
        (int, _int),
        (bool, _bool),
        (str, _str),
        (timedelta, _seconds),
    ]
    for kind, hook in hooks:
        converter.register_structure_hook(kind, hook)
    for kind in (Mode, Venue, LogFormat, LogLevel):  # before `str`: these are str subclasses
        converter.register_structure_hook(kind, _enum)
    converter.register_structure_hook(MarginMode, _margin_mode)
    converter.register_structure_hook_func(lambda t: t == frozenset[str], _symbols)
    converter.register_structure_hook_func(lambda t: t == tuple[str, ...], _user_ids)
    return converter


_CONVERTER = _build_converter()


def _first_problem(error: BaseException, cls: type, path: tuple[str, ...]) -> str:
    """The first leaf problem of a cattrs error tree, as `key = value: allowed`."""
    if isinstance(error, ForbiddenExtraKeysError):
        return _extra_keys(error, path)
    if isinstance(error, ClassValidationError):
        for inner in error.exceptions:
            name = _note_name(inner)
            child = (*path, name) if name else path
            child_cls = _field_type(error.cl, name) if name else error.cl
            return _first_problem(inner, child_cls, child)
    named = str(error).split(" ", 1)[0]  # a domain refusal names its field first
    if not isinstance(error, _Invalid) and named in _field_names(cls):
        path = (*path, named)
    dotted = ".".join(path) or "(top level)"
    where = _where(path)
    if isinstance(error, _Invalid):
        return f"{dotted} = {_shown(error.value)} is not allowed; {error.allowed}{where}"
    return f"{dotted}: {error}{where}"


def _field_names(cls: type) -> set[str]:
    return {f.name for f in attrs.fields(cls)} if attrs.has(cls) else set()


def _where(path: tuple[str, ...]) -> str:
    """Where the value can be fixed: the file's key, or the environment override."""
    if not path:
        return ""
    return f" (set it in the config file, or with {env_variable(path)})"


def _note_name(error: BaseException) -> str | None:
    for note in getattr(error, "__notes__", []):
        name = getattr(note, "name", None)
        if isinstance(name, str):
            return name
    return None


def _field_type(cls: type, name: str) -> type:
    if attrs.has(cls):
        for field in attrs.fields(cls):
            if field.name == name and isinstance(field.type, type):
                return field.type
    return cls


def _extra_keys(error: ForbiddenExtraKeysError, path: tuple[str, ...]) -> str:
    keys = sorted(error.extra_fields)
    where = ".".join(path) or "the top level"
    allowed = ", ".join(f.name for f in attrs.fields(error.cl))
    first = ".".join((*path, keys[0]))
    return (
        f"{first}: unknown key in {where}; the keys allowed there are: {allowed} "
        "(see docs/configuration.md)"
    )


def _shown(value: Any) -> str:
    text = repr(str(value)) if isinstance(value, Decimal) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- introspection for docs and tests ---------------------------------------------------------


def config_keys(cls: type = Config, prefix: str = "") -> list[str]:
    """Every key a config file may hold, dotted (`trading.sizing.leverage`)."""
    keys: list[str] = []
    for field in attrs.fields(cls):
        name = f"{prefix}{field.name}"
        if isinstance(field.type, type) and attrs.has(field.type):
            keys += config_keys(field.type, f"{name}.")
        else:
            keys.append(name)
    return keys


def check_venue_fit(config: Config) -> None:
    """Refuse settings the venue cannot hold, e.g. more stops than its conditional-order cap."""
    if config.mode is Mode.PAPER:
        from tradecore.adapters.paper import dialect_for as paper_dialect

        paper = paper_dialect(config.venue)
        capabilities, whole_leverage = paper.capabilities, paper.whole_leverage
    else:
        from tradecore.adapters.ccxt.venues import dialect_for

        dialect = dialect_for(config.venue)
        capabilities = dialect.profile.capabilities
        whole_leverage = dialect.whole_number_leverage
    leverage = config.trading.sizing.leverage
    if leverage % 1 and whole_leverage:
        raise ConfigError(
            f"trading.sizing.leverage = {leverage} is not allowed on {_name(config.venue)}: "
            f"its leverage is a whole number; use e.g. {int(leverage)} (set it in the config "
            "file, or with TRADECORE_TRADING__SIZING__LEVERAGE)"
        )
    if conditional_orders_problem(config.trading, capabilities, config.venue.value):
        name = _name(config.venue)
        raise ConfigError(str(conditional_orders_problem(config.trading, capabilities, name)))


def _name(venue: Venue) -> str:
    """The venue as an operator reads it (its ccxt dialect's name; read only on the way to a
    refusal, so a paper session never loads ccxt)."""
    from tradecore.adapters.ccxt.venues import dialect_for

    try:
        return dialect_for(venue).display_name
    except ValueError:  # a venue only the paper engine knows
        return venue.value


def missing_keys(config: Config) -> str:
    key, secret = venue_key_names(config.venue)
    return (
        f"trading on {config.venue.value} needs its API key and secret: set "
        f"{key} and {secret} in the environment "
        "(or their _FILE variants naming files that hold them)"
    )


def check_for_trading(config: Config, secrets: Secrets) -> None:
    """What `trade` refuses before it starts, in its order; `check-config` asks the same of
    the mode the file names (paper needs no keys)."""
    refuse_testing_in_live(config)
    check_venue_fit(config)
    parse_database_url(config.database.url)
    if config.mode is not Mode.PAPER:
        require_keys(config, secrets)
    check_signals(config, secrets)


def check_signals(config: Config, secrets: Secrets) -> None:
    try:
        WebSocketSettings(url=config.signals.url, token=secrets.signals_token)
    except ValueError as exc:
        raise ConfigError(f"signals.url = {config.signals.url!r} is not allowed: {exc}") from None


def refuse_testing_in_live(config: Config) -> None:
    """A loopback exchange is for tests: real money never goes there, nor a test to a venue."""
    if config.mode is Mode.LIVE and config.testing.exchange_url:
        raise ConfigError(
            f"testing.exchange_url = {config.testing.exchange_url!r} is refused in live mode: "
            "a test exchange never trades real money; remove it (or --testing-exchange-url), "
            "or run without --live"
        )


def require_keys(config: Config, secrets: Secrets) -> None:
    key, secret = secrets.keys_for(config.venue)
    if not key or not secret:
        raise ConfigError(missing_keys(config))
