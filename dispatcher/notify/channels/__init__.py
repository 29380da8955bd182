"""Channel kinds: where a rendered group of messages goes. One module per kind, registered by name.

A channel is built from a notification_channels row (kind, name, settings) and sends one Outgoing
(the messages of one or more outbox rows, grouped) per call, answering with a Delivery: sent, or
why not and whether trying again can help. Secrets in settings are references (env:NAME,
file:/path) resolved when sending; every error text goes through `scrub` so a resolved secret can
never reach a row, a log line or the terminal.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dispatcher.config import SecretError, resolve_secret
from dispatcher.errors import NightshiftError
from dispatcher.notify.render import Message, Renderer

BUILTIN_MODULES = (
    "dispatcher.notify.channels.log",
    "dispatcher.notify.channels.slack",
    "dispatcher.notify.channels.webhook",
    "dispatcher.notify.channels.email",
)

REGISTRY: dict[str, type[Channel]] = {}


class ChannelError(NightshiftError):
    """A channel whose kind or settings cannot work (unknown kind, a missing setting, a plain secret)."""


@dataclass(frozen=True)
class Outgoing:
    """What one send delivers: the messages of the outbox rows grouped into it."""

    channel: str
    messages: Sequence[Message]
    digest: str | None = None  # 'hourly' or 'daily' for a digest channel's period message
    delivery_id: str = ""      # stable across retries of the same rows: "<first id>-<attempt>"

    @property
    def heading(self) -> str:
        count = len(self.messages)
        if self.digest:
            return f"Nightshift {self.digest} digest: {count} update{'' if count == 1 else 's'}"
        if count == 1:
            return self.messages[0].title
        return f"Nightshift: {count} updates"


@dataclass(frozen=True)
class Delivery:
    """What sending answered. ok: delivered. Otherwise `retry` says whether the same send can succeed
    later (a 5xx, a timeout, a 429 after `retry_after` seconds) or never will (404, 410, bad URL)."""

    ok: bool
    response: str = ""
    error: str | None = None
    retry: bool = False
    retry_after: float | None = None

    @classmethod
    def failed(cls, error: str, *, retry: bool, response: str = "",
               retry_after: float | None = None) -> Delivery:
        return cls(ok=False, response=response, error=error, retry=retry, retry_after=retry_after)


@dataclass
class Channel:
    """Base of the channel kinds. Subclasses set `kind`, and implement check() and send()."""

    kind: ClassVar[str] = ""
    secret_settings: ClassVar[tuple[str, ...]] = ()  # settings that must be references, never values

    name: str
    settings: Mapping[str, Any]
    renderer: Renderer
    secrets: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def check(self) -> None:
        """Raise ChannelError when the settings cannot work (called by `channels add` and the sender)."""
        for key in self.secret_settings:
            value = self.settings.get(key)
            if value is not None and not is_reference(value):
                raise ChannelError(f"channel {self.name}: setting {key} must be a secret reference "
                                   "(env:NAME or file:/path), not the secret itself")

    async def send(self, outgoing: Outgoing) -> Delivery:
        raise NotImplementedError

    async def close(self) -> None:
        """Release connections the channel keeps between sends."""

    def secret(self, key: str) -> str:
        """The value the reference in setting `key` points to; remembered for scrub()."""
        reference = self.settings.get(key)
        if not isinstance(reference, str):
            raise ChannelError(f"channel {self.name}: setting {key} is missing")
        if not is_reference(reference):
            value = reference  # settings that may be plain (a webhook URL that is no secret)
        else:
            try:
                value = resolve_secret(reference)
            except SecretError as exc:
                raise ChannelError(f"channel {self.name}: {exc}") from None
        if is_reference(reference) and value:
            self.secrets[value] = f"<{key} from {reference}>"
        return value

    def scrubbed(self, delivery: Delivery) -> Delivery:
        """The delivery with secrets scrubbed from its texts."""
        if delivery.ok:
            return Delivery(ok=True, response=self.scrub(delivery.response))
        return Delivery.failed(self.scrub(delivery.error or ""), retry=delivery.retry,
                               response=self.scrub(delivery.response), retry_after=delivery.retry_after)

    def scrub(self, text: str) -> str:
        """Text with every resolved secret replaced by the reference it came from."""
        for value, placeholder in self.secrets.items():
            text = text.replace(value, placeholder)
        return text


def is_reference(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("env:", "file:")) and len(value) > 5


def register(kind: str) -> Callable[[type[Channel]], type[Channel]]:
    def add(cls: type[Channel]) -> type[Channel]:
        cls.kind = kind
        REGISTRY[kind] = cls
        return cls

    return add


def kinds() -> list[str]:
    _load_builtins()
    return sorted(REGISTRY)


def build(kind: str, name: str, settings: Mapping[str, Any], renderer: Renderer) -> Channel:
    """The channel of a notification_channels row; ChannelError for an unknown kind or bad settings."""
    _load_builtins()
    cls = REGISTRY.get(kind)
    if cls is None:
        raise ChannelError(f"channel {name}: unknown kind {kind!r} (known: {', '.join(sorted(REGISTRY))})")
    channel = cls(name=name, settings=dict(settings or {}), renderer=renderer)
    channel.check()
    return channel


def _load_builtins() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
