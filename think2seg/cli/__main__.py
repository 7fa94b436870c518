"""``python -m think2seg.cli`` (and ``accelerate launch -m think2seg.cli eval ...``): the ``think2seg`` command."""

from think2seg.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
