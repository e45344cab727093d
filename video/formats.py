"""The output formats of Video Combine, and which of them this machine's ffmpeg can write.

Every format is always listed: one whose encoder is missing stays in the table and
`format_availability` says why, so a saved workflow never loses its format silently.
"""

import functools
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import VideoError

FFMPEG_ENV = "ANIMATEDIFF_FFMPEG"
PRORES_PROFILES = ("auto", "proxy", "lt", "standard", "hq", "4444", "4444xq")


@dataclass(frozen=True)
class EncodeSettings:
    """Per-format knobs; each format reads only the ones that apply to it."""

    crf: int = 19
    pix_fmt: str = "auto"
    webp_quality: int = 90
    webp_lossless: bool = False
    prores_profile: str = "auto"


# Options of each encoder that no setting changes.
_ENCODER_OPTIONS = {
    "libx264": ["-preset", "medium"],
    # hvc1 is the tag Safari and QuickTime require to play HEVC in MP4.
    "libx265": ["-preset", "medium", "-tag:v", "hvc1", "-x265-params", "log-level=error"],
    "libvpx-vp9": ["-b:v", "0", "-deadline", "good", "-cpu-used", "2", "-row-mt", "1"],
    "libsvtav1": ["-preset", "8"],
    "libaom-av1": ["-b:v", "0", "-cpu-used", "6", "-row-mt", "1"],
    # apl0 makes Apple software treat the file as genuine ProRes.
    "prores_ks": ["-vendor", "apl0"],
    # Level 3 with intra-only frames is the archival profile: any frame decodes alone.
    "ffv1": ["-level", "3", "-g", "1"],
}


@dataclass(frozen=True)
class VideoFormat:
    name: str
    extension: str  # "" for a folder of numbered frames
    muxer: str
    encoders: tuple[str, ...]  # candidates, the first one present is used
    pix_fmts: tuple[str, ...]  # allowed values of the pix_fmt setting; the first is the default
    alpha_pix_fmt: str | None  # default when the frames carry alpha; None: the format drops alpha
    audio_codec: str | None
    metadata: str  # how prompt/workflow are stored: "tags", "ebml", "webp", "gif" or "png"
    browser_pix_fmts: tuple[str, ...]  # pix_fmts a browser plays as-is; anything else gets a preview file
    loops_natively: bool  # the file itself carries a loop count (else loops are repeated frames)
    even_size: bool  # the encoder refuses odd width/height
    crf_max: int = 0  # 0: the format has no crf

    @property
    def is_sequence(self) -> bool:
        return self.extension == ""

    def resolve_pix_fmt(self, settings: EncodeSettings, has_alpha: bool) -> str:
        if settings.pix_fmt != "auto":
            if settings.pix_fmt not in self.pix_fmts:
                raise VideoError(f"pix_fmt {settings.pix_fmt!r} does not fit {self.name}; "
                                 f"choose 'auto' or one of {', '.join(self.pix_fmts)}.")
            return settings.pix_fmt
        if "prores_ks" in self.encoders and settings.prores_profile != "auto":  # the profile decides
            if settings.prores_profile.startswith("4444"):
                return "yuva444p10le" if has_alpha else "yuv444p10le"
            return "yuv422p10le"
        return self.alpha_pix_fmt if has_alpha and self.alpha_pix_fmt else self.pix_fmts[0]

    def codec_args(self, encoder: str, s: EncodeSettings) -> list[str]:
        args = ["-crf", str(s.crf)] if self.crf_max else []
        if encoder == "libwebp_anim":
            args += ["-lossless", str(int(s.webp_lossless)), "-quality", str(s.webp_quality)]
        if encoder == "prores_ks":
            args += ["-profile:v", s.prores_profile]
        return args + _ENCODER_OPTIONS.get(encoder, [])


