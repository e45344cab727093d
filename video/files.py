"""Frames -> a finished video file through ffmpeg, and video files -> frames.

Frames are streamed to one ffmpeg process one at a time, so memory does not grow with
the frame count. That process writes the video, the first frame as PNG and, for formats
a browser cannot show, an animated WebP preview, all under temporary names that are
renamed only when everything succeeded.
"""

import contextlib
import ctypes
import logging
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from .errors import VideoEncodeError, VideoError
from .formats import FORMATS, EncodeSettings, VideoFormat, ffmpeg_exe, pick_encoder
from .metadata import add_gif_comments, add_png_text, add_webp_exif, ffmetadata_file_text, metadata_texts
from .whole_files import atomic_path, scratch_dir

log = logging.getLogger(__name__)

PREVIEW_MAX_SIDE = 512
SEQUENCE_PATTERN = "frame_%05d.png"


@dataclass(frozen=True)
class SavedVideo:
    video: Path  # a file, or a folder of frames for image/png-sequence
    first_frame: Path | None  # PNG with the same metadata; None where the video is already PNGs
    preview: Path  # what the UI should show: the video itself, or an animated WebP beside it
    notes: tuple[str, ...] = ()  # what was changed or dropped to fit the format, for the user to see


# ---------------------------------------------------------------- output names

_PREFIX_TOKENS = {"%year%": "%Y", "%month%": "%m", "%day%": "%d", "%hour%": "%H", "%minute%": "%M", "%second%": "%S"}


def resolve_output_stem(output_dir: str | Path, filename_prefix: str, width: int = 0, height: int = 0,
                        input_name: str = "filename_prefix") -> Path:
    """output_dir/<subfolders>/<name>_<counter> with the next free counter; creates the folders.

    `filename_prefix` may hold subfolders and the tokens %width% %height% %year% %month%
    %day% %hour% %minute% %second% (as SaveImage); anything leading outside output_dir is refused.
    Errors name `input_name`, the node input the prefix came from.
    """
    prefix = filename_prefix.replace("%width%", str(width)).replace("%height%", str(height))
    for token, code in _PREFIX_TOKENS.items():
        prefix = prefix.replace(token, time.strftime(code))
    named = f"{input_name} {filename_prefix!r}"
    bad = sorted({repr(c) for c in prefix if ord(c) < 32 or (os.name == "nt" and c in '<>:"|?*')})
    if bad:
        raise VideoError(
            f"{named} contains {', '.join(bad)}, which file names cannot hold: use "
            "letters, digits, spaces, '-', '_' and '.', with '/' between subfolders.")
    parts = re.split(r"[\\/]+", prefix.strip())
    if not prefix.strip() or not parts[-1] or parts[-1] in (".", ".."):
        raise VideoError(f"{named} has no file name; give one like 'AnimateDiff' or 'videos/cat'.")
    if re.match(r"[A-Za-z]:|[\\/]", prefix) or ".." in parts:  # a drive, root or UNC path, or a way up
        raise VideoError(
            f"{named} points outside {output_dir}; "
            "use a name or a relative subfolder such as 'videos/cat' (no '..', no absolute path).")
    folder = Path(os.path.abspath(output_dir)).joinpath(*parts[:-1])
    try:
        folder.mkdir(parents=True, exist_ok=True)
        existing = os.listdir(folder)
    except OSError as e:
        raise VideoError(f"Cannot write to the folder {folder}: {e.strerror or e}.") from None
    name = parts[-1]
    used = (re.match(re.escape(name) + r"_(\d{5,})(?![^._])", entry) for entry in existing)
    counter = max((int(m.group(1)) for m in used if m), default=0) + 1
    return folder / f"{name}_{counter:05}"


def playback_order(frame_count: int, pingpong: bool, repeats: int) -> list[int]:
    """Frame indices in the order they are written.

    pingpong goes back without repeating either end frame (0 1 2 3 2 1), so that
    playing it in a loop never shows a frame twice in a row; `repeats` extra plays
    emulate a loop count in formats that have none.
    """
    order = list(range(frame_count))
    if pingpong:
        order += order[-2:0:-1]
    return order * (1 + repeats)


# ---------------------------------------------------------------- encoding

def _packed_rgb(alpha: bool, deep: bool, endian: str) -> str:
    if deep:
        return ("rgba64" if alpha else "rgb48") + endian
    return "rgba" if alpha else "rgb24"


