"""SynthEarth question templates: implicit (functional, reasoning) and explicit (naming the category).

>>> import numpy as np
>>> qs = make_questions(np.random.default_rng(0), "runway", n_implicit=2, n_explicit=1)
>>> [kind for _, kind in qs].count("implicit")
2

Implicit questions never contain a word of the category's name (tests check it); explicit ones always
contain the singular or plural name. :func:`referring_expression` writes instance-level expressions
(RRSIS-D / RISBench style) and :func:`semantic_phrase` category-level phrases (RefSegRS style).
"""

from __future__ import annotations

import numpy as np

from think2seg.data.scenes import CATEGORIES, InstanceInfo

IMPLICIT: dict[str, list[str]] = {
    "water_body": [
        "Where could a boat float in this scene?",
        "Which area could a town draw its drinking supply from?",
        "Where might fish live in this image?",
        "Which surface would mirror the sky on a calm day?",
    ],
    "runway": [
        "Where could a plane take off?",
        "Which strip of pavement is built for aircraft to accelerate on?",
        "Where would an arriving jet touch down?",
        "Which long paved surface do pilots use for landing and departure?",
    ],
    "storage_tank": [
        "Which structures could hold fuel or oil in bulk?",
        "Where might a refinery keep its liquid reserves?",
        "Which round containers store liquids or gas?",
        "What would an inspector check for petroleum leaks?",
    ],
    "greenhouse": [
        "Which structures keep crops in a controlled climate?",
        "Where could vegetables be grown all through the winter?",
        "Which translucent sheds trap sunlight for plants?",
        "Where would a grower raise seedlings under glass or plastic?",
    ],
    "solar_farm": [
        "Which installation turns sunlight into electricity?",
        "Where is renewable power generated from the sun's rays?",
        "Which arrays of dark panels feed energy into the grid?",
        "What would a photovoltaic engineer come here to maintain?",
    ],
    "building": [
        "Where do people live or work indoors?",
        "Which roofed structures could be homes or offices?",
        "Which structures would be counted in a housing census?",
        "Where could residents take shelter from the rain?",
    ],
    "road": [
        "Where could a car drive through this area?",
        "Which paved routes carry everyday traffic?",
        "Along what would a delivery truck travel between towns?",
        "Which lanes with painted centre lines connect places for vehicles?",
    ],
    "bridge": [
        "What lets vehicles cross the river?",
        "Which structure spans the water so traffic can pass over it?",
        "How could a pedestrian reach the other bank without getting wet?",
        "Which raised deck connects the two shores?",
    ],
    "sports_track": [
        "Where could athletes run a 400-metre race?",
        "Which facility hosts sprint and relay competitions?",
        "Where might a school hold its athletics day?",
        "Which oval with running lanes surrounds a grass pitch?",
    ],
    "parking_lot": [
        "Where could visitors leave their cars?",
        "Which paved area is marked out for stationary vehicles?",
        "Where would a shopper look for a free space for the car?",
        "Which area is filled with rows of parked vehicles?",
    ],
    "farmland": [
        "Where are crops grown out in the open air?",
        "Which land is cultivated to produce food?",
        "Where would a tractor work during the harvest?",
        "Which ploughed plots show rows of planted crops?",
    ],
    "forest": [
        "Where could timber be harvested?",
        "Which area is densely covered by trees?",
        "Where might deer hide under a thick canopy?",
        "Which woodland would a ranger patrol for wildfires?",
    ],
    "tennis_court": [
        "Where could two players hit a ball over a net?",
        "Which facility is used for singles or doubles matches with rackets?",
        "Where might a club hold a racket sport tournament?",
        "Which small rectangular pitches are marked with service lines?",
    ],
    "swimming_pool": [
        "Where could someone cool off with a swim?",
        "Which small basins hold clear water for bathing?",
        "Where would a lifeguard keep watch at a private home?",
        "Which bright blue basins are used for diving and laps?",
    ],
    "airplane": [
        "What could carry passengers through the sky?",
        "Which vehicles are waiting for their next flight?",
        "What would be refuelled before a long-haul journey?",
        "Which winged vehicles are parked on the ground here?",
    ],
}

