"""Where an alert goes: the request each channel sends. Secrets stay out of reprs and logs."""

import html
from typing import Any

import attrs
import httpx

from tradecore.ports.alerts import Alert

# httpx logs every request's URL at INFO. A Telegram token lives in the URL path, so the
# request the client sees (and logs) carries this placeholder; `SecretPathTransport` swaps the
# real URL in only on the way to the socket.
REDACTED = "***"
SECRET_URL = "tradecore.secret_url"

_ICONS = {"DEBUG": "", "INFO": "ℹ️", "WARNING": "⚠️", "ERROR": "❗", "CRITICAL": "🚨"}


def _redactor(*secrets: str) -> Any:
    def redact(text: str) -> str:
        for secret in secrets:
            if secret:
                text = text.replace(secret, REDACTED)
        return text

    return redact


@attrs.frozen(kw_only=True)
class TelegramChannel:
    """The Bot API's sendMessage to one chat. `token` never appears in a repr or a log line."""

    token: str = attrs.field(repr=False)
    chat_id: str
    api: str = "https://api.telegram.org"
    name: str = "telegram"

    def request(self, alert: Alert) -> httpx.Request:
        severity = alert.severity.name
        text = (
            f"{_ICONS.get(severity, '')} <b>{html.escape(severity)}: {html.escape(alert.title)}"
            f"</b>\n{html.escape(alert.text)}"
        )
        # sendMessage's text is 1-4096 characters (https://core.telegram.org/bots/api#sendmessage)
        return self.call(
            "sendMessage", {"chat_id": self.chat_id, "text": text[:4096], "parse_mode": "HTML"}
        )

    def call(self, method: str, body: dict[str, Any]) -> httpx.Request:
        """A Bot API request (`https://api.telegram.org/bot<token>/METHOD`, JSON body) whose
        visible URL holds `***` instead of the token."""
        real = f"{self.api}/bot{self.token}/{method}"
        shown = f"{self.api}/bot{REDACTED}/{method}"
        return httpx.Request("POST", shown, json=body, extensions={SECRET_URL: real})

    def retry_after(self, response: httpx.Response) -> float | None:
        """The seconds flood control asks to wait (HTTP 429), else None.

        An unsuccessful answer is `{"ok": false, "error_code", "description", "parameters"}`;
        `parameters.retry_after` is "the number of seconds left to wait before the request can
        be repeated" (https://core.telegram.org/bots/api#making-requests, #responseparameters).
        """
        return telegram_retry_after(response)

    def redact(self, text: str) -> str:
        return str(_redactor(self.token)(text))


def telegram_retry_after(response: httpx.Response) -> float | None:
    if response.status_code != 429:
        return None
    try:
        seconds = response.json().get("parameters", {}).get("retry_after")
    except (ValueError, AttributeError):
        seconds = None
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0:
        return float(seconds)
    return _retry_after_header(response)


def _retry_after_header(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


@attrs.frozen(kw_only=True)
class WebhookChannel:
    """A JSON POST of the alert to `url` (Slack-style relays, PagerDuty bridges, your own)."""

    url: str = attrs.field(repr=False)  # webhook URLs often embed a secret path or query
    name: str = "webhook"

    def request(self, alert: Alert) -> httpx.Request:
        body = {
            "key": alert.key,
            "severity": alert.severity.name,
            "title": alert.title,
            "text": alert.text,
        }
        return httpx.Request("POST", _shown(self.url), json=body, extensions={SECRET_URL: self.url})

    def retry_after(self, response: httpx.Response) -> float | None:
        """A 429's `Retry-After` in seconds (RFC 9110 §10.2.3), else None."""
        return _retry_after_header(response) if response.status_code == 429 else None

    def redact(self, text: str) -> str:
        url = httpx.URL(self.url)
        path = url.path if len(url.path) > 1 else ""
        return str(_redactor(self.url, path, url.query.decode())(text))


def _shown(url: str) -> str:
    parsed = httpx.URL(url)
    return str(parsed.copy_with(path="/" + REDACTED, query=None))


class SecretPathTransport(httpx.AsyncBaseTransport):
    """Sends a request to the URL stashed in its extensions, so only the redacted one is logged."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        real = request.extensions.get(SECRET_URL)
        if real is not None:
            extensions = {k: v for k, v in request.extensions.items() if k != SECRET_URL}
            request = httpx.Request(
                request.method,
                real,
                headers=request.headers,
                content=request.content,
                extensions=extensions,
            )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
