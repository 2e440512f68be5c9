"""The operator's read-only commands over Telegram: `getUpdates` long polling, answers by
`sendMessage`, in the configured chat only.

Bot API facts used here (https://core.telegram.org/bots/api):

- `getUpdates(offset, limit, timeout, allowed_updates)` returns an array of `Update`; an update
  is confirmed once `getUpdates` is called with an offset higher than its `update_id`; a
  positive `timeout` is long polling (#getupdates). It does not work while a webhook is set,
  nor beside another poller on the same token: both answer 409 Conflict.
- Every answer is `{"ok": …, "result": …}` or `{"ok": false, "error_code", "description",
  "parameters"}`; a 429's `parameters.retry_after` is the seconds to wait (#making-requests,
  #responseparameters).
- A `Message` has `date` (Unix time), `chat` (`id`, `type`) and `text` (#message, #chat);
  `sendMessage`'s text is 1-4096 characters (#sendmessage). In groups a command may read
  `/status@botname`.

A message from any other chat is not answered and is journaled (`operator_message_ignored`,
WARNING, with the chat's id and the command, never the token). Anyone can write to a bot, so a
stranger's flood is journaled and logged once per chat per `IGNORED_QUIET_SECONDS` (10 min),
the next event carrying `ignored_since_last`, the count it stood for. With `allowed_user_ids`
set (a group chat), only those members are answered; anyone else's command is ignored the same
way (`reason: "user not allowed"`). A command sent well before this
loop started (`STALE_SECONDS`, e.g. while the bot was down) is confirmed but not answered.
The loop runs in its own task and never raises: a 429 waits `retry_after`, a 5xx, 409, a
network failure or an answer that is not the API's waits a backoff (1 s doubling to 60 s),
each logged with the token redacted; an answer refused by flood control is sent once more
after its `retry_after` (up to 30 s). Nothing here touches trading.
"""

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from loguru import logger

from tradecore.adapters.alerts.channels import (
    SecretPathTransport,
    TelegramChannel,
    telegram_retry_after,
)
from tradecore.domain.events import Event, EventType
from tradecore.ports.alerts import OperatorQueries
from tradecore.ports.clock import Clock
from tradecore.ports.events import EventSink

POLL_SECONDS = 30  # long polling: Telegram holds the request this long when nothing comes
STALE_SECONDS = 60
MAX_BACKOFF_SECONDS = 60.0
ANSWER_WAIT_SECONDS = 30.0  # an answer is sent again after a flood wait up to this long
IGNORED_QUIET_SECONDS = 600  # one event per foreign chat (or user) per this long
_IGNORED_KEYS_KEPT = 1024
_MESSAGE_LIMIT = 4096