EXPLICIT: list[str] = [
    "the {plural}",
    "Segment all {plural} in this image.",
    "Where are the {plural}?",
    "Find every {singular} in the picture.",
    "Please locate the {plural}.",
    "Show me the {plural} in this aerial image.",
]

SEMANTIC: list[str] = ["{plural}", "the {plural}", "all {plural}", "{plural} in the image"]


def name_words(category: str) -> set[str]:
    """Lower-case words of the category's singular and plural names."""
    c = CATEGORIES[category]
    return set(c.singular.split()) | set(c.plural.split())


def make_questions(
    rng: np.random.Generator, category: str, n_implicit: int = 2, n_explicit: int = 1
) -> list[tuple[str, str]]:
    """``[(question, kind), ...]`` about ``category`` in random order; kind is implicit|explicit."""
    c = CATEGORIES[category]
    imp = [IMPLICIT[category][i] for i in rng.permutation(len(IMPLICIT[category]))[:n_implicit]]
    exp = [EXPLICIT[i].format(singular=c.singular, plural=c.plural)
           for i in rng.permutation(len(EXPLICIT))[:n_explicit]]
    qs = [(q, "implicit") for q in imp] + [(q, "explicit") for q in exp]
    return [qs[i] for i in rng.permutation(len(qs))]


def semantic_phrase(rng: np.random.Generator, category: str) -> str:
    """A short category-level phrase (RefSegRS style), e.g. ``"storage tanks"``."""
    c = CATEGORIES[category]
    return SEMANTIC[int(rng.integers(len(SEMANTIC)))].format(plural=c.plural)


_EXTREMES = [  # (word, key to maximise)
    ("leftmost", lambda b, a: -(b[0] + b[2])),
    ("rightmost", lambda b, a: b[0] + b[2]),
    ("topmost", lambda b, a: -(b[1] + b[3])),
    ("bottommost", lambda b, a: b[1] + b[3]),
    ("largest", lambda b, a: a),
    ("smallest", lambda b, a: -a),
]


def describable(index: int, same: list[InstanceInfo]) -> list[str]:
    """Extremal words that single out ``same[index]`` among instances of its category (clear margin)."""
    words = []
    for word, key in _EXTREMES:
        vals = [key(i.box, i.area) for i in same]
        best = vals[index]
        rest = [v for j, v in enumerate(vals) if j != index]
        margin = 0.15 * abs(best) if word in ("largest", "smallest") else 4
        if all(best > v + margin for v in rest):
            words.append(word)
    return words


def referring_expression(rng: np.random.Generator, index: int, same: list[InstanceInfo], size: int) -> str | None:
    """An instance-level expression for ``same[index]`` (all of one category), or None if ambiguous."""
    c = CATEGORIES[same[index].category]
    b = same[index].box
    cx, cy = (b[0] + b[2]) / 2 / size, (b[1] + b[3]) / 2 / size
    v = "upper " if cy < 0.4 else "lower " if cy > 0.6 else ""
    hz = "left" if cx < 0.4 else "right" if cx > 0.6 else ""
    where = {"": "in the centre", "upper ": "at the top", "lower ": "at the bottom"}[v] if not hz else (
        f"in the {v}{hz}" if v else f"on the {hz}")
    if len(same) == 1:
        options = [f"the {c.singular}", f"the {c.singular} {where} of the image", f"a {c.singular}"]
        return options[int(rng.integers(len(options)))]
    words = describable(index, same)
    if not words:
        return None
    w = words[int(rng.integers(len(words)))]
    options = [f"the {w} {c.singular}", f"the {w} of the {c.plural}", f"the {w} {c.singular} {where}"]
    return options[int(rng.integers(len(options)))]
