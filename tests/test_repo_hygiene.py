"""The repository stands alone: no source, config, notebook, test or doc points at a path outside it."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ["README.md", "docs", "think2seg", "notebooks", "configs", "tests"]
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".ipynb", ".toml", ".txt"}
# written in pieces so that this file does not match itself
OUTSIDE = re.compile("|".join([r"(?<![\w/.-])(\.\./)*" + "shared" + "/", "/" + "work" + "/", r"\.\./\.\./"]))


def _files():
    for name in CHECKED:
        path = ROOT / name
        paths = [path] if path.is_file() else path.rglob("*")
        for f in paths:
            if f.is_file() and f.suffix in SUFFIXES and "__pycache__" not in f.parts and "assets" not in f.parts:
                yield f


def test_no_file_refers_outside_the_repository():
    hits = []
    for f in _files():
        for n, line in enumerate(f.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{f.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
    assert not hits, "\n".join(hits)


def test_the_pattern_catches_what_it_must():
    assert OUTSIDE.search("see " + "shared" + "/REFERENCE.md")
    assert OUTSIDE.search("`../" + "shared" + "/paper`")
    assert OUTSIDE.search("/" + "work" + "/main/data")
    assert not OUTSIDE.search("torch.multiprocessing shared memory, docs/sam2.md")
    assert not OUTSIDE.search("data/shared_things/x")
