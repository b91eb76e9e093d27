"""One strategy per resource kind: defaults, validation, status ownership, table columns."""
