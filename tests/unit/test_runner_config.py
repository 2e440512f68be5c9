"""The configuration file and its environment overrides: SPEC defaults, refusals that name the
key, the value and what is allowed, secrets only from outside the file, every key documented."""

import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradecore.app.settings import TradingSettings
from tradecore.domain.leverage import MarginMode
from tradecore.domain.model import Venue
from tradecore.wiring.config import (
    Config,
    ConfigError,
    Mode,
    check_venue_fit,
    config_keys,
    load_config,
    read_secrets,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tradecore.toml"
    path.write_text(text, encoding="utf-8")
    return path


def refusal(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env or {})
    return str(caught.value)


def test_no_file_and_no_environment_gives_paper_mode_with_the_spec_defaults() -> None:
    config = load_config(None, {})
    assert config.mode is Mode.PAPER
    assert config.venue is Venue.BINANCE
    assert config.trading == TradingSettings()
    assert config.trading.sizing.position_size_usd == Decimal(200)
    assert config.trading.stops.stop_loss_percent == Decimal(3)
    assert config.health.host == "127.0.0.1" and config.health.port == 8080
    assert config.logging.rotation_mb == 100 and config.logging.retention_files == 10


def test_a_file_sets_nested_trading_settings_with_exact_decimals(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
            mode = "demo"
            venue = "bybit"
            [trading.sizing]
            leverage = 5
            position_size_usd = 150.10
            [trading.trailing]
            callback_percent = 0.3
            [trading.waves]
            stop_list = ["btcusdt", "ETHUSDT"]
            """,
        ),
        {},
    )
    assert config.mode is Mode.DEMO and config.venue is Venue.BYBIT
    assert config.trading.sizing.leverage == Decimal(5)
    assert str(config.trading.sizing.position_size_usd) == "150.10"
    assert config.trading.trailing.callback_percent == Decimal("0.3")
    assert config.trading.waves.stop_list == frozenset({"BTCUSDT", "ETHUSDT"})
    assert config.trading.sizing.max_open_positions == 20  # untouched keys keep defaults


def test_an_unknown_key_is_refused_naming_it_and_the_keys_allowed(tmp_path: Path) -> None:
    message = refusal(tmp_path, "[trading.sizing]\nlevrage = 5\n")
    assert "trading.sizing.levrage" in message
    assert "leverage" in message and "max_open_positions" in message


def test_a_wrong_value_is_refused_naming_key_value_and_what_is_allowed(tmp_path: Path) -> None:
    message = refusal(tmp_path, '[trading.sizing]\nleverage = "ten"\n')
    assert "trading.sizing.leverage" in message
    assert "'ten'" in message
    assert "number" in message


def test_an_unknown_mode_is_refused_listing_the_modes(tmp_path: Path) -> None:
    message = refusal(tmp_path, 'mode = "yolo"\n')
    assert "mode" in message and "'yolo'" in message
    assert all(name in message for name in ("'paper'", "'demo'", "'live'"))


def test_a_section_written_as_a_value_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, "[trading]\nsizing = 5\n")
    assert "trading.sizing" in message and "section" in message


def test_an_out_of_range_port_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, "[health]\nport = 70000\n")
    assert "port" in message and "70000" in message and "65535" in message


def test_a_file_that_is_not_toml_is_refused_with_where_it_broke(tmp_path: Path) -> None:
    message = refusal(tmp_path, "mode = \n")
    assert "not valid TOML" in message and "line 1" in message


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", {})


def test_environment_overrides_reach_nested_keys_and_win_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[trading.sizing]\nleverage = 3\n")
    env = {
        "TRADECORE_TRADING__SIZING__LEVERAGE": "5",
        "TRADECORE_MODE": "demo",
        "TRADECORE_HEALTH__PORT": "9100",
        "TRADECORE_ACCOUNT": "main account",
        "TRADECORE_TRADING__WAVES__STOP_LIST": '["SOLUSDT"]',
    }
    config = load_config(path, env)
    assert config.trading.sizing.leverage == Decimal(5)
    assert config.mode is Mode.DEMO
    assert config.health.port == 9100
    assert config.account == "main account"  # not TOML: taken as a plain string
    assert config.trading.waves.stop_list == frozenset({"SOLUSDT"})


def test_a_misspelt_environment_override_is_refused_like_a_misspelt_key() -> None:
    with pytest.raises(ConfigError, match=r"trading\.sizing\.levrage"):
        load_config(None, {"TRADECORE_TRADING__SIZING__LEVRAGE": "5"})


def test_secrets_in_the_config_file_are_refused_with_the_environment_variable_to_use(
    tmp_path: Path,
) -> None:
    message = refusal(tmp_path, '[alerts]\ntelegram_token = "123:abc"\n')
    assert "TRADECORE_TELEGRAM_TOKEN" in message
    assert "123:abc" not in message


def test_secrets_come_from_the_environment_or_from_a_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("tok-from-file\n", encoding="utf-8")
    secrets = read_secrets(
        {
            "TRADECORE_BINANCE_API_KEY": "key-1",
            "TRADECORE_BINANCE_API_SECRET_FILE": str(token_file),
        }
    )
    assert secrets.keys_for(Venue.BINANCE) == ("key-1", "tok-from-file")
    assert secrets.keys_for(Venue.BYBIT) == (None, None)
    assert "key-1" not in repr(secrets) and "tok-from-file" not in repr(secrets)


def test_an_unreadable_secret_file_is_named_without_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TRADECORE_SIGNALS_TOKEN_FILE"):
        read_secrets({"TRADECORE_SIGNALS_TOKEN_FILE": str(tmp_path / "missing")})


def test_secret_variables_are_not_mistaken_for_overrides() -> None:
    env = {"TRADECORE_BYBIT_API_KEY": "k", "TRADECORE_WEBHOOK_URL": "https://x.test/hook"}
    assert load_config(None, env) == Config()


@settings(max_examples=60, deadline=None)
@given(leverage=st.integers(1, 125), percent=st.decimals("0.01", "50", places=2))
def test_any_valid_number_given_by_environment_arrives_exactly(
    leverage: int, percent: Decimal
) -> None:
    env = {
        "TRADECORE_TRADING__SIZING__LEVERAGE": str(leverage),
        "TRADECORE_TRADING__STOPS__STOP_LOSS_PERCENT": str(percent),
    }
    config = load_config(None, env)
    assert config.trading.sizing.leverage == leverage
    assert config.trading.stops.stop_loss_percent == percent


def test_every_configuration_key_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    documented = set(re.findall(r"`([a-z_]+(?:\.[a-z_]+)*)`", text))
    missing = [key for key in config_keys() if key not in documented]
    assert missing == []


def test_a_short_wave_schedule_for_a_test_run_is_accepted(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            "[trading.waves]\nlength_seconds = 5\ncheck_offset_seconds = 1\n"
            "monitoring_window_seconds = 2\npoll_seconds = 0.2\n",
        ),
        {},
    )
    schedule = config.trading.waves.schedule
    assert schedule.length.total_seconds() == 5 and schedule.check_offset.total_seconds() == 1


def test_the_default_wave_schedule_is_quarter_hours_checked_at_minute_five() -> None:
    waves = load_config(None, {}).trading.waves
    assert (waves.length_seconds, waves.check_offset_seconds) == (900, 300)
    assert waves.monitoring_window_seconds == 240


@pytest.mark.parametrize(
    ("waves", "named"),
    [
        ("length_seconds = 7", "divides a day"),
        ("length_seconds = 0", "length_seconds = 0"),
        ("check_offset_seconds = 900", "below the wave length"),
        ("monitoring_window_seconds = 900", "monitoring_window_seconds = 900"),
        ("poll_seconds = 0", "poll_seconds = 0"),
        ("poll_seconds = 300", "at most monitoring_window_seconds"),
    ],
)
def test_a_wave_schedule_that_cannot_work_is_refused_naming_the_key(
    tmp_path: Path, waves: str, named: str
) -> None:
    message = refusal(tmp_path, f"[trading.waves]\n{waves}\n")
    assert "trading.waves" in message and named in message


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:1", "127.0.0.1:8901", "http://h:1/fapi"])
def test_a_testing_exchange_url_that_is_not_a_base_url_is_refused(tmp_path: Path, url: str) -> None:
    message = refusal(tmp_path, f'[testing]\nexchange_url = "{url}"\n')
    assert "testing.exchange_url" in message and "http://127.0.0.1" in message


def test_the_paper_funding_rate_is_an_exact_rate_per_eight_hours(tmp_path: Path) -> None:
    assert load_config(None, {}).paper.funding_rate == Decimal("0.0001")
    config = load_config(write(tmp_path, "[paper]\nfunding_rate = -0.00025\n"), {})
    assert config.paper.funding_rate == Decimal("-0.00025")
    message = refusal(tmp_path, "[paper]\nfunding_rate = 1.5\n")
    assert "paper.funding_rate" in message and "between -1 and 1" in message


def test_a_token_in_the_file_names_the_variable_that_is_read(tmp_path: Path) -> None:
    """`[signals] token = …` must point at TRADECORE_SIGNALS_TOKEN, the variable the runner
    reads; TRADECORE_TOKEN is itself refused as an unknown key."""
    message = refusal(tmp_path, '[signals]\ntoken = "s3cret"\n')
    assert "TRADECORE_SIGNALS_TOKEN" in message
    assert "TRADECORE_TOKEN " not in message and "TRADECORE_TOKEN_FILE" not in message
    assert "s3cret" not in message
    secrets = read_secrets({"TRADECORE_SIGNALS_TOKEN": "t"})
    assert secrets.signals_token == "t"


def test_a_secret_key_the_runner_does_not_read_says_so(tmp_path: Path) -> None:
    message = refusal(tmp_path, '[database]\npassword = "pw"\n')
    assert "database.password" in message and "pw" not in message
    assert "TRADECORE_DATABASE__URL" in message  # where a database password goes


def test_a_wrong_value_names_the_environment_variable_that_sets_it_too(tmp_path: Path) -> None:
    message = refusal(tmp_path, '[trading.sizing]\nleverage = "ten"\n')
    assert "TRADECORE_TRADING__SIZING__LEVERAGE" in message
    env_message = refusal(tmp_path, "", {"TRADECORE_TRADING__SIZING__LEVERAGE": '"ten"'})
    assert "TRADECORE_TRADING__SIZING__LEVERAGE" in env_message


def test_leverage_and_margin_mode_default_to_10x_isolated_and_can_be_set() -> None:
    assert load_config(None, {}).trading.sizing.margin_mode is MarginMode.ISOLATED
    env = {
        "TRADECORE_TRADING__SIZING__MARGIN_MODE": "cross",
        "TRADECORE_TRADING__SIZING__LEVERAGE": "5",
    }
    sizing = load_config(None, env).trading.sizing
    assert (sizing.margin_mode, sizing.leverage) == (MarginMode.CROSS, Decimal(5))


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("MARGIN_MODE", "portfolio", "use one of 'isolated', 'cross'"),
        ("MARGIN_MODE", "hedged", "use one of 'isolated', 'cross'"),
        ("LEVERAGE", "0.5", "from 1 to 125"),
        ("LEVERAGE", "200", "from 1 to 125"),
        ("LEVERAGE", "lots", "use a number"),
    ],
)
def test_a_bad_leverage_or_margin_mode_names_the_key_the_variable_and_what_is_allowed(
    name: str, value: str, says: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(None, {f"TRADECORE_TRADING__SIZING__{name}": value})
    message = str(refused.value)
    assert f"trading.sizing.{name.lower()}" in message
    assert f"TRADECORE_TRADING__SIZING__{name}" in message
    assert says in message


def test_binance_is_refused_a_fractional_leverage_bybit_takes_it() -> None:
    env = {"TRADECORE_TRADING__SIZING__LEVERAGE": "2.5", "TRADECORE_MODE": "demo"}
    with pytest.raises(ConfigError, match="whole number"):
        check_venue_fit(load_config(None, {**env, "TRADECORE_VENUE": "binance"}))
    check_venue_fit(load_config(None, {**env, "TRADECORE_VENUE": "bybit"}))


def test_telegram_user_ids_are_read_from_file_or_environment_and_refused_when_not_ids(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[alerts]\ntelegram_user_ids = [123456789, "987654321"]\n')
    assert load_config(path, {}).alerts.telegram_user_ids == ("123456789", "987654321")
    by_env = load_config(None, {"TRADECORE_ALERTS__TELEGRAM_USER_IDS": "[42]"})
    assert by_env.alerts.telegram_user_ids == ("42",)
    assert load_config(None, {}).alerts.telegram_user_ids == ()  # default: every member
    message = refusal(tmp_path, '[alerts]\ntelegram_user_ids = ["@operator"]\n')
    assert "alerts.telegram_user_ids" in message and "Telegram user ids" in message