def _packed_frame(frame: Any, channels: int, deep: bool) -> np.ndarray:
    """One IMAGE frame (H, W, C floats in 0..1) as packed rgb24/rgba, or 16-bit rgb48le/rgba64le."""
    frame = torch.as_tensor(frame).float().cpu()
    if frame.shape[-1] == 1:
        frame = frame.expand(*frame.shape[:-1], 3)
    # .contiguous(): frames from VAE Decode are permuted views, and elementwise maths keeps
    # their strides, so the bytes handed to ffmpeg would not be packed.
    frame = frame[..., :channels].contiguous()
    if deep:
        return (frame * 65535).round_().clamp_(0, 65535).numpy().astype("<u2")
    return (frame * 255).round_().clamp_(0, 255).to(torch.uint8).numpy()


def _video_args(fmt: VideoFormat, encoder: str, pix_fmt: str, settings: EncodeSettings, loop_count: int,
                width: int, height: int, has_alpha: bool) -> list[str]:
    """The options of the video output itself: codec, filters, colour tags, loops."""
    filters, tags = [], []
    pad_w, pad_h = (width % 2, height % 2) if fmt.even_size else (0, 0)
    if pad_w or pad_h:
        filters.append(f"pad={width + pad_w}:{height + pad_h}:0:0,fillborders=right={pad_w}:bottom={pad_h}:mode=smear")
    if pix_fmt.startswith("yuv"):
        # Convert and tag as BT.709 so browsers and players agree on the colours.
        filters.append(f"scale=out_color_matrix=bt709:out_range=tv,format={pix_fmt}")
        tags += ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv"]
    if fmt.muxer == "gif":
        # One palette per frame keeps memory flat: a global palette would need every frame twice.
        # palettegen's cost grows with the number of distinct colours, so it counts a subsample
        # (~64k pixels: 3x faster at 512x512, same PSNR); Bayer dithering does not crawl between
        # frames the way error diffusion does, and gives smaller files.
        step = max(1, math.isqrt(width * height // 65536))
        sample = f"scale=iw/{step}:ih/{step}:flags=neighbor," if step > 1 else ""
        filters.append(f"split[a][b];[a]{sample}palettegen=stats_mode=single:reserve_transparent={int(has_alpha)}[p];"
                       f"[b][p]paletteuse=new=1:dither=bayer")
        tags += ["-loop", str(loop_count)]  # GIF: number of repeats after the first play, 0 = forever
    if fmt.muxer == "webp":
        tags += ["-loop", str(loop_count + 1 if loop_count else 0)]  # WebP: number of plays, 0 = forever
    if fmt.muxer in ("mp4", "mov"):
        # Metadata keys other than the standard ones are dropped unless asked for; faststart puts
        # them at the front, where the frontend's reader (first 64 MB) finds them.
        tags += ["-movflags", "+faststart+use_metadata_tags"]
    vf = ["-vf", ",".join(filters)] if filters else []
    return ["-c:v", encoder, "-pix_fmt", pix_fmt, *fmt.codec_args(encoder, settings), *vf, *tags]


def _checked_format(frames: Any, format_name: str, frame_rate: float, settings: EncodeSettings) -> VideoFormat:
    """The format of a request, once the request is known to fit it."""
    fmt = FORMATS.get(format_name)
    if fmt is None:
        raise VideoError(f"Unknown format {format_name!r}; choose one of {', '.join(FORMATS)}.")
    if len(frames) == 0:
        raise VideoError("Video Combine got 0 frames: there is nothing to write. Check the node feeding 'images'.")
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3, 4):
        raise VideoError(f"images must be (frames, height, width, 1|3|4 channels); got shape {tuple(frames.shape)}.")
    if not frame_rate > 0:
        raise VideoError(f"frame_rate must be above 0; got {frame_rate}.")
    if fmt.crf_max and not 0 <= settings.crf <= fmt.crf_max:
        raise VideoError(f"crf {settings.crf} is out of range for {fmt.name}: use 0 (best) to {fmt.crf_max}.")
    return fmt


def save_video(
    frames: Any,
    format_name: str,
    output_dir: str | Path,
    filename_prefix: str,
    *,
    frame_rate: float,
    preview_dir: str | Path,
    settings: EncodeSettings = EncodeSettings(),
    loop_count: int = 0,
    pingpong: bool = False,
    metadata: Mapping[str, Any] | None = None,
    audio: tuple[Any, int] | None = None,
    on_frame: Callable[[int, int], None] | None = None,
) -> SavedVideo:
    """Encode `frames` (N, H, W, C floats in 0..1, torch or numpy) into `format_name`.

    loop_count: extra plays after the first, 0 = forever (GIF/WebP); other formats repeat
    the frames that many times. metadata: JSON-able values by key ("prompt", "workflow"),
    stored wherever the format can hold them. audio: (waveform (channels, samples), sample
    rate), fitted to the video's length. on_frame(done, total) is called after each frame.
    """
    fmt = _checked_format(frames, format_name, frame_rate, settings)
    exe, encoder = pick_encoder(fmt)
    height, width, channels = frames.shape[1:]
    has_alpha = channels == 4
    pix_fmt = fmt.resolve_pix_fmt(settings, has_alpha)
    send_alpha = has_alpha and (pix_fmt.startswith("yuva") or pix_fmt in ("bgra", "rgba", "rgba64be", "pal8"))
    deep = any(depth in pix_fmt for depth in ("10", "12", "16", "48", "64"))
    notes = []
    if has_alpha and not send_alpha:
        notes.append(f"{fmt.name} with pix_fmt {pix_fmt} has no alpha channel: the frames' transparency was "
                     "dropped (webp, vp9 webm, ProRes 4444, ffv1 mkv and png keep it).")
    if audio is not None and fmt.audio_codec is None:
        notes.append(f"{fmt.name} cannot carry audio: the audio input was ignored.")
        audio = None
    if fmt.even_size and (width % 2 or height % 2):
        notes.append(f"{fmt.name} needs an even width and height: {width}x{height} was padded to "
                     f"{width + width % 2}x{height + height % 2} by repeating the last column/row.")
    for note in notes:
        log.warning("Video Combine: %s", note)

    order = playback_order(len(frames), pingpong, 0 if fmt.loops_natively or fmt.is_sequence else loop_count)
    stem = resolve_output_stem(output_dir, filename_prefix, width, height)
    video_path = Path(f"{stem}.{fmt.extension}") if fmt.extension else stem
    preview_stem = None if pix_fmt in fmt.browser_pix_fmts else resolve_output_stem(preview_dir, stem.name + "-preview")
    final = SavedVideo(
        video=video_path,
        first_frame=None if fmt.is_sequence else Path(f"{stem}.png"),
        preview=video_path if preview_stem is None else Path(f"{preview_stem}.webp"),
        notes=tuple(notes),
    )
    texts = metadata_texts(metadata or {}, braces_in_strings_escaped=fmt.metadata == "ebml")

    with scratch_dir("video") as side_dir, _written_atomically(final, fmt.is_sequence) as partial:
        side_inputs, main_maps = _side_inputs(Path(side_dir), fmt, texts, audio, len(order) / frame_rate)
        main_target = partial[final.video] / SEQUENCE_PATTERN if fmt.is_sequence else partial[final.video]
        cmd = [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", _packed_rgb(send_alpha, deep, "le"),
               "-s", f"{width}x{height}", "-framerate", repr(float(frame_rate)), "-i", "pipe:0", *side_inputs,
               "-map", "0:v", *main_maps,
               *_video_args(fmt, encoder, pix_fmt, settings, loop_count, width, height, send_alpha),
               "-f", fmt.muxer, str(main_target)]
        if final.first_frame is not None:
            # 16-bit when the frames are: ffmpeg's 16-to-8-bit conversion is off by up to 2 levels.
            cmd += ["-map", "0:v", "-frames:v", "1", "-c:v", "png", "-pix_fmt", _packed_rgb(send_alpha, deep, "be"),
                    "-f", "image2", "-update", "1", str(partial[final.first_frame])]
        if final.preview != final.video:
            cmd += ["-map", "0:v", "-vf", f"scale='min({PREVIEW_MAX_SIDE},iw)':'min({PREVIEW_MAX_SIDE},ih)'"
                    ":force_original_aspect_ratio=decrease",
                    "-c:v", "libwebp_anim", "-quality", "75", "-compression_level", "1", "-loop", "0",
                    "-f", "webp", str(partial[final.preview])]
        _run_encoder(cmd, fmt, (_packed_frame(frames[i], 4 if send_alpha else 3, deep) for i in order),
                     len(order), on_frame)
        _embed_file_metadata(fmt, partial, final, texts, width, height, send_alpha)
    log.info("Video Combine wrote %s (%d frames, %s, %s).", final.video, len(order), encoder, pix_fmt)
    return final


def _side_inputs(side_dir: Path, fmt: VideoFormat, texts: dict[str, str], audio: tuple[Any, int] | None,
                 seconds: float) -> tuple[list[str], list[str]]:
    """ffmpeg inputs after the frames (metadata file, audio), and the main output's maps for them.

    Metadata goes through a file because one command-line argument is limited to 128 KB on
    Linux, and workflows are often bigger.
    """
    inputs, maps = [], []
    if texts and fmt.metadata in ("tags", "ebml"):
        meta_file = side_dir / "metadata.txt"
        meta_file.write_text(ffmetadata_file_text(texts), encoding="ascii")
        inputs += ["-f", "ffmetadata", "-i", str(meta_file)]
        maps += ["-map_metadata", "1"]
    if audio is not None:
        waveform, sample_rate = audio
        wave = torch.as_tensor(waveform).float().cpu().numpy()  # (channels, samples)
        # Interleaved float32, padded with silence or cut to the video's length.
        samples = np.zeros((round(seconds * sample_rate), wave.shape[0]), dtype="<f4")
        used = min(len(samples), wave.shape[1])
        samples[:used] = wave[:, :used].T
        audio_file = side_dir / "audio.f32"
        samples.tofile(audio_file)
        audio_index = 1 + inputs.count("-i")  # the frames are input 0
        inputs += ["-f", "f32le", "-ar", str(int(sample_rate)), "-ac", str(samples.shape[1]), "-i", str(audio_file)]
        maps += ["-map", f"{audio_index}:a", "-c:a", fmt.audio_codec]
    return inputs, maps


@contextlib.contextmanager
def _written_atomically(final: SavedVideo, video_is_dir: bool):
    """Temporary twins of the final paths: all renamed to them if the block succeeds, deleted if not."""
    paths = list(dict.fromkeys(p for p in (final.video, final.first_frame, final.preview) if p is not None))
    with contextlib.ExitStack() as twins:
        partial = {path: twins.enter_context(atomic_path(path)) for path in paths}
        for path, twin in partial.items():  # made now, so an unwritable folder is reported before encoding
            try:
                twin.mkdir() if video_is_dir and path == final.video else twin.touch(exist_ok=False)
            except OSError as e:
                raise VideoError(f"Cannot write to the folder {path.parent}: {e.strerror or e}.") from None
        yield partial


def _killed_with_parent():
    """Runs in ffmpeg just before exec: the kernel kills it when the process that started it dies,
    so a killed server leaves no encoder finishing a partial file behind it."""
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG from <linux/prctl.h>


def _run_encoder(cmd: list[str], fmt: VideoFormat, packed_frames, total: int, on_frame) -> None:
    env = dict(os.environ, SVT_LOG="1")  # SVT-AV1 prints banners to stderr unless told not to
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr, env=env,
                                preexec_fn=_killed_with_parent if sys.platform.startswith("linux") else None)
        try:
            for done, frame in enumerate(packed_frames, 1):
                proc.stdin.write(frame.data)  # the array's own buffer: no copy to bytes
                if on_frame is not None:
                    on_frame(done, total)
            proc.stdin.close()
        except BrokenPipeError:
            pass  # ffmpeg stopped early; its exit code and message below say why
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        returncode = proc.wait()
        if returncode != 0:
            stderr.seek(0)
            message = stderr.read().decode("utf-8", "replace").strip()[-2000:]
            raise VideoEncodeError(f"Writing {fmt.name} failed: ffmpeg exited with code {returncode}: {message}")


