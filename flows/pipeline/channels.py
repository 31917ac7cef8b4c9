"""Channels: the interface every connector implements, and the registry the core asks.

A channel is one way files come in and return flows go out (``folder``,
``sftp``, ``as2``; an HTTP "mode API" or Peppol AS4 next). The core never knows
how a channel works: it asks the registry where a partner's return flow goes
(an `Address`) and, to carry out an outbox row, for that channel's `Sender`,
the way httpx hides its transports behind ``BaseTransport``. Outbox rows keep
the address as typed columns (kind, channel, partner, destination), never a
URL-like string to parse.

Coming in, every channel goes through one function, `flows.pipeline.intake.ingest`
(one idempotence rule, archive first): a polled channel calls it from its
`PollingChannel.poll`, a pushed one (a server) from its request handler.

Adding a channel: a package under ``connectors/`` implementing `Channel` (and
`PollingChannel` when it polls), registered in ``relais/compose.py``; see
``docs/architecture.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Protocol, runtime_checkable

from flows.domain.model import Flow
from flows.domain.outbox import Address, OutboxItem, OutboxKind

__all__ = ["Address", "Channel", "Channels", "NoReturnChannel", "OutboxKind", "PollingChannel", "Sender"]


class Sender(Protocol):
    """Sends the rows of one channel and partner, over one connection opened by ``__enter__``.

    ``send`` raises on failure; the caller records it and retries the row later.
    """

    def __enter__(self) -> Sender: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def send(self, item: OutboxItem, data: bytes) -> None: ...


@runtime_checkable
class Channel(Protocol):
    """One channel's outbound side."""

    #: The name recorded on flows and outbox rows (``flows.domain.model.Channel`` values).
    name: str
    #: True when a partner's rows must go out in order, the first failure holding back the rest.
    ordered: bool
    # Optional: ``durable_on_exit = True`` when the sender makes its rows durable only when it exits cleanly
    # (the folder channel: one sync for a queue); the dispatcher then sends a queue through one sender and marks
    # its rows sent after the exit.

    def return_address(self, partner_id: str, file_name: str) -> Address | None:
        """Where this partner's return flows go by this channel, None when the partner has none here."""
        ...

    def sender(self, kind: OutboxKind, partner_id: str | None) -> Sender:
        """The sender of this channel's rows of `kind` for `partner_id` (raises when it cannot be built)."""
        ...


@runtime_checkable
class PollingChannel(Protocol):
    """A channel whose files are fetched by Relais (a folder scan, an SFTP poll)."""

    name: str

    def poll(self, *, only_due: bool = False, held: frozenset[str] = frozenset()) -> list[Flow]:
        """Take what is waiting (through `flows.pipeline.intake.ingest`); partners in `held` are left alone.
        With `only_due`, a partner is polled only once its own poll interval has passed."""
        ...


class NoReturnChannel(LookupError):
    """No registered channel takes this partner's return flows."""


class Channels(Mapping[str, Channel]):
    """The registered channels by name; return flows go by the first one that has an address.

    >>> class Out:
    ...     name, ordered = "folder", False
    ...     def return_address(self, partner_id, file_name):
    ...         return Address("folder", partner_id, f"/out/{partner_id}/{file_name}")
    ...     def sender(self, kind, partner_id): raise NotImplementedError
    >>> Channels([Out()]).return_address("op-a", "CR.xml")
    Address(channel='folder', partner='op-a', destination='/out/op-a/CR.xml')
    """

    def __init__(self, channels: Iterable[Channel], polling: Sequence[PollingChannel] = ()) -> None:
        self._order = list(channels)
        self._by_name = {c.name: c for c in self._order}
        self.polling = list(polling)

    def __getitem__(self, name: str) -> Channel:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def return_address(self, partner_id: str, file_name: str) -> Address:
        for channel in self._order:
            if (address := channel.return_address(partner_id, file_name)) is not None:
                return address
        raise NoReturnChannel(f"no channel takes the return flows of partner {partner_id}")
