"""The store: one module per aggregate, behind one surface (``from flows.store import Store``).

``core`` opens the store and manages its schema (the Alembic migrations in ``migrations/``); ``tables``
is the schema; ``records`` the values the store returns besides those of ``flows.domain`` and the
row <-> value converters; every other module is one mixin of queries that ``Store`` combines
(``flows``, ``invoices``, ``outbox``, ``history``, ``as2``, ``directory``, ``audit``, ``api``,
``web``, ``sessions``, ``partners``, ``dashboard``, ``circuits``). Modules of this package import
each other by their own names, never from this surface.
"""

from flows.domain.outbox import OutboxItem, OutboxStatus
from flows.domain.structures import Directory, Structure
from flows.store.audit import ArchiveRef
from flows.store.core import MIGRATIONS, SchemaOutdated, Store, head_revision
from flows.store.history import StatusChanged
from flows.store.records import PAGE, As2Message, As2Status
from flows.store.sessions import WebSession

__all__ = [
    "MIGRATIONS",
    "PAGE",
    "ArchiveRef",
    "As2Message",
    "As2Status",
    "Directory",
    "OutboxItem",
    "OutboxStatus",
    "SchemaOutdated",
    "StatusChanged",
    "Store",
    "Structure",
    "WebSession",
    "head_revision",
]
