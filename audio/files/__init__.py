"""Reading and writing files: atomic staging, RIFF chunks, tags and cover images, ffmpeg."""
