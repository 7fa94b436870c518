"""The question-independent baseline prompter."""

import pytest

from think2seg.core.parsing import parse_completion
from think2seg.core.types import Instance
from think2seg.prompters import build_prompter


def test_same_prompt_for_every_sample_in_image_fractions():
    p = build_prompter("fixed?box=0.1,0.2,0.9,1.0&points=0.5,0.5,0.25,0.75&image_size=101")
    outs = p.generate([object(), object()], n=2)
    assert len(outs) == 2 and all(len(o) == 2 for o in outs) and len({t for o in outs for t in o}) == 1
    r = parse_completion(outs[0][0], image_size=p.image_size)
    assert r.format_ok and r.instances == [Instance((10, 20, 90, 100), ((50, 50), (25, 75)))]


def test_styles_and_bad_options_are_named():
    r = parse_completion(build_prompter("fixed", style="bbox").generate([None])[0][0], style="bbox")
    assert r.json_ok and r.instances[0].positive == () and r.instances[0].box == (59, 59, 780, 780)  # 0.07 and 0.93 of 839
    with pytest.raises(ValueError, match="box="):
        build_prompter("fixed?box=0.1,0.2,1.5,0.9")
    with pytest.raises(ValueError, match="needs 2 points"):
        build_prompter("fixed?points=0.5,0.5")
