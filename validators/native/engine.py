"""The native rule engine: runs a rule set's generated Python, the official verdicts without Saxon.

`NativeRunner` has the contract of `validators.schematron.Runner` (``run``,
``compile``): every ``failed-assert`` and flagged ``successful-report`` of the
rule set, in SVRL order (pattern by pattern, node by node in document order,
assert by assert), minus the rule set's excluded rules; an assert that raises
a dynamic error aborts the document with `SchematronError`, as Saxon's run
does (fail closed: an incident, never "valid").

Per pattern (an XSLT mode), every element is visited in document order, then
its attributes; the first rule whose match pattern fits (highest priority,
then the later template) fires, as ``xsl:apply-templates`` picks it.

Generated code is built on first use from the stylesheet's bytes and cached
by their SHA-256 and the compiler's own hash (`cache_dir`, ``RELAIS_NATIVE_CACHE``,
default ``~/.cache/relais/native``): a new CEN release gets its own code, a
changed compiler rebuilds. The asserts the compiler refuses run on Saxon, in a
copy of the stylesheet that holds only them; their findings follow the native
ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import marshal
import os
import pickle
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree

from flows.domain.model import Category, ValidationError
from flows.io.atomic import write_atomic
from validators import schematron
from validators.native import runtime as R
from validators.native.modes import Mode
from validators.native.modes import index as index_mode
from validators.native.stylesheet import Assert, Program, compile_stylesheet
from validators.native.xpath import Unsupported
from validators.schematron import RuleSet, SchematronError

_HERE = Path(__file__).resolve().parent
CACHE_FORMAT = "relais-native/1"
_XPATHS: dict[Any, Any] = {}
_EMPTY: list[Any] = []  # shared: generated code never changes a sequence in place
KIDS_KEPT = 50_000  # child indexes kept at most (the walk is in document order: old ones are not needed again)


def compiler_hash(root: Path = _HERE) -> str:
    """The compiler's own identity: a change in any file of the engine rebuilds every cached rule set.

    Every ``.py`` under `root` (the package, subpackages included), in the order
    of their relative paths, each hashed with its path and length.
    """
    h = hashlib.sha256(CACHE_FORMAT.encode())
    for path in sorted(root.rglob("*.py"), key=lambda p: p.relative_to(root).as_posix()):
        data = path.read_bytes()
        h.update(f"\0{path.relative_to(root).as_posix()}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()[:16]


def default_cache_dir() -> Path:
    configured = os.environ.get("RELAIS_NATIVE_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "relais" / "native"


@dataclasses.dataclass
class Loaded:
    """A rule set's generated code, ready to run."""

    key: str
    sha256: str
    asserts: list[Assert]
    modes: list[Mode | None]
    globals: dict[str, Callable[..., Any]]
    reduced: Path | None  # the Saxon copy of the refused asserts
    base: Path  # where document('...') looks
    compile_error: str | None = None  # the whole stylesheet was refused: all of it on Saxon


