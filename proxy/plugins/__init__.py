"""Request plugins and response checks that are pure translation: no I/O (docs/routing.md)."""
