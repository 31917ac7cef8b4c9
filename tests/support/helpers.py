"""Small helpers shared by the tests (not fixtures)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from lxml import etree

from flows.returns import report as returnflow
from relais.compose import Runtime
from relais.runner import run_once


def drop(rt: Runtime, partner: str, name: str, data: bytes) -> Path:
    """Put a complete file into a partner's inbox, old enough to be taken."""
    inbox = rt.settings.inbox(partner)
    inbox.mkdir(parents=True, exist_ok=True)
    path = inbox / name
    path.write_bytes(data)
    old = time.time() - 60
    os.utime(path, (old, old))
    return path


def run(rt: Runtime):
    return run_once(rt)


def return_flow(rt: Runtime, flow) -> etree._Element:
    """The return flow written to the partner's out folder, validated against Relais's XSD."""
    path = rt.settings.outbox_dir(flow.partner) / returnflow.file_name(flow)
    data = path.read_bytes()
    returnflow.validate(data)
    return etree.fromstring(data)


def rf_error_codes(root: etree._Element) -> list[str]:
    return root.xpath("//LigneErreurDetail/CodeErreur/text()")
