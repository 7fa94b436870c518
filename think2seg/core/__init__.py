"""The pipeline's vocabulary, shared by every stage and importing none of them.

Value types (:mod:`.types`), prompt styles and the instruction template (:mod:`.styles`), completion
parsing and its policies (:mod:`.parsing`, :mod:`.parsing_released`), coordinate spaces
(:mod:`.geometry`), mask -> prompt geometry (:mod:`.mask_to_prompts`), metrics under named protocols
(:mod:`.metrics`), spec strings (:mod:`.specs`), user errors (:mod:`.errors`), model directories,
provenance, process ranks and drawing.

    >>> from think2seg.core.styles import DEFAULT_STYLE
    >>> DEFAULT_STYLE
    'bbox+2pos'
"""
