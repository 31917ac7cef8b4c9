"""The `relais` command: ``root`` is the main group; one module per command group (``api``, ``as2``,
``sftp``, ``web``, ...), the options and helpers they share in ``common``."""

from relais.cli.root import main

__all__ = ["main"]