FORMATS: dict[str, VideoFormat] = {f.name: f for f in (
    VideoFormat("image/gif", "gif", "gif", ("gif",), ("pal8",), None, None, "gif", (), True, False),
    VideoFormat("image/webp", "webp", "webp", ("libwebp_anim",), ("bgra",), None, None, "webp", ("bgra",), True, False),
    VideoFormat("video/h264-mp4", "mp4", "mp4", ("libx264",), ("yuv420p", "yuv420p10le", "yuv444p"), None,
                "aac", "tags", ("yuv420p",), False, True, crf_max=51),
    VideoFormat("video/h265-mp4", "mp4", "mp4", ("libx265",), ("yuv420p", "yuv420p10le", "yuv444p10le"), None,
                "aac", "tags", (), False, True, crf_max=51),
    VideoFormat("video/webm", "webm", "webm", ("libvpx-vp9",), ("yuv420p", "yuva420p", "yuv444p", "yuv420p10le"),
                "yuva420p", "libopus", "ebml", ("yuv420p", "yuva420p"), False, False, crf_max=63),
    VideoFormat("video/av1-webm", "webm", "webm", ("libsvtav1", "libaom-av1"), ("yuv420p", "yuv420p10le"), None,
                "libopus", "ebml", ("yuv420p", "yuv420p10le"), False, False, crf_max=63),
    VideoFormat("video/prores-mov", "mov", "mov", ("prores_ks",), ("yuv422p10le", "yuv444p10le", "yuva444p10le"),
                "yuva444p10le", "pcm_s16le", "tags", (), False, True),
    VideoFormat("video/ffv1-mkv", "mkv", "matroska", ("ffv1",), ("bgr0", "bgra", "rgb48le"), "bgra",
                "flac", "ebml", (), False, False),
    VideoFormat("image/png-sequence", "", "image2", ("png",), ("rgb24", "rgba", "rgb48be", "rgba64be"), "rgba",
                None, "png", (), False, False),
)}


# Formats whose file ComfyUI's frontend reads the workflow back from when it is dropped on it
# (its readers: PNG, WebP, MP4/MOV and WebM; none for GIF or Matroska). The first-frame PNG
# saved beside every video restores it too.
RESTORES_WORKFLOW = frozenset(FORMATS) - {"image/gif", "video/ffv1-mkv"}


def ffmpeg_exe() -> str:
    """The ffmpeg to run: the user's (ANIMATEDIFF_FFMPEG, IMAGEIO_FFMPEG_EXE) or imageio-ffmpeg's own binary.

    imageio-ffmpeg falls back to a system ffmpeg when it has no binary of its own; that one
    is refused, because its encoders are unknown: the user must point at it on purpose.
    """
    chosen = os.environ.get(FFMPEG_ENV)
    if chosen:
        if not os.access(chosen, os.X_OK):
            raise VideoError(f"{FFMPEG_ENV}={chosen!r} is not an executable file.")
        return chosen
    try:
        import imageio_ffmpeg
    except ImportError:
        raise VideoError("No ffmpeg: the imageio-ffmpeg package is not installed (pip install imageio-ffmpeg), "
                         f"and {FFMPEG_ENV} is not set.") from None
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as e:
        raise VideoError(f"No ffmpeg: {e} Or set {FFMPEG_ENV}.") from None
    bundled_dir = Path(imageio_ffmpeg.__file__).resolve().parent
    if os.environ.get("IMAGEIO_FFMPEG_EXE") or bundled_dir in Path(exe).resolve().parents:
        return exe
    raise VideoError(f"imageio-ffmpeg has no ffmpeg binary for this platform (it found {exe!r} on the system). "
                     f"To use that one, set {FFMPEG_ENV}={exe}.")


@functools.cache
def _encoders_of(exe: str) -> frozenset[str]:
    listing = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True, check=True).stdout
    # Rows look like " V....D libx264   description"; the header rows before "------" are a legend.
    rows = listing.split("------", 1)[-1].splitlines()
    return frozenset(row.split()[1] for row in rows if len(row.split()) > 1)


def format_availability() -> dict[str, str | None]:
    """Every format name -> None when it can be written here, else the reason it cannot."""
    try:
        exe = ffmpeg_exe()
        encoders = _encoders_of(exe)
    except (VideoError, OSError, subprocess.CalledProcessError) as e:
        return {name: str(e) for name in FORMATS}
    return {
        name: None if any(e in encoders for e in f.encoders)
        else f"{exe} has no {' or '.join(f.encoders)} encoder; point {FFMPEG_ENV} at an ffmpeg that has it."
        for name, f in FORMATS.items()
    }


def pick_encoder(fmt: VideoFormat) -> tuple[str, str]:
    """(ffmpeg exe, encoder) for `fmt`, or a VideoError saying why it cannot be written."""
    reason = format_availability()[fmt.name]
    if reason is not None:
        raise VideoError(f"Format {fmt.name} is not available: {reason}")
    exe = ffmpeg_exe()
    return exe, next(e for e in fmt.encoders if e in _encoders_of(exe))
