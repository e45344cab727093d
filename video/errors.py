"""The errors of video writing and reading."""


class VideoError(ValueError):
    """A request the video code cannot carry out (a bad setting, file name or folder); the
    message names the input and says what to do."""


class VideoEncodeError(RuntimeError):
    """ffmpeg failed; the message names the format and quotes ffmpeg."""
