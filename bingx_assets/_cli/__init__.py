"""The `bingx-assets` command: `_main` parses and runs the commands, `_render` draws
their tables, progress and JSON, `_keys_command` edits keys files."""

from ._main import main

__all__ = ["main"]
