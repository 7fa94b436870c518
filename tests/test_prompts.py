"""Prompt styles and templates; the reference instruction must match the released text byte for byte."""

import re
from pathlib import Path

import pytest

from think2seg.core.parsing import parse_completion
from think2seg.core.styles import (
    REFERENCE_SYSTEM,
    STYLES,
    build_messages,
    format_answer,
    instruction_text,
)
from think2seg.core.types import Instance

# The instruction the released checkpoints were trained on (docs/method.md). Note the two
# spaces after "1." and "2.", the space after "</think>" and no newline after "</answer>".
EXPECTED_SYSTEM = (
    "You are a remote sensing analysis assistant. Your task is to generate spatial prompts for the "
    "Segment Anything Model (SAM) based on a user's request."
)
EXPECTED_USER = (
    'Please find "Where could a plane take off?", identify the target. For each target instance, provide:\n'
    "1.  `bbox_2d`: A tight bounding box.\n"
    "2.  `positive_points`: Exactly two points, placed inside the target.\n"
    "Output your thinking process in <think> </think> tags.\n"
    "Output the final answer in <answer> </answer> tags with the specified JSON format. If no targets are "
    "found, output an empty list.\n"
    "i.e. <think> thinking process here </think> \n"
    '<answer>```json[{"bbox_2d": [310,360,567,586], "positive_points": [[434, 474], [450, 460]]}, '
    '{"bbox_2d": [10,200,100,320], "positive_points": [[50, 250], [90, 300]]}]```</answer>'
)


def test_reference_template_is_byte_exact():
    msgs = build_messages("Where could a plane take off?")
    assert msgs[0] == {"role": "system", "content": [{"type": "text", "text": EXPECTED_SYSTEM}]}
    assert msgs[1]["role"] == "user"
    assert msgs[1]["content"][0] == {"type": "image"}
    assert msgs[1]["content"][1] == {"type": "text", "text": EXPECTED_USER}
    assert REFERENCE_SYSTEM == EXPECTED_SYSTEM


def test_docs_method_shows_the_reference_instruction():
    """docs/method.md prints the instruction for readers: it must be the very text the code sends."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "method.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```text\n(.*?)\n```\n", doc, re.DOTALL)
    assert EXPECTED_SYSTEM in blocks
    assert instruction_text("{Question}") in blocks


@pytest.mark.parametrize(
    "style, items, keys",
    [
        ("bbox", ["`bbox_2d`"], {"bbox_2d"}),
        ("2pos", ["`positive_points`: Exactly two points"], {"positive_points"}),
        ("bbox+2pos", ["`bbox_2d`", "Exactly two points"], {"bbox_2d", "positive_points"}),
        ("bbox+4pos", ["`bbox_2d`", "Exactly four points"], {"bbox_2d", "positive_points"}),
        (
            "bbox+2pos+2neg",
            ["`negative_points`: Exactly two points"],
            {"bbox_2d", "positive_points", "negative_points"},
        ),
    ],
)
def test_styles_adapt_items_and_example(style, items, keys):
    text = instruction_text("the runway", style)
    for item in items:
        assert item in text
    # the example in the instruction parses under its own style with the right keys
    example = text.split("i.e. ", 1)[1]
    r = parse_completion(example.replace("thinking process here", "x"), style)
    assert r.json_ok and r.think_answer_ok, r
    assert len(r.instances) == 2
    assert set(r.instances[0].to_json()) == keys
    assert len(r.instances[0].positive) == STYLES[style].n_pos


def test_compact_template_has_no_system_and_image_first():
    msgs = build_messages("the greenhouses", template="compact", image="IMG")
    assert [m["role"] for m in msgs] == ["user"]
    assert msgs[0]["content"][0] == {"type": "image", "image": "IMG"}
    assert msgs[0]["content"][1]["text"].startswith("the greenhouses")


def test_qfirst_template_puts_the_question_before_the_image():
    msgs = build_messages("the greenhouses", template="compact-qfirst", image="IMG")
    assert [part["type"] for part in msgs[0]["content"]] == ["text", "image"]
    assert msgs[0]["content"][0]["text"] == build_messages("the greenhouses", template="compact")[0]["content"][1]["text"]


def test_unknown_style_and_template_are_named():
    with pytest.raises(ValueError, match=re.escape("'bbox+3pos'")):
        build_messages("q", style="bbox+3pos")
    with pytest.raises(ValueError, match="'fancy'"):
        build_messages("q", template="fancy")


def test_format_answer_round_trips_through_the_parser():
    insts = [
        Instance((1, 2, 30, 40), ((5, 6), (7, 8))),
        Instance((100, 100, 200, 220), ((150, 150), (160, 170))),
    ]
    r = parse_completion(format_answer(insts, think="two tanks"))
    assert r.format_ok and r.instances == insts and r.think == "two tanks"
    assert parse_completion(format_answer([], think="none")).is_empty
