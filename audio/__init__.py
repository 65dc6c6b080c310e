"""piece: render a text and a score file into a finished, mastered audio piece."""

__version__ = "0.1.0"