class TelegramCommands:
    """Answers `/status`, `/positions`, `/pnl`, `/health` in `channel`'s chat from `queries`."""

    def __init__(
        self,
        channel: TelegramChannel,
        queries: OperatorQueries,
        *,
        events: EventSink | None,
        clock: Clock,
        poll_seconds: int = POLL_SECONDS,
        client: httpx.AsyncClient | None = None,
        allowed_user_ids: frozenset[str] | None = None,
    ) -> None:
        self._channel = channel
        self._allowed_users = allowed_user_ids
        # per ignored chat or user: when it was last journaled, and how many since
        self._ignored_at: dict[str, datetime] = {}
        self._ignored_count: dict[str, int] = {}
        self._queries = queries
        self._events = events
        self._clock = clock
        self._poll_seconds = poll_seconds
        self._since = clock.now() - timedelta(seconds=STALE_SECONDS)
        self._offset: int | None = None
        self._failures = 0
        self._task: asyncio.Task[None] | None = None
        # the long poll's own wait plus room for the answer to travel
        self._client = client or httpx.AsyncClient(
            transport=SecretPathTransport(), timeout=poll_seconds + 15
        )

    def __repr__(self) -> str:
        return f"TelegramCommands(chat_id={self._channel.chat_id!r})"

    def start(self) -> None:
        """Poll in the background until `aclose`."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self.run(), name="tradecore-telegram-commands"
            )

    async def run(self) -> None:
        while True:
            wait = await self.poll_once()
            if wait > 0:
                await self._clock.sleep(wait)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._client.aclose()

    async def poll_once(self) -> float:
        """One `getUpdates`: every message it brings handled; the seconds to wait before the
        next one (0 when the API answered)."""
        body: dict[str, Any] = {"timeout": self._poll_seconds, "allowed_updates": ["message"]}
        if self._offset is not None:
            body["offset"] = self._offset
        try:
            response = await self._client.send(self._channel.call("getUpdates", body))
        except Exception as exc:  # the network: wait and try again
            return self._failed(f"{type(exc).__name__}: {self._channel.redact(str(exc))}", None)
        result = _result(response)
        if result is None:
            reason = f"HTTP {response.status_code}: {self._channel.redact(response.text[:300])}"
            return self._failed(reason, telegram_retry_after(response))
        self._failures = 0
        for update in result:
            if not isinstance(update, dict):
                continue
            update_id = update.get("update_id")
            if isinstance(update_id, int):
                self._offset = max(self._offset or 0, update_id + 1)
            message = update.get("message")
            if isinstance(message, dict):
                await self._handle(message)
        return 0.0

    def _failed(self, reason: str, asked: float | None) -> float:
        self._failures += 1
        backoff = min(MAX_BACKOFF_SECONDS, 2.0 ** (self._failures - 1))
        wait = max(backoff, asked or 0.0)
        logger.warning(
            "telegram commands: getUpdates failed ({}); trying again in {:.0f} s", reason, wait
        )
        return wait

    async def _handle(self, message: dict[str, Any]) -> None:
        chat = _mapping(message.get("chat"))
        chat_id = str(chat.get("id"))
        text = message.get("text")
        command = _command(text) if isinstance(text, str) else None
        if chat_id != self._channel.chat_id:
            self._ignored(chat_id, str(chat.get("type", "")), command, message, "foreign chat")
            return
        sender_id = str(_mapping(message.get("from")).get("id", ""))
        if self._allowed_users is not None and sender_id not in self._allowed_users:
            if command is not None:
                self._ignored(
                    chat_id, str(chat.get("type", "")), command, message, "user not allowed"
                )
            return
        if command is None or _sent_at(message) < self._since:
            return
        try:
            reply = await self._queries.answer(command)
        except Exception as exc:  # the queries never raise; an answer is still owed
            logger.exception("telegram commands: {} could not be answered", command)
            reply = f"{command}: cannot answer now ({type(exc).__name__}); trading goes on"
        await self._reply(command, reply)

    async def _reply(self, command: str, text: str) -> None:
        """Send the answer; once more after a short flood wait (429), else log why not."""
        body = {"chat_id": self._channel.chat_id, "text": text[:_MESSAGE_LIMIT]}
        for attempt in (1, 2):
            try:
                response = await self._client.send(self._channel.call("sendMessage", body))
            except Exception as exc:
                reason = f"{type(exc).__name__}: {self._channel.redact(str(exc))}"
                break
            if response.is_success:
                logger.info("telegram commands: answered {}", command)
                return
            reason = f"HTTP {response.status_code}: {self._channel.redact(response.text[:300])}"
            wait = telegram_retry_after(response)
            if attempt == 2 or wait is None or wait > ANSWER_WAIT_SECONDS:
                break
            await self._clock.sleep(wait)
        logger.warning("telegram commands: no answer to {} delivered ({})", command, reason)

    def _ignored(
        self,
        chat_id: str,
        chat_type: str,
        command: str | None,
        message: dict[str, Any],
        reason: str,
    ) -> None:
        sender = _mapping(message.get("from"))
        from_id = str(sender.get("id", ""))
        key = chat_id if reason == "foreign chat" else f"{chat_id}/{from_id}"
        now = self._clock.now()
        last = self._ignored_at.get(key)
        if last is not None and now - last < timedelta(seconds=IGNORED_QUIET_SECONDS):
            self._ignored_count[key] = self._ignored_count.get(key, 0) + 1
            return
        if len(self._ignored_at) >= _IGNORED_KEYS_KEPT:  # many strangers: forget the quiet ones
            quiet = now - timedelta(seconds=IGNORED_QUIET_SECONDS)
            for stale in [k for k, at in self._ignored_at.items() if at < quiet]:
                del self._ignored_at[stale]
                self._ignored_count.pop(stale, None)
        self._ignored_at[key] = now
        since_last = self._ignored_count.pop(key, 0)
        logger.warning(
            "telegram commands: a message from chat {} (user {}) ignored: {}; {} more since the "
            "last such line",
            chat_id,
            from_id,
            reason,
            since_last,
        )
        if self._events is None:
            return
        self._events.emit(
            Event(
                id=uuid.uuid4(),
                type=EventType.OPERATOR_MESSAGE_IGNORED,
                created_at=self._clock.now(),
                data={
                    "channel": "telegram",
                    "chat_id": chat_id,
                    "chat_type": chat_type,
                    "from_id": from_id,
                    "command": command,
                    "reason": reason,
                    "ignored_since_last": since_last,
                },
            )
        )


def _result(response: httpx.Response) -> list[Any] | None:
    """The `result` array of a successful answer, else None."""
    if not response.is_success:
        return None
    try:
        payload = response.json()
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("ok") is not True:
        return None
    result = payload.get("result")
    return result if isinstance(result, list) else None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _command(text: str) -> str | None:
    """`/status@tradecore_bot now` -> `/status`; None when the text is no command."""
    if not text.startswith("/"):
        return None
    word = text.split(maxsplit=1)[0]
    return word.split("@", 1)[0].lower()[:64]


def _sent_at(message: dict[str, Any]) -> datetime:
    date = message.get("date")
    if isinstance(date, int) and not isinstance(date, bool):
        return datetime.fromtimestamp(date, UTC)
    return datetime.max.replace(tzinfo=UTC)  # no date: take it as new
