"""Video files: frames -> a video (or animated image) through ffmpeg with the workflow inside, and back.
Beside the motion core, which knows nothing of files like these."""
