"""A running Relais for end-to-end tests of the billing circuits: a RELAIS_HOME with the sample directory and
the circuits' actors imported by the CLI, a `relais run --watch` process (killed and restarted at will),
a `relais api serve` process, actors' tokens made by `relais api token create`, and the store read (and,
for deadlines, written) from the test.

Pieces are dropped as partners drop them (a complete file appears at once in the partner's inbox) and
waited for with `wait_until`: nothing sleeps.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from unittest import mock

import httpx
import sqlalchemy as sa

from flows.domain.lifecycle import FINAL_FLOW_STATUSES, InvoiceStatus
from flows.domain.model import Flow, Invoice
from flows.store import Store
from flows.store import tables as t
from relais import generate as gen
from relais.generate.circuits import Actor, actors_csv
from relais.settings import Settings
from tests.support import relais_cli
from tests.support.waiting import wait_until

WAIT = 90.0  # seconds: a hang, not a slow machine (a flow takes about a second on 2 idle cores)


class Hub:
    def __init__(self, base: Path, extra: Mapping[str, str] | None = None) -> None:
        self.base, self.home, self.extra = base, base / "home", dict(extra or {})
        self.run_proc: subprocess.Popen | None = None
        self.api_proc: subprocess.Popen | None = None
        self.url = ""
        self._tokens: dict[str, str] = {}
        self._actors: dict[str, Actor] = {}
        self.dropped: list[tuple[str, str]] = []  # (partner, file name), in order
        directory = base / "annuaire.json"
        directory.write_text(json.dumps(gen.directory_document(gen.sample_directory(), "e2e")))
        self.cli("directory", "import", str(directory))
        with mock.patch.dict(os.environ, self.extra):
            settings = Settings.from_env(self.home)
        self.store = Store.open(settings.database_url, schema=settings.database_schema, migrate=False)

    # ---- processes ----------------------------------------------------------------------------------

    def cli(self, *args: str) -> str:
        done = relais_cli.relais(self.home, *args, extra=self.extra, timeout=300)
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
        return done.stdout

    def start(self) -> Hub:
        self.start_run()
        self.api_proc, self.url = relais_cli.start_api(self.home, self.base / "api.log", self.extra)
        return self

    def start_run(self) -> None:
        assert self.run_proc is None or self.run_proc.poll() is not None
        self.run_proc = relais_cli.start(
            self.home, "run", "--watch", "--interval", "0.2", "-q", extra=self.extra, log=self.base / "run.log"
        )

    def kill_run(self) -> None:
        """SIGKILL `relais run` and its validation workers, at once."""
        assert self.run_proc is not None
        relais_cli.kill9(self.run_proc)

    def close(self) -> None:
        for proc in (self.run_proc, self.api_proc):
            if proc is not None:
                relais_cli.stop(proc)
        self.store.close()

    # ---- actors and tokens ---------------------------------------------------------------------------

    def actors(self, actors: Iterable[Actor]) -> None:
        """Register these actors (besides those already registered): `relais actors import acteurs.csv`."""
        self._actors.update({(a.siret + a.role): a for a in actors})
        path = self.base / "acteurs.csv"
        path.write_text(actors_csv(list(self._actors.values())), encoding="utf-8")
        self.cli("actors", "import", str(path))

    def token(self, siret: str) -> str:
        if siret not in self._tokens:
            self._tokens[siret] = self.cli("api", "token", "create", "--siret", siret).strip().splitlines()[-1]
        return self._tokens[siret]

    def client(self, siret: str) -> httpx.Client:
        """An HTTP client of the API with `siret`'s token."""
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token(siret)}"}, timeout=60)

    # ---- drops and what became of them ------------------------------------------------------------------

    def drop(self, partner: str, name: str, data: bytes) -> None:
        """`data` appears complete in `partner`'s inbox (written beside it, then renamed in)."""
        inbox = self.home / "dropzones" / partner / "in"
        inbox.mkdir(parents=True, exist_ok=True)
        part = self.base / f"{partner}-{name}.part"
        part.write_bytes(data)
        os.replace(part, inbox / name)
        self.dropped.append((partner, name))

    def processed(self, partner: str, name: str, data: bytes, timeout: float = WAIT) -> Flow:
        """The flow of a dropped file, once final."""
        sha = hashlib.sha256(data).hexdigest()

        def final() -> Flow | None:
            flow = self.store.find_flow(partner, name, len(data), sha)
            return flow if flow is not None and flow.status in FINAL_FLOW_STATUSES else None

        return wait_until(final, timeout, f"the flow of {partner}/{name} to be final", every=0.1)

    def deposit(self, partner: str, name: str, data: bytes) -> list[Invoice]:
        """Drop a file and wait for its flow: its pieces, in order."""
        self.drop(partner, name, data)
        return list(self.store.iter_invoices(self.processed(partner, name, data).id))

    def piece(self, inv_id: str) -> Invoice:
        inv = self.store.get_invoice(inv_id)
        assert inv is not None, inv_id
        return inv

    def reaches(self, inv_id: str, status: InvoiceStatus, timeout: float = WAIT) -> Invoice:
        return wait_until(
            lambda: (inv := self.piece(inv_id)).status is status and inv,
            timeout,
            f"{inv_id} to be {status.name} (it is {self.piece(inv_id).status.name})",
            every=0.1,
        )

    def delivered(self, inv_id: str, timeout: float = WAIT) -> Path:
        """The delivered file of a piece, once its delivery is sent."""
        inv = wait_until(
            lambda: (i := self.piece(inv_id)).delivered_to and i, timeout, f"{inv_id} to be delivered", every=0.1
        )
        return Path(inv.delivered_to or "")

    def due_now(self, ids: Iterable[str], at: dt.datetime | None = None) -> None:
        """The days pass for these pieces: their deadline (`due_at`) is set to `at` (a minute ago by default)."""
        at = at or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        with self.store.engine.begin() as conn:
            conn.execute(sa.update(t.invoices).where(t.invoices.c.id.in_(list(ids))).values(due_at=at))

    def links(self) -> set[tuple[str, str]]:
        """The association links taken: (previous piece, follower)."""
        lk = t.piece_links.c
        with self.store.engine.connect() as conn:
            return {(p, i) for p, i in conn.execute(sa.select(lk.previous_id, lk.invoice_id)).all()}

    def outbox(self, partner: str) -> Path:
        return self.home / "dropzones" / partner / "out"

    def report(self, flow: Flow, timeout: float = WAIT) -> Path:
        """The integration report of a flow, once sent to its partner's out folder."""
        [path] = wait_until(
            lambda: list(self.outbox(flow.partner).glob(f"CR_{flow.id}_*.xml")),
            timeout,
            f"the integration report of {flow.id}",
            every=0.1,
        )
        return path

    def all_invoices(self) -> list[Invoice]:
        return [inv for f in self.store.list_flows(limit=100_000) for inv in self.store.iter_invoices(f.id)]
