"""The release, in a room of its own so every layer can read it without importing the package's front door."""

__version__ = "0.1.0"
