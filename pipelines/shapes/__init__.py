"""The shapes world: scenes, captions, rendering and a classical judge for the bundled model."""