class NativeRunner:
    """Runs rule sets natively; the asserts the compiler refuses run on Saxon. Thread-safe (one lock)."""

    def __init__(self, *, record: bool = False, cache_dir: Path | None = None, official: Any = None) -> None:
        self.record = record
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self._official = official
        self._lock = threading.RLock()
        self._loaded: dict[Path, Loaded] = {}
        self._outcomes: dict[str, dict[str, list[int]]] = {}
        self._codedb: dict[Path, R.Doc] = {}

    # ---- the schematron.Runner contract
    def compile(self, ruleset: RuleSet) -> Loaded:
        with self._lock:
            path = Path(ruleset.path).resolve()
            if path not in self._loaded:
                self._loaded[path] = self._load(ruleset, path)
            return self._loaded[path]

    def is_built(self, ruleset: RuleSet) -> bool:
        """Whether the rule set's generated code is in the cache (then `compile` only loads it, no build)."""
        try:
            digest = hashlib.sha256(Path(ruleset.path).read_bytes()).hexdigest()
        except OSError:
            return False
        return (self.cache_dir / f"{digest[:24]}-{compiler_hash()}.native").is_file()

    def run(self, ruleset: RuleSet, xml: bytes | etree._ElementTree) -> list[ValidationError]:
        tree = schematron._parse(xml) if isinstance(xml, (bytes, bytearray)) else xml
        if isinstance(tree, etree._Element):
            tree = tree.getroottree()
        loaded = self.compile(ruleset)
        with (
            self._lock,
            schematron._lines_last(tree),  # the official run's order of CII lines, so its order of findings
            _no_cycle_collection(),
        ):
            errors = self._run(loaded, tree, ruleset) if loaded.compile_error is None else []
        if loaded.reduced is not None:
            errors.extend(self.official.run(dataclasses.replace(ruleset, path=loaded.reduced), tree))
        return [e for e in errors if ruleset.keeps(e.rule)]

    @property
    def official(self) -> Any:
        if self._official is None:
            self._official = schematron.Runner()
        return self._official

    # ---- what was compiled
    def assert_uids(self, ruleset: RuleSet) -> list[str]:
        return [a.uid for a in self.compile(ruleset).asserts]

    def fallback_uids(self, ruleset: RuleSet) -> list[str]:
        return [a.uid for a in self.compile(ruleset).asserts if not a.native]

    def fallbacks(self, ruleset: RuleSet) -> list[Assert]:
        return [a for a in self.compile(ruleset).asserts if not a.native]

    def outcomes(self) -> dict[str, dict[str, list[int]]]:
        """{rule set key: {assert uid: [times failed (or reported), times passed]}} of native asserts."""
        with self._lock:
            return {k: {u: list(v) for u, v in d.items()} for k, d in self._outcomes.items()}

    # ---- loading
    def _load(self, ruleset: RuleSet, path: Path) -> Loaded:
        try:
            data = path.read_bytes()
        except OSError as e:
            raise SchematronError(f"cannot read stylesheet {path}: {e.strerror or e}", ruleset.key) from e
        digest = hashlib.sha256(data).hexdigest()
        cached = self.cache_dir / f"{digest[:24]}-{compiler_hash()}.native"
        record = self._read_cache(cached)
        if record is None:
            record = self._build(path, data, ruleset.key)
            self._write_cache(cached, record)
        code, asserts, reduced_bytes, error = record
        reduced = None
        if reduced_bytes is not None:
            reduced = cached.with_suffix(".reduced.xslt")
            if not reduced.is_file() or reduced.read_bytes() != reduced_bytes:
                self._write(reduced, reduced_bytes)
        namespace: dict[str, Any] = {"__name__": f"relais_native_{digest[:12]}"}
        if code is not None:
            exec(marshal.loads(code), namespace)  # our own generated code, from our own cache
        modes = [index_mode(m) if m is not None else None for m in namespace.get("MODES", [])]
        return Loaded(
            ruleset.key,
            digest,
            [Assert(*a) for a in asserts],
            modes,
            namespace.get("GLOBALS", {}),
            reduced,
            path.parent,
            error,
        )

    def _build(self, path: Path, data: bytes, key: str) -> tuple[Any, ...]:
        try:
            program: Program = compile_stylesheet(path, data)
        except Unsupported as e:  # a stylesheet of another shape: all of it on Saxon
            return (None, [], data.replace(b"document('", b"document('" + path.parent.as_uri().encode() + b"/"), str(e))
        except etree.XMLSyntaxError as e:
            raise SchematronError(f"cannot read stylesheet {path}: {e}", key) from e
        code = compile(program.source, f"<native rules {path.name}>", "exec")
        asserts = [dataclasses.astuple(a) for a in program.asserts]
        return (marshal.dumps(code), asserts, program.reduced_xslt, None)

    def _read_cache(self, path: Path) -> tuple[Any, ...] | None:
        try:
            blob = path.read_bytes()
            record = pickle.loads(blob)  # our own cache file
        except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError):
            return None
        if not (isinstance(record, tuple) and len(record) == 5 and record[0] == CACHE_FORMAT):
            return None
        return tuple(record[1:])

    def _write_cache(self, path: Path, record: tuple[Any, ...]) -> None:
        self._write(path, pickle.dumps((CACHE_FORMAT, *record), protocol=pickle.HIGHEST_PROTOCOL))

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, data)
        except OSError:
            pass  # a read-only cache: compiled again next time

    # ---- running
    def _run(self, loaded: Loaded, tree: etree._ElementTree, ruleset: RuleSet) -> list[ValidationError]:
        state = State(self, loaded, tree)
        try:
            state.walk_all(loaded.modes)
        except R.XPathError as e:
            raise SchematronError(f"native rules: dynamic error: {e}", ruleset.key) from e
        except RecursionError as e:
            raise SchematronError("native rules: the document is too deeply nested", ruleset.key) from e
        except SchematronError:
            raise
        except Exception as e:  # an engine fault: fail closed, never "valid"
            raise SchematronError(f"native rules: internal error: {type(e).__name__}: {e}", ruleset.key) from e
        if self.record:
            self._count(loaded, state.seen_counts)
        out = []
        for index, node, message in state.failures:
            a = loaded.asserts[index]
            if a.kind == "successful-report" and a.flag is None:
                continue  # the official wrapper keeps flagged reports only
            out.append(
                ValidationError(
                    rule=a.rule,
                    flag=schematron._flag(a.flag),
                    location=R.full_path(node) if node is not None else "/",
                    message=message,
                    category=Category.EN16931,
                )
            )
        return out

    def _count(self, loaded: Loaded, counts: dict[tuple[int, bool], int]) -> None:
        per = self._outcomes.setdefault(loaded.key, {})
        for (index, ok), n in counts.items():
            slot = per.setdefault(loaded.asserts[index].uid, [0, 0])
            slot[1 if ok else 0] += n

    def codedb(self, path: Path) -> R.Doc:
        doc = self._codedb.get(path)
        if doc is None:
            from flows.io import safexml

            try:
                root = etree.fromstring(path.read_bytes(), safexml.make_parser())
            except (OSError, etree.XMLSyntaxError) as e:
                raise R.XPathError("FODC0002", f"cannot read {path.name}: {e}") from e
            doc = self._codedb[path] = R.Doc(root)
        return doc


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The cyclic garbage collector paused for one run: the walk allocates millions of short-lived
    lists on a big invoice, and each full collection walks every object alive (some 15 % of the
    time on 2,000 lines). Freed by reference counting meanwhile; the collector resumes after."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class State:
    """One document's run of one rule set: what generated code calls as ``D``."""

    def __init__(self, runner: NativeRunner, loaded: Loaded, tree: etree._ElementTree) -> None:
        self.runner = runner
        self.loaded = loaded
        self.doc = R.Doc(tree.getroot())
        self.record = runner.record
        self.failures: list[tuple[int, Any, str]] = []
        self.seen_counts: dict[tuple[int, bool], int] = {}
        self._globals: dict[str, list[Any]] = {}
        self.memo: dict[int, Any] = {}
        self.kids: dict[Any, dict[str, list[Any]]] = {}
        self._per_node: dict[tuple[Any, Any], list[Any]] = {}
        self._tags: dict[tuple[Any, int], set[str]] = {}
        self._lookups: dict[tuple[int, str], tuple[list[Any], dict[Any, list[tuple[int, Any]]]]] = {}

    # -- the walk
    def walk_all(self, modes: list[Mode | None]) -> None:
        """Every mode in order. The modes whose rules all name their element (no wildcard, no
        attribute, none stopping the descent) visit only the elements so named, gathered for all of
        them in one pass over the tree: the Factur-X stylesheets have some eighty patterns."""
        narrow = [i for i, m in enumerate(modes) if m is not None and not (m.wild or m.attrs or m.stops)]
        gathered: dict[int, list[Any]] = {i: [] for i in narrow}
        if narrow:
            per_tag: dict[str, list[int]] = {}
            for el in self.doc.root.iter(etree.Element):
                tag = el.tag
                wanted = per_tag.get(tag)
                if wanted is None:
                    wanted = per_tag[tag] = [i for i in narrow if tag in modes[i].tagged]  # type: ignore[union-attr]
                for i in wanted:
                    gathered[i].append(el)
        for i, mode in enumerate(modes):
            if mode is None:
                continue
            if i in gathered:
                self.walk(mode, gathered.pop(i))
            else:
                self.walk(mode)

    def walk(self, mode: Mode, elements: list[Any] | None = None) -> None:
        for alt, fn in mode.doc:
            if _match(alt[2], 0, self.doc, self):
                fn(self.doc, self)
                break
        attrs = mode.attrs
        if mode.stops:
            self._walk_pruned(mode)
            return
        for el in self.doc.root.iter(etree.Element) if elements is None else elements:
            for alt, fn in mode.cache.get(el.tag) or mode.candidates(el.tag):
                m = alt[4]
                if m(el, self) if m is not None else _match(alt[2], 0, el, self):
                    fn(el, self)
                    break
            if attrs and el.attrib:
                for name, value in el.attrib.items():
                    for alt, fn in attrs.get(name, ()):
                        a = R.Attr(el, name, value)
                        if _match(alt[2], 0, a, self):
                            fn(a, self)
                            break

    def _walk_pruned(self, mode: Mode) -> None:
        """The walk of a mode with rules that do not descend: their nodes' subtrees are skipped."""
        order = self.doc.order
        skip_to = -1
        for el in self.doc.root.iter(etree.Element):
            if order[el] <= skip_to:
                continue
            for alt, fn in mode.cache.get(el.tag) or mode.candidates(el.tag):
                m = alt[4]
                if m(el, self) if m is not None else _match(alt[2], 0, el, self):
                    fn(el, self)
                    if getattr(fn, "stops", False):
                        skip_to = order[el] + sum(1 for _ in el.iter()) - 1
                    break
            if skip_to >= order[el]:
                continue
            if mode.attrs and el.attrib:
                for name, value in el.attrib.items():
                    for alt, fn in mode.attrs.get(name, ()):
                        a = R.Attr(el, name, value)
                        if _match(alt[2], 0, a, self):
                            fn(a, self)
                            break

    # -- called by generated code
    def fail(self, index: int, node: Any, message: Callable[[], str]) -> None:
        self.failures.append((index, node, message()))

    def ch(self, n: Any, tag: str) -> list[Any]:
        """Children of `n` named `tag` (an exact ``{ns}local``); an element with many children
        gets a child index, built once (the rules read a CII transaction's header from every line)."""
        index = self.kids.get(n)
        if index is None:
            index = self._kids(n)
        return index.get(tag, _EMPTY)

    def chs(self, n: Any, tag: str) -> str:
        """The string value of `n`'s one child named `tag`; '' when none (two or more: a type error)."""
        index = self.kids.get(n)
        if index is None:
            index = self._kids(n)
        found = index.get(tag)
        if not found:
            return ""
        if len(found) > 1:
            raise R.XPathError("XPTY0004", "a sequence of more than one item is not allowed as an argument")
        x = found[0]
        return (x.text or "") if len(x) == 0 else R.string_value(x)

    def tags(self, n: Any, depth: int = 1 << 30) -> set[str]:
        """The name paths (``{ns}a/{ns}b/...``) of the elements under `n` down to `depth` levels,
        relative to `n` (a rule asks as deep as its deepest presence key: not a line's whole subtree)."""
        key = (n, depth)
        found = self._tags.get(key)
        if found is not None:
            return found
        found = set()
        if R.is_element(n):
            for k in n.iterchildren(etree.Element):
                tag = k.tag
                found.add(tag)
                if depth > 1 and len(k):  # a child's own paths, kept for when it is a context
                    found.update([tag + "/" + p for p in self.tags(k, depth - 1)])
        if len(self._tags) >= KIDS_KEPT:  # bounded memory on a 100,000-line invoice
            self._tags.clear()
        self._tags[key] = found
        return found

    def _kids(self, n: Any) -> dict[str, list[Any]]:
        index: dict[str, list[Any]] = {}
        try:
            for child in n.iterchildren(etree.Element):
                found = index.get(child.tag)
                if found is None:
                    index[child.tag] = [child]
                else:
                    found.append(child)
        except AttributeError:  # an atomic value
            pass
        if isinstance(n, (R.Attr, R.Text, R.Doc)) or R.is_node(n):
            if len(self.kids) >= KIDS_KEPT:  # bounded memory on a 100,000-line invoice
                self.kids.clear()
            self.kids[n] = index
        return index

    def xp(self, spec: tuple[str, str, tuple[tuple[str, str], ...]], n: Any) -> list[Any]:
        """A navigation path evaluated by libxml2 (`validators.native.navigation.libxml_path`)."""
        compiled = _XPATHS.get(spec)
        if compiled is None:
            compiled = _XPATHS[spec] = etree.XPath(spec[1], namespaces=dict(spec[2]))
        if isinstance(n, R.Doc):
            context = n.root
        elif R.is_element(n):
            context = n
        else:
            return []
        out = []
        for r in compiled(context):
            if isinstance(r, etree._Element):
                out.append(r)
            elif getattr(r, "is_attribute", False):
                out.append(R.Attr(r.getparent(), r.attrname, str(r)))
            else:  # pragma: no cover - name tests select elements and attributes only
                raise R.XPathError("XPTY0019", "unexpected node in a navigation path")
        return out

    def k(self, index: int, fn: Callable[[State], Any]) -> Any:
        """A document constant, computed on first use."""
        memo = self.memo
        if index in memo:
            return memo[index]
        value = memo[index] = fn(self)
        return value

    def nk(self, key: Any, nodes: list[Any], fn: Callable[[Any], list[Any]]) -> list[Any]:
        """``fn(node)`` for the one node of `nodes`, computed once per node (`validators.native.hoist`)."""
        if len(nodes) != 1:
            return self.each(nodes, fn)
        found = self._per_node.get((key, nodes[0]))
        if found is None:
            found = self._per_node[(key, nodes[0])] = fn(nodes[0])
        return found

    def lookup(self, seq: list[Any], name: str, values: list[Any]) -> list[Any]:
        """``seq[@name = values]`` through an index of `seq` by the attribute (built once per sequence)."""
        wanted = R.atomize(values)
        if not seq or not wanted:
            return []
        if not all(isinstance(v, str) for v in wanted):
            numbers = self._numeric_lookup(seq, name, wanted)
            if numbers is not None:
                return numbers
            return [c for c in seq if R.gcmp("=", R.attributes(c, name), values)]  # the general comparison
        entry = self._lookups.get((id(seq), name))
        if entry is None or entry[0] is not seq:
            index: dict[str, list[tuple[int, Any]]] = {}
            for i, node in enumerate(seq):
                v = node.get(name) if R.is_element(node) else None
                if v is not None:
                    index.setdefault(v, []).append((i, node))
            entry = self._lookups[(id(seq), name)] = (seq, index)
        index = entry[1]
        if len(wanted) == 1:
            return [node for _, node in index.get(str(wanted[0]), ())]
        hits = {i: node for v in wanted for i, node in index.get(str(v), ())}
        return [hits[i] for i in sorted(hits)]

    def _numeric_lookup(self, seq: list[Any], name: str, wanted: list[Any]) -> list[Any] | None:
        """``seq[@name = 8]``: by the attributes' values as doubles; None when a value is not a number
        (the general comparison then raises, as it would) or `wanted` holds other than numbers."""
        if not all(isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) for v in wanted):
            return None
        entry = self._lookups.get((id(seq), "#" + name))
        if entry is None or entry[0] is not seq:
            index: dict[Any, list[tuple[int, Any]]] = {}
            for i, node in enumerate(seq):
                v = node.get(name) if R.is_element(node) else None
                if v is None:
                    continue
                try:
                    key = R.to_double(R.U(v))
                except R.XPathError:
                    return None
                index.setdefault(key, []).append((i, node))
            entry = self._lookups[(id(seq), "#" + name)] = (seq, index)
        table: dict[Any, list[tuple[int, Any]]] = entry[1]
        hits = {i: node for v in wanted for i, node in table.get(float(v), ())}
        return [hits[i] for i in sorted(hits)]

    def seen(self, index: int, ok: bool) -> None:
        key = (index, ok)
        self.seen_counts[key] = self.seen_counts.get(key, 0) + 1

    def glob(self, name: str) -> list[Any]:
        found = self._globals.get(name)
        if found is None:
            found = self._globals[name] = self.loaded.globals[name](self)
        return found

    def filt(self, seq: list[Any], pred: Callable[[Any, int, int], bool]) -> list[Any]:
        size = len(seq)
        return [x for i, x in enumerate(seq, 1) if pred(x, i, size)]

    def each(self, nodes: list[Any], step: Callable[[Any], list[Any]]) -> list[Any]:
        if len(nodes) == 1:
            return step(nodes[0])
        out: list[Any] = []
        for n in nodes:
            out.extend(step(n))
        if len(out) > 1:
            if all(R.is_node(x) for x in out):
                return R.doc_order(self.doc, out)
            if any(R.is_node(x) for x in out):
                raise R.XPathError("XPTY0018", "a path's last step returned both nodes and atomic values")
        return out

    def document(self, name: str) -> list[Any]:
        return [self.runner.codedb((self.loaded.base / name).resolve())]


def _match(steps: tuple[Any, ...], i: int, node: Any, D: State) -> bool:
    sep, test, is_attr, preds = steps[i]
    if test[0] == "name" and test[1] is not None and test[2] is not None and not is_attr:
        if getattr(node, "tag", None) != ("{" + test[1] + "}" + test[2] if test[1] else test[2]):
            return False
    elif not R.matches_test(node, test, is_attr):
        return False
    if preds:
        for p in preds:
            if p.positional:
                sibs = [s for s in R.siblings(node, True) if R.matches_test(s, test)]
                after = [s for s in R.siblings(node, False) if R.matches_test(s, test)]
                if not p(node, len(sibs) + 1, len(sibs) + len(after) + 1, D):
                    return False
            elif not p(node, 1, 1, D):
                return False
    parent = R.parent_of(node, D.doc)
    if i + 1 == len(steps):
        return sep == "//" or isinstance(parent, R.Doc)
    if sep == "/":
        return parent is not None and not isinstance(parent, R.Doc) and _match(steps, i + 1, parent, D)
    while parent is not None and not isinstance(parent, R.Doc):
        if _match(steps, i + 1, parent, D):
            return True
        parent = R.parent_of(parent, D.doc)
    return False
