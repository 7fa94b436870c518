"""Spread over seeds in Tables 1 and 6 (sampled rows: mean, ± std, seeds n) and GrabCut's stability under
perturbations that stand in for another machine (think2seg.evaluation.stability)."""

import math

import pytest

from think2seg.evaluation.engine import EvalConfig, evaluate
from think2seg.evaluation.spread import fmt, parse_seeds, spread, spread_columns
from think2seg.evaluation.stability import PERTURBATIONS, perturb_run, tolerance


def test_spread_and_seed_parsing():
    s = spread([{"gIoU": 0.1, "n": 4}, {"gIoU": 0.3, "n": 4}])
    assert s["gIoU"]["mean"] == pytest.approx(0.2) and s["gIoU"]["std"] == pytest.approx(math.sqrt(0.02))
    assert fmt(s["gIoU"]) == "20.0 ± 14.1 (n=2)"
    assert spread([{"gIoU": 0.5}])["gIoU"]["std"] == 0.0
    cols = spread_columns([{"gIoU": 0.1, "cIoU": 0.2, "n": 4}, {"gIoU": 0.3, "cIoU": 0.2, "n": 4}], "val", ("gIoU", "cIoU"))
    assert cols["val gIoU"] == pytest.approx(20) and cols["val cIoU ±"] == 0 and cols["val seeds"] == 2 and cols["val n"] == 4
    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_seeds("3-5") == [3, 4, 5]
    for bad in ("", "a", "1,1"):
        with pytest.raises(ValueError, match="seeds"):
            parse_seeds(bad)


@pytest.mark.slow
def test_table1_and_table6_sampled_rows_carry_the_spread(tiny_policy, synth_root, tmp_path):
    from think2seg.reports.ablations import table6
    from think2seg.reports.benchmarks import table1

    data = f"earthreason:{synth_root}"
    t1 = table1({"oracle": "oracle?image_size=128"}, tmp_path, data=data, splits=("val",), protocols=("authors",),
                limit=2, sampled={"tiny": f"tiny:{tiny_policy}"}, sample_seeds=(0, 1))
    row = t1.loc[("authors", "tiny (T=1)")]
    assert row["val seeds"] == 2 and row["val n"] == 2 and row["val gIoU ±"] >= 0
    assert math.isnan(t1.loc[("authors", "oracle"), "val seeds"])  # greedy rows: one number
    t6 = table6({}, tmp_path, styles=("bbox+2pos",), data=data, splits=("val",), limit=2,
                sampled={"tiny": f"tiny:{tiny_policy}"}, sample_seeds=(0, 1))
    assert t6.loc[("bbox+2pos", "tiny (T=1)"), "val seeds"] == 2
    with pytest.raises(ValueError, match="temperature > 0"):
        table1({}, tmp_path, data=data, splits=("val",), sampled={"tiny": "tiny"}, sample_temperature=0)


@pytest.mark.slow
def test_perturbations_rescore_a_grabcut_run(synth_root, tmp_path):
    run = tmp_path / "oracle-2pos"
    m = evaluate(EvalConfig(data=f"earthreason:{synth_root}", out=str(run), split="val", prompter="oracle?image_size=128",
                            style="2pos", questions="all", limit=4), progress=False)
    df = perturb_run(run, ("none", "rng_seed_1", "points_1px"))
    assert len(df) == 3 * m["n"] and set(df["perturbation"]) == {"none", "rng_seed_1", "points_1px"}
    # no perturbation re-creates the run's own numbers (GrabCut is deterministic on one machine)
    none = df[df["perturbation"] == "none"]
    assert none["iou"].mean() == pytest.approx(m["gIoU"], abs=1e-12)
    tol = tolerance(df)
    assert tol["n"] == m["n"] and tol["gIoU"] >= 0 and tol["cIoU"] >= 0
    assert set(tol["flipping"]) <= set(none["id"])
    assert set(PERTURBATIONS) >= {"none", "no_simd", "threads_1", "rng_seed_1", "image_lsb", "points_1px"}
