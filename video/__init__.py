"""Video files: frames -> a video (or animated image) through ffmpeg with the workflow inside, and back.

Beside the motion core, which knows nothing of files like these: ``files`` encodes and
decodes, ``formats`` is the table of output formats, ``metadata`` writes the prompt and
workflow where each container keeps them, ``whole_files`` makes every file the pack writes
appear whole or not at all.
"""
