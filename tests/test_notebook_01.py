"""Finding notebooks by prefix (notebook 01 itself runs in tests/test_notebooks.py with the smoke profile)."""

from __future__ import annotations

import pytest

from think2seg.reports.reproduce import find_notebook, notebook_defaults


def test_find_notebook_by_prefix_and_errors():
    assert find_notebook("01").stem == "01_dataset_exploration"
    with pytest.raises(FileNotFoundError, match="no notebook"):
        find_notebook("99_nothing")


def test_dataset_parameter_is_named_data_everywhere():
    for nb in ("01", "02", "03", "04", "05"):
        params = notebook_defaults(nb)
        assert "data" in params and "dataset" not in params, nb
