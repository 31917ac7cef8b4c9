"""What waits in the folder drop zones, and why: ``relais waiting``, the web page ``/waiting``, the
landing page's count and the ``relais_dropzone_waiting`` metric.

Every entry of every partner's inbox (``dropzones/<partner>/in/``, where the hosted SFTP server's
uploads land too) is listed with one typed `Reason`, the first that applies, in this order:

1. its name: a writer's temporary name (``*.part``, ``*.tmp``...: `INCOMPLETE`, "never completed" once
   idle for `dropzone.IGNORED_REPORT_AFTER`; the hosted SFTP server's hidden upload file is an upload in
   progress, its final name not known yet), a dot-file (`IGNORED`), or not a regular file (a folder, a
   symbolic link: `IGNORED`, never taken);
2. its partner: a partner file that cannot be used (`HELD`, `connectors.partners.PartnerSet.held`, its
   problems named), or a pause by ops (`PAUSED`: by whom, since when);
3. its age: modified less than ``stable_seconds`` ago (`NOT_STABLE`: taken in N s at the earliest);
4. what the scan would do: a file Relais cannot read stays in the inbox (`UNREADABLE`, as
   ``dropzone.unreadable_file`` logs it); a drop zone without a partner file is taken as ever, its
   return flows written to its ``out/`` folder (`UNKNOWN_PARTNER`); any other file is taken by the next
   `relais run` or DAG run (`NEXT_RUN`).

Cheap at thousands of files: one ``os.scandir`` per inbox and one ``stat`` per entry, no content read.
The count is exact; only `limit` entries (oldest first) are kept. Names are the partner's view, relative
to its ``in/`` folder (`dropzone.recorded_name`), never a server path.

>>> import tempfile, os, time
>>> root = Path(tempfile.mkdtemp())
>>> (root / "op-a" / "in").mkdir(parents=True)
>>> for name in ("lot.zip.part", "facture.xml"):
...     _ = (root / "op-a" / "in" / name).write_bytes(b"<x/>")
>>> os.utime(root / "op-a" / "in" / "facture.xml", (time.time() - 60,) * 2)
>>> found = scan(root, stable_seconds=1.0, partners={"op-a": object()})
>>> found.total, [(w.name, w.reason.value) for w in found.files]
(2, [('facture.xml', 'next_run'), ('lot.zip.part', 'incomplete')])
>>> explain(found.files[1], "fr")
'envoi incomplet (nom temporaire .part, .tmp…) : sera pris une fois renommé'
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import heapq
import os
import stat
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from connectors.folder.dropzone import IGNORED_REPORT_AFTER, TEMP_SUFFIXES, recorded_name

#: The hosted SFTP server's hidden file of an upload in progress (connectors.sftp.hosted.handler's
#: UPLOAD_PREFIX; not imported: connectors.sftp imports this package). tests/connectors/folder/test_waiting.py checks both agree.
SFTP_UPLOAD_PREFIX = ".relais-upload-"
#: How many entries a scan keeps by default (the count is always exact).
LIMIT = 500


class Reason(enum.StrEnum):
    """Why a file waits (module doc: the first that applies)."""

    INCOMPLETE = "incomplete"
    IGNORED = "ignored"
    HELD = "held"
    PAUSED = "paused"
    NOT_STABLE = "not_stable"
    UNREADABLE = "unreadable"
    UNKNOWN_PARTNER = "unknown_partner"
    NEXT_RUN = "next_run"


@dataclasses.dataclass(frozen=True, slots=True)
class Waiting:
    """One entry of an inbox. `name` is relative to the partner's ``in/`` folder (None for an upload to
    the hosted SFTP server still in progress: its final name is not known yet)."""

    partner: str
    name: str | None
    size: int
    age_seconds: float  # since its last modification
    reason: Reason
    never_completed: bool = False  # INCOMPLETE, idle for IGNORED_REPORT_AFTER
    sftp_upload: bool = False  # INCOMPLETE: the hosted SFTP server's upload in progress
    kind: str = "file"  # IGNORED: "hidden", "folder", "link" or "other"
    takes_in: float | None = None  # NOT_STABLE: seconds before the scan takes it
    paused_by: str | None = None  # PAUSED
    paused_at: dt.datetime | None = None
    problems: tuple[str, ...] = ()  # HELD: the partner file's problems, file names only
    partner_files: tuple[str, ...] = ()  # HELD: the partner file(s) at fault


def stuck(w: Waiting) -> bool:
    """Whether `w` stays where it is until someone acts (resume, fix, rename, delete): not taken by the
    next runs as it is. A file being written or uploaded, or ready, is not stuck."""
    if w.reason is Reason.INCOMPLETE:
        return w.never_completed
    return w.reason in (Reason.IGNORED, Reason.HELD, Reason.PAUSED, Reason.UNREADABLE)


@dataclasses.dataclass(frozen=True)
class Report:
    """The entries kept (at most the scan's limit, oldest first) and the exact counts."""

    files: list[Waiting]
    total: int
    counts: Mapping[tuple[str, Reason], int]  # (partner, reason) -> files, in the order of Reason
    scanned_at: dt.datetime
    stuck: int = 0  # files that wait until someone acts (`stuck`)

    @property
    def truncated(self) -> bool:
        return self.total > len(self.files)

    def by_partner(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for (partner, _), n in self.counts.items():
            out[partner] += n
        return dict(sorted(out.items()))

    def by_reason(self) -> dict[Reason, int]:
        out: Counter[Reason] = Counter()
        for (_, reason), n in self.counts.items():
            out[reason] += n
        return {r: out[r] for r in Reason if out[r]}


def _partner_faults(partners: Any, folder_base: str) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """{held partner id: (problems, file names)} of a `connectors.partners.PartnerSet` (nothing for a
    plain mapping); server paths in the problems cut down to the file names."""
    held: frozenset[str] = getattr(partners, "held", frozenset())
    problems: Mapping[str, list[str]] = getattr(partners, "problems", {})
    files: Mapping[str, tuple[Path, ...]] = getattr(partners, "files", {})
    out: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for pid in held:
        keys = [k for k in problems if k == pid or (k not in held and k.split(".")[0] == pid)]
        texts = tuple(p.replace(folder_base, "") for k in sorted(keys) for p in problems[k])
        names = tuple(sorted({p.name for k in keys for p in files.get(k, ())}))
        out[pid] = (texts, names)
    return out


def _inboxes(dropzones: Path, only: str | None) -> Iterable[tuple[str, str]]:
    try:
        with os.scandir(dropzones) as it:
            names = sorted(e.name for e in it if e.is_dir(follow_symlinks=False))
    except (FileNotFoundError, NotADirectoryError):
        return
    for partner in names:
        if only is not None and partner != only:
            continue
        inbox = os.path.join(dropzones, partner, "in")
        if os.path.isdir(inbox) and not os.path.islink(inbox):
            yield partner, inbox


def scan(
    dropzones: Path,
    *,
    stable_seconds: float,
    partners: Mapping[str, Any],
    paused: Mapping[str, tuple[str, dt.datetime]] | None = None,
    partners_dir: Path | None = None,
    only: str | None = None,
    limit: int = LIMIT,
    now: float | None = None,
) -> Report:
    """Every entry waiting in the inboxes (of partner `only`, when given), with its reason (module doc).

    `partners` is a `connectors.partners.PartnerSet` (or a plain mapping: no bad partner file);
    `paused` is `Store.paused_partners()`; `partners_dir` is cut from the partner files' problems."""
    now = time.time() if now is None else now
    paused = paused or {}
    base = f"{partners_dir}{os.sep}" if partners_dir is not None else "\0"
    faults = _partner_faults(partners, base)
    counts: Counter[tuple[str, Reason]] = Counter()
    stuck_count = 0
    kept: list[tuple[float, int, Waiting]] = []  # a min-heap on age: the `limit` oldest so far, youngest on top
    seq = 0
    for partner, inbox in _inboxes(dropzones, only):
        try:
            it = os.scandir(inbox)
        except OSError:
            continue
        with it:
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # taken meanwhile
                w = _classify(partner, entry, st, now, stable_seconds, paused, faults, partners)
                counts[(partner, w.reason)] += 1
                stuck_count += stuck(w)
                seq += 1
                if limit <= 0:
                    continue
                item = (w.age_seconds, -seq, w)
                if len(kept) < limit:
                    heapq.heappush(kept, item)
                elif item[0] > kept[0][0]:
                    heapq.heapreplace(kept, item)
    files = [w for _, _, w in sorted(kept, key=lambda i: (-i[0], -i[1]))]
    order = list(Reason)
    ordered = dict(sorted(counts.items(), key=lambda kv: (kv[0][0], order.index(kv[0][1]))))
    return Report(files, sum(counts.values()), ordered, dt.datetime.fromtimestamp(now, dt.UTC), stuck_count)


def _classify(
    partner: str,
    entry: os.DirEntry[str],
    st: os.stat_result,
    now: float,
    stable_seconds: float,
    paused: Mapping[str, tuple[str, dt.datetime]],
    faults: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]],
    partners: Mapping[str, Any],
) -> Waiting:
    name, age = entry.name, max(0.0, now - st.st_mtime)
    shown = recorded_name(name)
    size = st.st_size if stat.S_ISREG(st.st_mode) else 0
    if stat.S_ISREG(st.st_mode):
        if name.startswith(SFTP_UPLOAD_PREFIX):
            return Waiting(partner, None, size, age, Reason.INCOMPLETE, sftp_upload=True)
        if name.lower().endswith(TEMP_SUFFIXES):
            return Waiting(partner, shown, size, age, Reason.INCOMPLETE, never_completed=age >= IGNORED_REPORT_AFTER)
        if name.startswith(".") and "\\" not in name:  # as dropzone.is_temporary: a backslash is a Windows path
            return Waiting(partner, shown, size, age, Reason.IGNORED, kind="hidden")
    else:
        kind = "folder" if stat.S_ISDIR(st.st_mode) else "link" if stat.S_ISLNK(st.st_mode) else "other"
        return Waiting(partner, shown, size, age, Reason.IGNORED, kind=kind)
    if partner in faults:
        problems, files = faults[partner]
        return Waiting(partner, shown, size, age, Reason.HELD, problems=problems, partner_files=files)
    if partner in paused:
        by, since = paused[partner]
        return Waiting(partner, shown, size, age, Reason.PAUSED, paused_by=by, paused_at=since)
    if now - st.st_mtime < stable_seconds:
        return Waiting(partner, shown, size, age, Reason.NOT_STABLE, takes_in=stable_seconds - (now - st.st_mtime))
    if not os.access(entry.path, os.R_OK, follow_symlinks=False):
        return Waiting(partner, shown, size, age, Reason.UNREADABLE)
    if partner not in partners:
        return Waiting(partner, shown, size, age, Reason.UNKNOWN_PARTNER)
    return Waiting(partner, shown, size, age, Reason.NEXT_RUN)


