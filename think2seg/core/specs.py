"""Spec strings with options: ``NAME?key=value&key=value`` (prompters, datasets).

>>> split_options("hf:/m?family=llava&batch_size=2", "prompter spec")
('hf:/m', {'family': 'llava', 'batch_size': '2'})
"""

from __future__ import annotations

from urllib.parse import unquote


def split_options(spec: str, what: str) -> tuple[str, dict[str, str]]:
    """``(head, {key: raw value})`` of ``spec``: the text before the last ``?`` and its ``&``-joined
    ``key=value`` options (values percent-decoded, ``+`` kept: ``bbox+2pos``). An option that is not
    ``key=value`` is a ValueError naming ``what``."""
    if "?" not in spec:
        return spec, {}
    head, query = spec.rsplit("?", 1)
    options: dict[str, str] = {}
    for part in filter(None, query.split("&")):
        key, eq, raw = part.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"{what} option {part!r} is not key=value (options are joined by '&')")
        options[key.strip()] = unquote(raw)
    return head, options
