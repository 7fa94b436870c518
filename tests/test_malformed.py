"""The malformed-answer mix and the parse-policy effects it measures (think2seg bench parse)."""

import numpy as np

from think2seg.cli import main
from think2seg.core.parsing import parse_completion
from think2seg.reports.malformed import MUTATIONS, malformed_mix, policy_effects


def test_mix_is_seeded_and_starts_from_released_valid_answers():
    a, b = malformed_mix(60, seed=3), malformed_mix(60, seed=3)
    assert [c[0] for c in a] == [c[0] for c in b]
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    assert {c[2] for c in malformed_mix(300, seed=0)} == set(MUTATIONS)
    for text, mask, kind in a:
        if kind == "none":
            r = parse_completion(text, image_size=128, policy="released-train")
            assert r.json_ok and r.is_empty == (not mask.any())


def test_policy_effects_follow_the_policies_rules(capsys):
    res = policy_effects(malformed_mix(400, seed=1))
    by = res["changed_by_mutation"]
    assert by["no_fence"]["released-train"] == 1.0 and by["no_fence"]["released-test"] < 0.1
    assert by["uppercase_fence"]["released-train"] == 1.0 and by["uppercase_fence"]["released-test"] == 0.0
    assert by["stray_brackets"] == {"released-train": 0.0, "released-test": 0.0}
    assert by["no_positive_points"]["released-train"] == 0.0 and by["no_positive_points"]["released-test"] > 0.8
    g = res["authors_gIoU"]
    assert g["lenient"] > g["released-test"] > g["released-train"]
    assert main(["bench", "parse", "--n", "50"]) == 0
    out = capsys.readouterr().out
    assert "no_fence" in out and "authors-protocol gIoU: lenient" in out
