"""The numbers the README's results page (docs/results.md) quotes (reports/quoted.json) match the committed reports within each row's
tolerance, with the row's n, and still appear where they are quoted."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
QUOTED = json.loads((ROOT / "reports" / "quoted.json").read_text())
ROUNDING = 0.05  # quotes have one decimal


def _measured(q):
    if "table" in q:
        df = pd.read_csv(ROOT / q["table"])
        hit = df
        for col, val in q["row"].items():
            hit = hit[hit[col] == val]
        assert len(hit) == 1, f"{q['table']}: {len(hit)} rows match {q['row']}"
        row = hit.iloc[0]
        n_col = q["column"].split(" ")[0] + " n"
        return float(row[q["column"]]), (int(row[n_col]) if n_col in row else None)
    value = json.loads((ROOT / q["json"]).read_text())
    for key in q["path"]:
        value = value[key]
    return float(value), q.get("n")


@pytest.mark.parametrize("q", QUOTED["quotes"], ids=lambda q: f"{q.get('table', q.get('json'))}:{q.get('row', q.get('path'))}:{q.get('column', '')}")
def test_quote_matches_the_report_within_its_tolerance(q):
    value, n = _measured(q)
    assert math.isfinite(q["tolerance"]) and q["tolerance"] >= 0
    assert abs(value - q["quoted"]) <= ROUNDING + q["tolerance"], f"report has {value:.2f}, quoted {q['quoted']}"
    if n is not None:
        assert n == q["n"], f"n is {n} in the report, {q['n']} in quoted.json"
    assert q["stable"] == (q["tolerance"] <= QUOTED["stable_below"]), "stable must follow the tolerance"
    where = (ROOT / q["where"]).read_text()
    assert f"{q['quoted']:.1f}" in where, f"{q['quoted']:.1f} is no longer quoted in {q['where']}"


def test_every_unstable_row_says_why():
    for q in QUOTED["quotes"]:
        if not q["stable"]:
            assert q.get("why"), q