# ---- words: French first (relais waiting, the web page, the landing page) ---------------------------

_KINDS = {
    "fr": {"hidden": "fichier caché (nom commençant par un point)", "folder": "dossier", "link": "lien symbolique"},
    "en": {"hidden": "hidden file (name starting with a dot)", "folder": "folder", "link": "symbolic link"},
}
REASON_LABELS = {
    "fr": {
        Reason.INCOMPLETE: "envoi incomplet",
        Reason.IGNORED: "nom ignoré",
        Reason.HELD: "fichier partenaire invalide",
        Reason.PAUSED: "réception suspendue",
        Reason.NOT_STABLE: "en cours d'écriture",
        Reason.UNREADABLE: "illisible",
        Reason.UNKNOWN_PARTNER: "aucun fichier partenaire",
        Reason.NEXT_RUN: "prochain passage",
    },
    "en": {
        Reason.INCOMPLETE: "incomplete upload",
        Reason.IGNORED: "ignored name",
        Reason.HELD: "invalid partner file",
        Reason.PAUSED: "intake paused",
        Reason.NOT_STABLE: "being written",
        Reason.UNREADABLE: "unreadable",
        Reason.UNKNOWN_PARTNER: "no partner file",
        Reason.NEXT_RUN: "next run",
    },
}


