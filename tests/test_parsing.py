"""parse_completion: a table of what real LVLMs emit, and a property-based fuzz test (>= 10,000 cases)."""

import json
import math
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from think2seg.core.parsing import MAX_CHARS, parse_completion
from think2seg.core.types import Instance

RELEASED_FORMAT = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)
GOOD = '{"bbox_2d": [10,20,300,90], "positive_points": [[50, 55], [200, 60]]}'
INST = Instance((10, 20, 300, 90), ((50, 55), (200, 60)))


def wrap(answer: str, think: str = "a runway") -> str:
    return f"<think>{think}</think>\n<answer>{answer}</answer>"


# (completion, expected instances, think_answer_ok, json_ok, is_empty, repaired)
CASES = {
    "fenced": (wrap(f"```json[{GOOD}]```"), [INST], True, True, False, False),
    "no fence": (wrap(f"[{GOOD}]"), [INST], True, True, False, False),
    "stray closing brackets": (wrap(f"```json[{GOOD}]]]```"), [INST], True, True, False, False),
    "trailing comma": (wrap(f"[{GOOD},]"), [INST], True, True, False, True),
    "single quotes": (wrap("[" + GOOD.replace('"', "'") + "]"), [INST], True, True, False, True),
    "numbers as strings and floats": (
        wrap('[{"bbox_2d": ["10", 20.4, "300.0", 89.6], "positive_points": [["50", 55], [199.5, 60]]}]'),
        [INST],
        True,
        True,
        False,
        False,
    ),
    "swapped corners": (
        wrap('[{"bbox_2d": [300,90,10,20], "positive_points": [[50, 55], [200, 60]]}]'),
        [INST],
        True,
        True,
        False,
        False,
    ),
    "outside the image -> clipped": (
        wrap('[{"bbox_2d": [-5,20,900,90], "positive_points": [[50, 55], [2000, -3]]}]'),
        [Instance((0, 20, 839, 90), ((50, 55), (839, 0)))],
        True,
        True,
        False,
        False,
    ),
    "empty answer": (wrap("```json[]```"), [], True, True, True, False),
    "empty answer without fence": (wrap("[]", think="no tanks here"), [], True, True, True, False),
    "single object, not a list": (wrap(GOOD), [INST], True, True, False, False),
    "duplicate boxes dropped": (
        wrap(f'[{GOOD}, {{"bbox_2d": [12,22,298,88], "positive_points": [[60, 50], [100, 50]]}}]'),
        [INST],
        True,
        True,
        False,
        False,
    ),
    "wrong point count rejects that instance": (
        wrap(f'[{GOOD}, {{"bbox_2d": [500,500,600,600], "positive_points": [[550, 550]]}}]'),
        [INST],
        True,
        False,
        False,
        False,
    ),
    "NaN rejects the instance": (
        wrap('[{"bbox_2d": [NaN,20,300,90], "positive_points": [[50, 55], [200, 60]]}]'),
        [],
        True,
        False,
        False,
        False,
    ),
    "missing box": (wrap('[{"positive_points": [[50, 55], [200, 60]]}]'), [], True, False, False, False),
    "no answer tags": ("<think>hm</think> I cannot answer.", [], False, False, False, False),
    "missing think": (f"<answer>[{GOOD}]</answer>", [INST], False, True, False, False),
    "text after answer breaks the tag format": (
        wrap(f"[{GOOD}]") + " extra",
        [INST],
        False,
        True,
        False,
        False,
    ),
    "whitespace between tags is fine": (
        f"<think>x</think> \n\t <answer>[{GOOD}]</answer>",
        [INST],
        True,
        True,
        False,
        False,
    ),
    "garbage JSON": (wrap("```json[{bbox_2d: ???}]```"), [], True, False, False, True),
    "not JSON at all": (wrap("the runway is at the top"), [], True, False, False, False),
    "a number, not a list": (wrap("42"), [], True, False, False, False),
}


@pytest.mark.parametrize("name", list(CASES))
def test_parse_table(name):
    text, instances, tags_ok, json_ok, empty, repaired = CASES[name]
    r = parse_completion(text)
    assert r.instances == instances, (r.error, r.warnings)
    assert r.think_answer_ok is tags_ok
    assert r.json_ok is json_ok, (r.error, r.warnings)
    assert r.is_empty is empty
    assert r.repaired is repaired
    if not json_ok:
        assert r.error or r.warnings  # a rejection always says why


def test_think_text_extracted():
    assert parse_completion(wrap("[]", think=" planes need runways ")).think == "planes need runways"


