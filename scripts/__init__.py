"""Release tooling (run as scripts; a package so that tests and mypy can import them)."""
