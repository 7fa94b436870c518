"""The one base class of the mistakes a user can make (a missing file, a bad option or spec).

The ``think2seg`` command prints any :class:`UserError` as one line, ``think2seg COMMAND: error: MESSAGE``,
and exits with status 2 (``think2seg --debug ...`` shows the traceback instead). Every subclass's message
names the file or option at fault.

>>> issubclass(ModelNotFoundError, FileNotFoundError), issubclass(ModelNotFoundError, UserError)
(True, True)
"""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A mistake in the user's input; the message names the file or option at fault."""


class ModelNotFoundError(UserError, FileNotFoundError):
    """A model directory (or hub id) that does not exist or does not hold a loadable model."""


class ConfigNotFoundError(UserError, FileNotFoundError):
    """A ``--config`` file that does not exist."""


def config_file(path: str | Path, option: str = "--config") -> Path:
    """``path`` if it is a file, else :class:`ConfigNotFoundError` naming ``option`` and the path."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigNotFoundError(f"{option} {path}: no such file" + (" (it is a folder)" if p.is_dir() else ""))
    return p


class CLIError(UserError):
    """A bad command-line option: printed without a traceback, exit status 2. Name the option at fault."""
