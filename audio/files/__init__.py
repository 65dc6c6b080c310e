"""Files on disk: how outputs, cache entries and working audio are read and written."""
