"""pytest plugin for inert's testing toolkit (registered through the ``pytest11`` entry point)."""
