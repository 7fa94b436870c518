"""The options several subcommands share: one flag, one default constant, one help string each.

    >>> import argparse
    >>> p = argparse.ArgumentParser(); add_segmenter(p); add_style(p)
    >>> p.parse_args([]).segmenter == DEFAULT_SEGMENTER, p.parse_args([]).style
    (True, 'bbox+2pos')

Defaults come from the registries that own them (:data:`~think2seg.segmenters.spec.DEFAULT_SEGMENTER`,
:data:`~think2seg.core.styles.DEFAULT_STYLE`, :data:`~think2seg.core.metrics.DEFAULT_PROTOCOL`), and help
strings from the spec grammars (:data:`~think2seg.segmenters.spec.SPEC_HELP`), so that a new backend,
style or protocol shows up in every command at once.
"""

from __future__ import annotations

import argparse

from think2seg.core.metrics import DEFAULT_PROTOCOL, PROTOCOLS
from think2seg.core.styles import DEFAULT_STYLE, STYLES
from think2seg.data.formats import FORMATS
from think2seg.segmenters.spec import DEFAULT_SEGMENTER, SPEC_HELP

DATA_HELP = f"dataset spec FORMAT:DIR with FORMAT one of {', '.join(FORMATS)} (a bare DIR means earthreason)"
ON_ERROR_CHOICES = ("raise", "skip")


def add_segmenter(p: argparse.ArgumentParser, default: str = DEFAULT_SEGMENTER, what: str = "") -> None:
    """``--segmenter SPEC`` (default: the embedded default segmenter)."""
    p.add_argument("--segmenter", default=default, help=f"{what}{SPEC_HELP} (default: %(default)s)")


def add_style(p: argparse.ArgumentParser, default: str | None = DEFAULT_STYLE) -> None:
    """``--style NAME``: the prompt combination of the answers (Table 6); ``default`` None: the command
    resolves it (e.g. a training run's own style)."""
    told = "%(default)s" if default else f"{DEFAULT_STYLE} unless the command takes it from elsewhere"
    p.add_argument("--style", default=default, choices=sorted(STYLES),
                   help=f"prompt combination of the answers (default: {told})")


def add_protocol(p: argparse.ArgumentParser, several: bool = False) -> None:
    """``--protocol NAME`` (``several``: one or more)."""
    if several:
        p.add_argument("--protocol", nargs="+", default=[DEFAULT_PROTOCOL], choices=sorted(PROTOCOLS),
                       help="evaluation protocol(s), one or more (default: %(default)s)")
    else:
        p.add_argument("--protocol", default=DEFAULT_PROTOCOL, choices=sorted(PROTOCOLS),
                       help="evaluation protocol (default: %(default)s)")


def add_data(p: argparse.ArgumentParser, required: bool = True, what: str = "") -> None:
    """``--data SPEC`` (required unless ``required=False``: then the command checks it; ``what`` ends the help)."""
    p.add_argument("--data", required=required, default=None, help=DATA_HELP + what)


def add_on_error(p: argparse.ArgumentParser, what: str) -> None:
    """``--on-error raise|skip`` for bad ``what`` (stop naming it, or skip and record it)."""
    p.add_argument("--on-error", default="raise", choices=ON_ERROR_CHOICES,
                   help=f"{what}: stop naming the first, or skip and record each (default: %(default)s)")
