"""Files on disk: atomic staging of outputs and cache entries, RIFF chunks, tags and cover images,
ffmpeg, and the float frames a render works in."""