def test_styles():
    two_pos = parse_completion(wrap('[{"positive_points": [[5, 6], [7, 8]]}]'), style="2pos")
    assert two_pos.json_ok and two_pos.instances == [Instance(None, ((5, 6), (7, 8)))]
    neg = parse_completion(
        wrap(
            '[{"bbox_2d": [0,0,50,50], "positive_points": [[5, 6], [7, 8]], "negative_points": [[60, 60], [70, 70]]}]'
        ),
        style="bbox+2pos+2neg",
    )
    assert neg.json_ok and neg.instances[0].negative == ((60, 60), (70, 70))
    assert not parse_completion(wrap(f"[{GOOD}]"), style="bbox+2pos+2neg").json_ok  # negatives missing
    assert not parse_completion(wrap(f"[{GOOD}]"), style="bbox+4pos").json_ok


def test_point_outside_box_kept_with_warning():
    r = parse_completion(wrap('[{"bbox_2d": [0,0,50,50], "positive_points": [[5, 6], [700, 800]]}]'))
    assert r.json_ok and r.instances[0].positive[1] == (700, 800)
    assert any("outside its box" in w for w in r.warnings)


def test_image_size_used_for_clipping():
    r = parse_completion(
        wrap('[{"bbox_2d": [0,0,500,500], "positive_points": [[5, 6], [7, 8]]}]'), image_size=(112, 224)
    )
    assert r.instances[0].box == (0, 0, 111, 223)


def test_instance_count_is_capped():
    many = ", ".join(
        f'{{"bbox_2d": [{i * 20},{0},{i * 20 + 10},10], "positive_points": [[{i * 20 + 1}, 1], [{i * 20 + 2}, 2]]}}'
        for i in range(40)
    )
    r = parse_completion(wrap(f"[{many}]"), max_instances=8)
    assert len(r.instances) == 8 and any("capped" in w for w in r.warnings)


def test_huge_input_is_bounded_in_time():
    payload = "<think>" + "</think>" * 200_000 + "<answer>" + "[" * 100_000 + "</answer>"
    t0 = time.perf_counter()
    r = parse_completion(payload)
    assert time.perf_counter() - t0 < 2.0
    assert not r.usable and len(r.text) > MAX_CHARS


def test_non_string_input():
    assert parse_completion(None).error and parse_completion(12345).error


# ----------------------------------------------------------------------------------------------
# property-based: generated and mutated completions never raise and give consistent results

coord = st.one_of(
    st.integers(-2000, 3000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.none(),
)
point = st.lists(coord, min_size=0, max_size=3)
instance = st.dictionaries(
    st.sampled_from(["bbox_2d", "positive_points", "negative_points", "bbox", "label"]),
    st.one_of(st.lists(coord, max_size=5), st.lists(point, max_size=5), coord),
    max_size=4,
)
answer_value = st.one_of(st.lists(instance, max_size=6), instance, coord)


def _json(v) -> str:
    return json.dumps(v, allow_nan=True, default=str)


mutations = st.lists(
    st.tuples(st.sampled_from(["delete", "insert", "dup"]), st.integers(0, 10_000), st.text(max_size=6)),
    max_size=4,
)


@st.composite
def completions(draw):
    v = _json(draw(answer_value))
    think = draw(st.text(max_size=30))
    fence = draw(st.booleans())
    body = f"```json{v}```" if fence else v
    text = draw(
        st.sampled_from(
            [
                f"<think>{think}</think>\n<answer>{body}</answer>",
                f"<think>{think}</think><answer>{body}</answer>]]",
                f"<answer>{body}</answer>",
                f"<think>{think}</think>{body}",
                body,
            ]
        )
    )
    for op, pos, s in draw(mutations):
        pos = pos % (len(text) + 1)
        if op == "delete":
            text = text[:pos] + text[pos + len(s) :]
        elif op == "insert":
            text = text[:pos] + s + text[pos:]
        else:
            text = text + text[pos:]
    return text, draw(st.sampled_from(["bbox", "2pos", "bbox+2pos", "bbox+4pos", "bbox+2pos+2neg"]))


@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(completions(), st.sampled_from([(840, 840), (112, 112), (896, 448)]))
def test_fuzz_never_raises_and_is_consistent(case, size):
    text, style = case
    r = parse_completion(text, style=style, image_size=size)
    assert r.error is None or not r.error.startswith("internal"), r.error
    w, h = size
    for inst in r.instances:
        if inst.box is not None:
            x1, y1, x2, y2 = inst.box
            assert 0 <= x1 <= x2 < w and 0 <= y1 <= y2 < h
        for x, y in inst.positive + inst.negative:
            assert 0 <= x < w and 0 <= y < h and isinstance(x, int) and isinstance(y, int)
    assert not (r.is_empty and r.instances)
    if r.is_empty:
        assert r.json_ok
    if r.json_ok and not r.is_empty:
        assert r.instances  # a valid non-empty answer gives prompts
    # the linear-time check agrees with the released reward's regex
    assert r.think_answer_ok == bool(RELEASED_FORMAT.fullmatch(r.text))
    assert json.loads(json.dumps(r.to_record()))  # records are serialisable
    assert all(not math.isnan(v) for i in r.instances for v in (i.box or ()))
