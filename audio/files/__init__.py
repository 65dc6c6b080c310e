"""Reading and writing files: atomic staging, RIFF chunks, tags, ffmpeg."""
