"""`compiler_hash` keys the cache of compiled stylesheets: any change in any file of the engine changes it."""

from __future__ import annotations

import shutil
from pathlib import Path

from validators.native import engine

ENGINE = Path(engine.__file__).resolve().parent


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "native"
    shutil.copytree(ENGINE, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_the_hash_is_the_engines_own() -> None:
    assert engine.compiler_hash() == engine.compiler_hash(ENGINE)
    assert len(engine.compiler_hash()) == 16


def test_a_change_in_any_file_of_the_engine_changes_the_hash(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    before = engine.compiler_hash(root)
    assert before == engine.compiler_hash(ENGINE)  # the copy is the engine
    files = sorted(root.rglob("*.py"))
    assert root / "runtime" / "values.py" in files  # subpackages count
    for path in files:
        original = path.read_bytes()
        path.write_bytes(original + b"\n# changed\n")
        assert engine.compiler_hash(root) != before, path.relative_to(root)
        path.write_bytes(original)
    assert engine.compiler_hash(root) == before


def test_a_new_or_renamed_module_changes_the_hash_other_files_do_not(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    before = engine.compiler_hash(root)
    (root / "notes.txt").write_text("not code")
    (root / "__pycache__").mkdir(exist_ok=True)
    (root / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert engine.compiler_hash(root) == before
    (root / "runtime" / "extra.py").write_text("")
    assert engine.compiler_hash(root) != before
    (root / "runtime" / "extra.py").rename(root / "runtime" / "other.py")
    renamed = engine.compiler_hash(root)
    assert renamed != before
    (root / "runtime" / "other.py").unlink()
    assert engine.compiler_hash(root) == before
