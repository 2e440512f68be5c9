"""tradecore: a signal-driven crypto futures trading library (Binance USDⓈ-M, Bybit linear).

The domain (`tradecore.domain`) is pure and importable from notebooks; ports
(`tradecore.ports`) are the protocols the application (`tradecore.app`) depends on;
adapters (`tradecore.adapters`) implement them.
"""

__version__ = "0.1.0"
