"""RLS-C06: the issuer sent a message with this id already: it is not applied again.

A message is identified by its id (``ExchangedDocument/ID``) and its issuer (`flows.store.cdar`: unique per
direction, issuer, id). The first one received is applied; one with the same id from the same issuer,
whether its bytes are the same or not, changes nothing and is answered with the first one's outcome and
findings (its flow closes as the first one's did, with this finding added, a warning).

>>> print(check("M-1", "0238:0042", None))
None
>>> check("M-1", "0238:0042", "CPP0000000007").rule
'RLS-C06'
"""

from __future__ import annotations

from flows.domain.model import Category, Flag, ValidationError
from flows.domain.rule import Rule, Stage

RULE = Rule(
    "RLS-C06",
    Flag.WARNING,
    "This CDAR message was received already (same issuer, same id): it is not applied again",
    "Ce message CDAR a déjà été reçu (même émetteur, même identifiant) : il n'est pas appliqué une seconde fois",
    category=Category.LIFECYCLE,
    stage=Stage.STORE,
)


def check(message_id: str, issuer: str, first_flow: str | None) -> ValidationError | None:
    """`first_flow`: the flow that brought the recorded message with this id (None: not received before)."""
    if first_flow is None:
        return None
    return RULE.error("/", f"message {message_id} from {issuer}, first received in flow {first_flow}")
