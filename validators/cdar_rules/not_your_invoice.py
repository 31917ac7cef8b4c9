"""RLS-C03: the sender of the message may not set this invoice's statuses.

Who may send what (docs/reform.md §2):

- the buyer's statuses (202..208, 210, 211, `flows.domain.cdar.BUYER_STATUSES`): only the buyer's platform,
  i.e. a partner that is a platform of the reform (its partner file's ``platform_id``), which the message
  names as its sender (``SenderTradeParty`` or ``IssuerTradeParty`` ``GlobalID@schemeID=0238``), and to which
  the invoice was delivered (a delivery of the invoice addressed to that partner: the platform it was issued
  to; for an invoice Relais made available itself, the partner whose id is the recipient's SIRET, the EDI
  rule of `relais.compose`) **[choice]**;
- the seller's statuses (209, 212, `flows.domain.cdar.SELLER_STATUSES`): only the partner that deposited
  the invoice.

A message that names a platform other than its partner's registration number is refused on every line.

>>> import datetime as dt
>>> from flows.domain.cdar import StatusLine
>>> from flows.domain.frameworks import Framework
>>> from flows.domain.lifecycle import InvoiceStatus
>>> from flows.store.cdar import CdarTarget
>>> from validators.cdar_rules import Sender
>>> inv = CdarTarget("CPP1-1", "F-1", "12345678900011", None, InvoiceStatus.EN_COURS_ACHEMINEMENT,
...                  Framework.A1, "seller", frozenset({"pf"}), False)
>>> print(check(StatusLine("F-1", "205"), 1, inv, Sender("pf", "0042", "0042")))
None
>>> check(StatusLine("F-1", "205"), 1, inv, Sender("other", "0043", "0043")).rule
'RLS-C03'
>>> check(StatusLine("F-1", "212"), 1, inv, Sender("pf", "0042", "0042")).rule  # the seller's status
'RLS-C03'
>>> print(check(StatusLine("F-1", "212"), 1, inv, Sender("seller")))
None
"""

from __future__ import annotations

from flows.domain.cdar import SELLER_STATUSES, StatusLine
from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage
from flows.store.cdar import CdarTarget
from validators.cdar_rules import Sender, location

RULE = Rule(
    "RLS-C03",
    Flag.FATAL,
    "The sender of the CDAR message may not set this invoice's statuses",
    "L'émetteur du message CDAR n'a pas qualité pour changer le statut de cette facture",
    category=Category.LIFECYCLE,
    stage=Stage.STORE,
)


def why_not(line: StatusLine, target: CdarTarget, sender: Sender) -> str | None:
    """Why `sender` may not set `line`'s status on `target` (None: it may)."""
    if sender.platform_id and sender.named and sender.named != sender.platform_id:
        return f"the message names platform {sender.named}, partner {sender.partner} is platform {sender.platform_id}"
    if line.status in SELLER_STATUSES:
        if sender.partner != target.depositor:
            return f"status {line.status} is the seller's: only the invoice's depositor may send it"
        return None
    if not sender.platform_id:
        return f"status {line.status} is the buyer's platform's: partner {sender.partner} is no platform"
    if sender.named != sender.platform_id:
        return (
            f"status {line.status} is the buyer's platform's: the message does not name platform {sender.platform_id}"
        )
    if sender.partner not in target.delivered_to:
        return f"status {line.status} is the buyer's platform's: the invoice was not issued to {sender.partner}"
    return None


def check(line: StatusLine, position: int, target: CdarTarget, sender: Sender) -> ValidationError | None:
    why = why_not(line, target, sender)
    return RULE.error(location(line, position), why) if why else None
