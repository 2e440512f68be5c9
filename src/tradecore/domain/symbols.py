"""One normalisation between venue symbols (`BTC/USDT:USDT`) and plain ones (`BTCUSDT`)."""

from tradecore.domain.errors import DomainError

QUOTES = ("USDT", "USDC")


def to_plain(symbol: str) -> str:
    """`BTC/USDT:USDT` -> `BTCUSDT`; a plain symbol is returned upper-cased."""
    if not isinstance(symbol, str) or not symbol.strip():
        raise DomainError(f"symbol must be a non-empty string, got {symbol!r}")
    cleaned = symbol.strip().upper()
    if "/" in cleaned:
        base, _, rest = cleaned.partition("/")
        quote = rest.split(":", 1)[0]
        if not (base.isalnum() and quote.isalnum()):
            raise DomainError(
                f"symbol {symbol!r} is not of the form BASE/QUOTE:SETTLE "
                "with letters and digits only"
            )
        return f"{base}{quote}"
    if not cleaned.isalnum():
        raise DomainError(f"symbol {symbol!r} may contain only letters and digits")
    return cleaned


def to_venue(symbol: str) -> str:
    """`BTCUSDT` -> `BTC/USDT:USDT` (linear perpetual, settled in the quote)."""
    plain = to_plain(symbol)
    for quote in QUOTES:
        if plain.endswith(quote) and len(plain) > len(quote):
            base = plain[: -len(quote)]
            return f"{base}/{quote}:{quote}"
    raise DomainError(
        f"symbol {symbol!r} does not end in a supported quote currency ({', '.join(QUOTES)})"
    )