def label(reason: Reason, lang: str = "fr") -> str:
    """The reason's short label (a column, a count)."""
    return REASON_LABELS.get(lang, REASON_LABELS["fr"])[reason]


def duration(seconds: float, lang: str = "fr") -> str:
    """A short human duration.

    >>> duration(42), duration(3 * 3600 + 120), duration(3 * 86400 + 4000, "en")
    ('42 s', '3 h 02 min', '3 d 1 h')
    """
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} {'j' if lang == 'fr' else 'd'} {s % 86400 // 3600} h"


def size_text(n: int, lang: str = "fr") -> str:
    """A file size (French units and decimal comma by default).

    >>> size_text(512), size_text(2048), size_text(5 * 1024 * 1024, "en")
    ('512 o', '2,0 Kio', '5.0 MiB')
    """
    fr = lang != "en"
    if n < 1024:
        return f"{n} {'o' if fr else 'B'}"
    value, unit = (n / 1024, "Kio" if fr else "KiB") if n < 1024 * 1024 else (n / 1024 / 1024, "Mio" if fr else "MiB")
    text = f"{value:.1f} {unit}"
    return text.replace(".", ",") if fr else text


def explain(w: Waiting, lang: str = "fr", *, details: bool = True) -> str:
    """Why `w` waits, in one sentence (French by default). Without `details`, a held file does not name
    its partner file's problems (what a partner user sees: ops fix it)."""
    fr = lang != "en"
    at = w.paused_at.strftime("%Y-%m-%d %H:%M UTC") if w.paused_at else "?"
    if w.reason is Reason.INCOMPLETE and w.sftp_upload:
        return (
            "envoi SFTP en cours : le fichier prendra son nom à la fin de l'envoi"
            if fr
            else ("SFTP upload in progress: the file gets its name when the upload ends")
        )
    if w.reason is Reason.INCOMPLETE and w.never_completed:
        idle = duration(w.age_seconds, lang)
        return (
            f"envoi jamais terminé (nom temporaire, inchangé depuis {idle}) : jamais pris ; renommez-le pour "
            "l'envoyer, ou supprimez-le"
            if fr
            else f"upload never completed (temporary name, untouched for {idle}): never taken; rename it to send it, or delete it"
        )
    if w.reason is Reason.INCOMPLETE:
        return (
            "envoi incomplet (nom temporaire .part, .tmp…) : sera pris une fois renommé"
            if fr
            else ("incomplete upload (temporary name .part, .tmp…): taken once renamed")
        )
    if w.reason is Reason.IGNORED:
        kind = _KINDS["fr" if fr else "en"].get(w.kind, w.kind)
        return f"jamais pris : {kind}" if fr else f"never taken: {kind}"
    if w.reason is Reason.HELD:
        files = ", ".join(w.partner_files) or ("le fichier partenaire" if fr else "the partner file")
        head = (
            f"retenu : {files} est invalide ; pris une fois corrigé"
            if fr
            else f"held: {files} is invalid; taken once it is fixed"
        )
        if not details:
            return (
                "retenu : la configuration de ce partenaire est invalide ; l'exploitation doit la corriger"
                if fr
                else "held: this partner's configuration is invalid; the operations team must fix it"
            )
        return f"{head} ({'; '.join(w.problems)})" if w.problems else head
    if w.reason is Reason.PAUSED:
        return (
            f"réception suspendue par {w.paused_by} depuis le {at} : pris à la reprise"
            if fr
            else f"intake paused by {w.paused_by} since {at}: taken when resumed"
        )
    if w.reason is Reason.NOT_STABLE:
        left = duration(max(1.0, w.takes_in or 0.0), lang)
        return (
            f"pas encore stable (modifié il y a {duration(w.age_seconds, lang)}) : pris dans {left} au plus tôt"
            if fr
            else f"not stable yet (modified {duration(w.age_seconds, lang)} ago): taken in {left} at the earliest"
        )
    if w.reason is Reason.UNREADABLE:
        return (
            "illisible par Relais (droits du fichier) : reste dans le dépôt ; corrigez ses droits"
            if fr
            else "Relais cannot read it (file permissions): it stays in the drop zone; fix its permissions"
        )
    if w.reason is Reason.UNKNOWN_PARTNER:
        return (
            "aucun fichier partenaire : pris au prochain passage, ses flux retour écrits dans son dossier out/"
            if fr
            else "no partner file: taken by the next run, its return flows written to its out/ folder"
        )
    return (
        "prêt : pris au prochain passage (relais run ou le DAG)"
        if fr
        else "ready: taken by the next run (relais run or the DAG)"
    )


def as_json(w: Waiting, *, details: bool = True) -> dict[str, Any]:
    """`w` as a JSON object (``relais waiting --json``), its reason explained in French."""
    out: dict[str, Any] = {
        "partner": w.partner,
        "name": w.name,
        "size": w.size,
        "age_seconds": round(w.age_seconds, 1),
        "reason": w.reason.value,
        "message": explain(w, "fr", details=details),
    }
    if w.reason is Reason.INCOMPLETE:
        out["never_completed"] = w.never_completed
        out["sftp_upload"] = w.sftp_upload
    if w.reason is Reason.IGNORED:
        out["kind"] = w.kind
    if w.reason is Reason.NOT_STABLE:
        out["takes_in_seconds"] = round(w.takes_in or 0.0, 1)
    if w.reason is Reason.PAUSED:
        out["paused_by"] = w.paused_by
        out["paused_at"] = w.paused_at.isoformat() if w.paused_at else None
    if w.reason is Reason.HELD:
        out["partner_files"] = list(w.partner_files)
        if details:
            out["problems"] = list(w.problems)
    return out
