"""Subcommands of the ``think2seg`` CLI (see think2seg/cli.py for the contract)."""
