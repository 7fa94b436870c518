"""The questions file of ``think2seg dataset build``: explicit and implicit questions per category.

>>> qs = parse_questions({"lake": {"explicit": ["the lake", "find the {name}s"],
...                                "implicit": ["where could a boat float?"]}}, "q.yaml")
>>> qs["lake"].explicit
['the lake', 'find the lakes']
>>> import numpy as np
>>> [kind for _, kind in draw_questions(np.random.default_rng(0), qs["lake"], n_explicit=1, n_implicit=1)]
['explicit', 'implicit']

Format (YAML): a mapping from category (the class field's value, as text) to ``explicit`` and/or
``implicit`` lists of strings; a plain list is taken as explicit questions. ``{name}`` in a question is
replaced by the category's name with underscores as spaces (or by the entry's ``name`` key when given).
Every category of the labels needs at least one question (:func:`check_categories`); a category in the
file that the labels lack is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from think2seg.core.io import data_error

KINDS = ("explicit", "implicit")


@dataclass
class CategoryQuestions:
    """The questions about one category."""

    explicit: list[str]
    implicit: list[str]

    def __len__(self) -> int:
        return len(self.explicit) + len(self.implicit)


def _strings(value: Any, where: str, path: Path) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(q, str) for q in value):
        raise data_error(path, f"{where}: expected a list of strings", "bad_questions")
    return [q.strip() for q in value if q.strip()]


def parse_questions(doc: Any, path: str | Path) -> dict[str, CategoryQuestions]:
    """``{category: CategoryQuestions}`` from a parsed YAML document (module doc); DataError naming the file
    for a bad structure or a category without any question."""
    path = Path(path)
    if not isinstance(doc, dict) or not doc:
        raise data_error(path, "expected a mapping from category to {explicit: [...], implicit: [...]}", "bad_questions")
    out = {}
    for key, value in doc.items():
        cat = str(key).strip()
        name = cat.replace("_", " ")
        if isinstance(value, list):
            value = {"explicit": value}
        if not isinstance(value, dict):
            raise data_error(path, f"category {cat!r}: expected explicit/implicit lists", "bad_questions")
        unknown = set(value) - {*KINDS, "name"}
        if unknown:
            raise data_error(path, f"category {cat!r}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                             "expected explicit, implicit (and optionally name)", "bad_questions")
        name = str(value.get("name") or name)
        try:
            lists = {k: [q.format(name=name) for q in _strings(value.get(k), f"category {cat!r} {k}", path)]
                     for k in KINDS}
        except (KeyError, IndexError, ValueError) as e:
            raise data_error(path, f"category {cat!r}: bad placeholder {e} (only {{name}} is replaced)",
                             "bad_questions") from None
        if not lists["explicit"] and not lists["implicit"]:
            raise data_error(path, f"category {cat!r} has no questions (give explicit and/or implicit ones)",
                             "no_questions")
        out[cat] = CategoryQuestions(**lists)
    return out


def load_questions(path: str | Path) -> dict[str, CategoryQuestions]:
    """Read and parse a questions YAML file (module doc); DataError naming the file when it cannot."""
    path = Path(path)
    if not path.is_file():
        raise data_error(path, "no such file (--questions)", "missing")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise data_error(path, f"not valid YAML ({' '.join(str(e).split())})", "bad_questions") from None
    return parse_questions(doc, path)


def check_categories(questions: dict[str, CategoryQuestions], categories: list[str], path: str | Path) -> None:
    """DataError naming the file and the categories of the labels that have no questions."""
    missing = [c for c in categories if c not in questions]
    if missing:
        raise data_error(path, f"no questions for label categor{'y' if len(missing) == 1 else 'ies'} "
                         f"{', '.join(map(repr, missing))} (the file has {', '.join(map(repr, questions))})",
                         "no_questions")


def draw_questions(rng: np.random.Generator, qs: CategoryQuestions, n_explicit: int, n_implicit: int
                   ) -> list[tuple[str, str]]:
    """Up to ``n_explicit`` explicit and ``n_implicit`` implicit questions (without repeats; fewer when the
    category has fewer; at least one in all), as ``[(question, kind)]`` in random order."""
    picked = []
    for kind, n in (("explicit", n_explicit), ("implicit", n_implicit)):
        pool = getattr(qs, kind)
        picked += [(pool[int(i)], kind) for i in rng.permutation(len(pool))[:n]]
    if not picked:  # the asked kinds are missing for this category: take one of the other kind
        pool = [(q, k) for k in KINDS for q in getattr(qs, k)]
        picked = [pool[int(rng.integers(len(pool)))]]
    return [picked[int(i)] for i in rng.permutation(len(picked))]