def _embed_file_metadata(fmt: VideoFormat, partial: dict[Path, Path], final: SavedVideo,
                         texts: dict[str, str], width: int, height: int, has_alpha: bool) -> None:
    if not texts:
        return
    video = partial[final.video]
    if fmt.metadata == "webp":
        add_webp_exif(video, texts, width, height, has_alpha)
    elif fmt.metadata == "gif":
        add_gif_comments(video, texts)
    # The first frame as PNG: the file beside the video, or the first of a PNG sequence.
    add_png_text(video / (SEQUENCE_PATTERN % 1) if final.first_frame is None else partial[final.first_frame], texts)
    if final.preview != final.video:  # the animated WebP the node shows carries the workflow too
        scale = min(1.0, PREVIEW_MAX_SIDE / max(width, height))
        add_webp_exif(partial[final.preview], texts, round(width * scale), round(height * scale), has_alpha)


# ---------------------------------------------------------------- decoding

@dataclass(frozen=True)
class DecodedVideo:
    frames: np.ndarray  # (N, H, W, 3) uint8
    fps: float  # of the returned frames (after every_nth)


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
FOLDER_FRAME_RATE = 8.0  # images carry no frame rate: a folder plays at AnimateDiff's usual rate


def folder_images(folder: str | Path) -> list[Path]:
    """The image files directly in `folder`, in natural name order (frame2 before frame10)."""
    def natural(path: Path):
        return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]

    images = [p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
    return sorted(images, key=natural)


def read_video_frames(path: str | Path, *, max_frames: int = 0, skip_first: int = 0, every_nth: int = 1,
                      size: tuple[int, int] | None = None) -> DecodedVideo:
    """Decode a video, animated image, image-pattern path ("dir/frame_%05d.png") or folder of
    images (natural name order, FOLDER_FRAME_RATE, all scaled to the first one's size) to RGB frames.

    max_frames: 0 = all; skip_first frames are dropped, then every `every_nth` frame is kept;
    size (width, height) resizes, -1 for one side keeps the aspect ratio.
    """
    if every_nth < 1 or skip_first < 0 or max_frames < 0:
        raise VideoError("read_video_frames: every_nth must be >= 1, skip_first and max_frames >= 0.")
    filters = [f"trim=start_frame={skip_first}", f"select='not(mod(n,{every_nth}))'"]
    if size is not None:
        filters.append(f"scale={size[0]}:{size[1]}:flags=lanczos")
    is_folder = Path(path).is_dir()
    with scratch_dir("read") as scratch:
        source = ["-i", str(path)]
        if is_folder:
            images = folder_images(path)
            if not images:
                raise VideoError(f"{path} holds no images ({', '.join(IMAGE_EXTENSIONS)}).")
            lines = ["ffconcat version 1.0"]  # a script playing the images in order
            for image in images:
                quoted = str(image.resolve()).replace("'", "'\\''")
                lines += [f"file '{quoted}'", f"duration {1 / FOLDER_FRAME_RATE}"]
            script = Path(scratch) / "frames.ffconcat"
            script.write_text("\n".join(lines) + "\n", encoding="utf-8")
            source = ["-f", "concat", "-safe", "0", "-i", str(script)]
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", *source, "-map", "0:v:0", "-vf", ",".join(filters),
               "-fps_mode", "passthrough", "-f", "image2pipe", "-c:v", "pam", "-pix_fmt", "rgb24"]
        if max_frames:
            cmd += ["-frames:v", str(max_frames)]
        result = subprocess.run(cmd + ["pipe:1"], capture_output=True)
    log_text = result.stderr.decode("utf-8", "replace")
    if result.returncode != 0:
        raise VideoEncodeError(
            f"Reading {path} failed: ffmpeg exited with code {result.returncode}: {log_text.strip()[-2000:]}")
    if is_folder:
        fps = FOLDER_FRAME_RATE / every_nth
    else:
        rate = re.search(r"Video:.*?([\d.]+)(k?) (?:fps|tbr)", log_text)
        fps = float(rate.group(1)) * (1000 if rate.group(2) else 1) / every_nth if rate else 0.0
    frames = _pam_images(result.stdout)
    width, height = size or (0, 0)
    empty = np.zeros((0, max(height, 0), max(width, 0), 3), np.uint8)
    return DecodedVideo(np.stack(frames) if frames else empty, fps)


def _pam_images(data: bytes) -> list[np.ndarray]:
    """The images of a PAM stream (ffmpeg's image2pipe of the pam codec), as views into `data`."""
    images, pos = [], 0
    while pos < len(data):
        start = data.index(b"ENDHDR\n", pos) + len(b"ENDHDR\n")
        header = dict(line.split(b" ", 1) for line in data[pos:start].splitlines()[1:-1])  # between P7 and ENDHDR
        shape = (int(header[b"HEIGHT"]), int(header[b"WIDTH"]), int(header[b"DEPTH"]))
        images.append(np.frombuffer(data, np.uint8, math.prod(shape), start).reshape(shape))
        pos = start + math.prod(shape)
    return images
