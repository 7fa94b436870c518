"""The dataset registry's names: the on-disk formats every loader, writer and ``--format`` option accepts,
and the split names.

    >>> FORMATS[0], SPLITS
    ('earthreason', ('train', 'val', 'test'))
"""

FORMATS = ("earthreason", "rrsisd", "refsegrs", "risbench")
SPLITS = ("train", "val", "test")
