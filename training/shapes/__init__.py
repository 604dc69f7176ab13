"""Training recipe for the bundled `shapes` model (see training/README.md)."""
