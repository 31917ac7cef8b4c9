"""The rules of a received CDAR lifecycle message (RLS-C..), one module each (docs/reform.md §2).

`flows.pipeline.cdar_in` runs them: `invalid_message` on the flow (the official XSD and BR-FR-CDV findings
make it refused as a whole), then, line by line, `status_not_applied`, `unknown_invoice`, `not_your_invoice`,
`move_not_allowed`; `replayed` on a message id its issuer sent already. A line's rule is its refusal; the
message's answer lists them. `Sender` says who sent the message: the partner whose channel brought it, its
registration number as a platform, and the platform the message names.
"""

from __future__ import annotations

import dataclasses

from flows.domain.cdar import Message, Scheme, StatusLine

__all__ = ["Sender", "location", "sending_platform"]


@dataclasses.dataclass(frozen=True, slots=True)
class Sender:
    """Who sent a received CDAR message.

    `partner`: the partner whose channel (folder, SFTP, AS2, API) brought the flow, authenticated by that
    channel; `platform_id`: its registration number when it is a platform of the reform (its partner file's
    ``platform_id``); `named`: the platform the message says sent it (`sending_platform`), None when it
    names none."""

    partner: str
    platform_id: str | None = None
    named: str | None = None


def sending_platform(message: Message) -> str | None:
    """The platform (registration number, ``GlobalID@schemeID=0238``) a message says it comes from: its
    sender's, else its issuer's (a 305 message's issuer is a platform too); None when neither is a platform.

    >>> from flows.domain.cdar import Party
    >>> import datetime as dt
    >>> m = Message("M", dt.datetime(2026, 1, 1), Party("WK", "0042", "0238"), Party("BY", "123456789", "0002"),
    ...             Party("WK", "9998", "0238"), ())
    >>> sending_platform(m)
    '0042'
    """
    for party in (message.sender, message.issuer):
        if party.global_id and str(party.scheme) == Scheme.PLATFORM:
            return party.global_id
    return None


def location(line: StatusLine, position: int) -> str:
    """Where a line's finding points: its position in the message and the invoice it names.

    >>> location(StatusLine("F-1", "205"), 2)
    'ligne 2, facture F-1'
    """
    return f"ligne {position}, facture {line.invoice_number}"
