"""Registered actors of the billing circuits (titulaires, mandataires, MOE, MOA): checked, then recorded.

The import file is CSV with ``;``, one actor a line: ``siret;name;role`` (an optional header line
naming those columns; empty lines and lines starting with ``#`` are skipped; UTF-8). The role is one of
`ACTOR_ROLES`; the SIRET has 14 digits and a right check digit (python-stdnum). A bad line refuses the
whole file, naming its line (`ActorFileError`): nothing is imported. Each import is a new version holding
exactly the file's actors; `add` makes a new version with one more (docs/billing-frameworks.md §5).

>>> [a.role for a in parse("siret;name;role\\n73282932000074;Entreprise Générale;Titulaire\\n")]
['titulaire']
>>> parse("73282932000075;X;moe")
Traceback (most recent call last):
    ...
flows.directory.actors.ActorFileError: ligne 1 : SIRET 73282932000075 refusé (clé de contrôle fausse)
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from stdnum.fr import siret as siret_number

from flows.domain.errors import ConfigError
from flows.domain.structures import ACTOR_ROLES, RegisteredActor
from flows.store import Store

MAX_NAME = 200


class ActorFileError(ConfigError):
    """An actor (a line of an import file, or one added) that cannot be registered; French first."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        super().__init__(f"ligne {line} : {message}" if line is not None else message)


def check(siret: str, name: str, role: str, line: int | None = None) -> RegisteredActor:
    """The actor, its SIRET, name and role checked (the role in lower case); else `ActorFileError`."""
    siret, name, role = siret.strip(), name.strip(), role.strip().lower()
    if not (len(siret) == 14 and siret.isascii() and siret.isdigit()):
        raise ActorFileError(f"pas un SIRET (14 chiffres) : {siret!r}", line)
    if not siret_number.is_valid(siret):
        raise ActorFileError(f"SIRET {siret} refusé (clé de contrôle fausse)", line)
    if not name or len(name) > MAX_NAME:
        raise ActorFileError(f"nom vide ou de plus de {MAX_NAME} caractères : {name[:40]!r}", line)
    if role not in ACTOR_ROLES:
        raise ActorFileError(f"rôle inconnu {role!r} (rôles : {', '.join(ACTOR_ROLES)})", line)
    return RegisteredActor(siret, name, role)


def parse(text: str) -> list[RegisteredActor]:
    """The actors of an import file; `ActorFileError` naming the first bad line."""
    actors: list[RegisteredActor] = []
    seen: dict[tuple[str, str], int] = {}
    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        cells = line.split(";")
        if not actors and not seen and [c.strip().lower() for c in cells] == ["siret", "name", "role"]:
            continue  # the header
        if len(cells) != 3:
            raise ActorFileError(f"3 colonnes attendues (siret;name;role), {len(cells)} trouvée(s)", number)
        actor = check(cells[0], cells[1], cells[2], line=number)
        key = (actor.siret, actor.role)
        if key in seen:
            raise ActorFileError(f"{actor.siret} ({actor.role}) est déjà à la ligne {seen[key]}", number)
        seen[key] = number
        actors.append(actor)
    return actors


def import_file(store: Store, path: Path) -> tuple[str, int]:
    """Import an actors file as a new version: (version, actors). `ActorFileError` (nothing imported)."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ActorFileError(f"{path.name} n'est pas en UTF-8 (octet {e.start})") from None
    actors = parse(text)
    if not actors:
        raise ActorFileError(f"{path.name} ne contient aucun acteur (lignes siret;name;role)")
    return store.import_actors(actors, hashlib.sha256(data).hexdigest()), len(actors)


def add(store: Store, siret: str, name: str, role: str) -> tuple[RegisteredActor, str]:
    """Register one actor (a new version: the previous actors and this one): (the actor, version)."""
    actor = check(siret, name, role)
    return actor, store.add_actor(actor)
