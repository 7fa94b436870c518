"""Evaluation: a prompter and a segmenter over a dataset split -> a run directory of records and metrics.

The engine (:mod:`.engine`) is resumable and data-parallel (:mod:`.shards`); :mod:`.score` re-scores
completions produced elsewhere; :mod:`.records` is the one owner of a run directory's files.
"""
