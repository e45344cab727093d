"""Video Combine's core with the real ffmpeg of imageio-ffmpeg: every format round-trips,
metadata reads back where ComfyUI's frontend looks for it, and failures leave no files."""

import json
import logging
import math
import os
import re
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from video.errors import VideoError
from video.files import (
    SEQUENCE_PATTERN,
    VideoEncodeError,
    playback_order,
    read_video_frames,
    resolve_output_stem,
    save_video,
)
from video.formats import FFMPEG_ENV, FORMATS, EncodeSettings, ffmpeg_exe, format_availability

FPS = 8.0
FRAMES, HEIGHT, WIDTH = 16, 48, 64
# Characters that are special in ffmetadata, JSON, EBML brace counting and PNG text.
PROMPT = {"3": {"class_type": "KSampler", "inputs": {"text": "a=b; #c \\ d\nnext {cat|dog} }{ é", "seed": 7}}}
WORKFLOW = {"nodes": [{"id": 3, "widgets_values": ["{x}", 1.5]}], "links": [], "version": 0.4}
METADATA = {"prompt": PROMPT, "workflow": WORKFLOW}
LOSSLESS = {"video/ffv1-mkv", "image/png-sequence"}
MIN_PSNR = {"image/gif": 22, "image/webp": 30, "video/h264-mp4": 30, "video/h265-mp4": 30, "video/webm": 30,
            "video/av1-webm": 30, "video/prores-mov": 34}  # 4:2:0 and 4:2:2 chroma bound these
AUDIO_FORMATS = [name for name, f in FORMATS.items() if f.audio_codec]


def moving_frames(count=FRAMES, height=HEIGHT, width=WIDTH, alpha=False):
    """A colour pattern that moves a sixteenth of its period per frame: neighbours differ clearly."""
    y = torch.linspace(0, 1, height)[:, None]
    x = torch.linspace(0, 1, width)[None, :]
    frames = []
    for t in range(count):
        phase = 2 * math.pi * t / 16
        channels = [0.5 + 0.5 * torch.sin(2 * math.pi * x * 1.5 + phase + y),
                    0.5 + 0.5 * torch.cos(2 * math.pi * y * 1.2 - phase + x),
                    (x + y) / 2 * torch.ones_like(x)]
        if alpha:
            channels.append(torch.clamp(x * 2 - t / count, 0, 1) * torch.ones_like(y))
        frames.append(torch.stack(channels, -1))
    return torch.stack(frames)


def as_uint8(frames):
    return (frames * 255).round().clamp(0, 255).to(torch.uint8).numpy()


def as_uint16(frames):
    return (frames * 65535).round().clamp(0, 65535).numpy().astype(np.uint16)


def raw_frames(path, count=1, pix_fmt="rgb48le"):
    """Decode to 16-bit RGB without going through 8 bits, or to 8-bit RGBA (read_video_frames reads RGB)."""
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", pix_fmt, "-"],
                         capture_output=True, check=True).stdout
    dtype, channels = {"rgb48le": ("<u2", 3), "rgba": (np.uint8, 4)}[pix_fmt]
    return np.frombuffer(out, dtype).reshape(count, HEIGHT, WIDTH, channels)


def psnr(decoded, expected):
    mse = np.mean((decoded.astype(np.float64) - expected.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255 ** 2 / mse)


def decodable(saved):
    return saved.video / SEQUENCE_PATTERN if saved.video.is_dir() else saved.video


def save(frames, format_name, tmp_path, **kwargs):
    kwargs.setdefault("metadata", METADATA)
    return save_video(frames, format_name, tmp_path / "output", "clip", frame_rate=FPS,
                      preview_dir=tmp_path / "temp", **kwargs)


def all_files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# --- metadata readers, written from the file format specs and the frontend's readers ----------

def ffmetadata_of(path):
    """Global tags as ffmpeg reads them (keys lower-cased: Matroska stores them upper-case)."""
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "ffmetadata", "-"],
                         capture_output=True, text=True, check=True).stdout
    tags = {}
    for line in re.split(r"(?<!\\)\n", out)[1:]:
        key, sep, value = line.partition("=")
        if sep:
            tags[key.lower()] = re.sub(r"\\(.)", r"\1", value, flags=re.S)
    return tags


def png_text_chunks(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    texts, pos = {}, 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"tEXt":
            key, _, value = data[pos + 8:pos + 8 + length].partition(b"\0")
            texts[key.decode("latin-1")] = value.decode("latin-1")
        pos += 12 + length
    return texts


def webp_chunks(path):
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8, "RIFF size must cover the whole file"
    chunks, pos = [], 12
    while pos < len(data):
        kind, length = struct.unpack("<4sI", data[pos:pos + 8])
        chunks.append((kind, data[pos + 8:pos + 8 + length]))
        pos += 8 + length + (length & 1)
    return chunks


def webp_exif_fields(path):
    """ASCII entries of the EXIF IFD as "key:value", the way the frontend's getWebpMetadata reads them."""
    chunks = dict(webp_chunks(path))
    assert chunks[b"VP8X"][0] & 0x08, "VP8X must flag the EXIF chunk"
    tiff = chunks[b"EXIF"]
    assert tiff[:4] == b"II*\0"
    ifd = struct.unpack("<I", tiff[4:8])[0]
    fields = {}
    for i in range(struct.unpack("<H", tiff[ifd:ifd + 2])[0]):
        tag, kind, count, offset = struct.unpack("<HHII", tiff[ifd + 2 + 12 * i:ifd + 14 + 12 * i])
        assert kind == 2
        key, _, value = tiff[offset:offset + count - 1].decode("utf-8").partition(":")
        fields[key] = value
    return fields


def gif_blocks(path):
    """(label, payload) of every extension block, walking the GIF structure."""
    data = path.read_bytes()
    assert data[:6] in (b"GIF87a", b"GIF89a")
    pos = 13 + (3 * 2 ** ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    blocks = []

    def sub_blocks(pos):
        parts = []
        while data[pos]:
            parts.append(data[pos + 1:pos + 1 + data[pos]])
            pos += 1 + data[pos]
        return b"".join(parts), pos + 1

    while data[pos] != 0x3B:
        if data[pos] == 0x21:
            label = data[pos + 1]
            payload, pos = sub_blocks(pos + 2)
            blocks.append((label, payload))
        elif data[pos] == 0x2C:
            flags = data[pos + 9]
            pos += 10 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0) + 1
            _, pos = sub_blocks(pos)
        else:
            raise AssertionError(f"unexpected GIF block 0x{data[pos]:02x}")
    assert pos == len(data) - 1, "the trailer must be the last byte"
    return blocks


def gif_comments(path):
    return dict(p.decode("ascii").split(":", 1) for label, p in gif_blocks(path) if label == 0xFE)


def gif_loop_count(path):
    netscape = [p for label, p in gif_blocks(path) if label == 0xFF and p.startswith(b"NETSCAPE2.0")]
    return struct.unpack("<H", netscape[0][12:14])[0] if netscape else None


def isobmff_frontend_metadata(data):
    """The frontend's getFromIsobmffFile: moov/udta/meta with mdta 'keys' and 'ilst' items holding JSON."""
    def find(start, end, kind):
        pos = start
        while pos < end - 8:
            size = struct.unpack(">I", data[pos:pos + 4])[0]
            if size < 8:
                pos += 1
                continue
            if data[pos + 4:pos + 8] == kind:
                return pos + 8, pos + size
            if pos + size > end:
                return None
            pos += size
        return None

    udta = find(0, len(data), b"udta")
    if udta is None:
        moov = find(0, len(data), b"moov")
        udta = find(moov[0], moov[1], b"udta")
    meta = find(udta[0], udta[1], b"meta")
    keys_start, keys_end = find(meta[0] + 4, meta[1], b"keys")
    names, pos = {}, keys_start + 8
    for index in range(1, struct.unpack(">I", data[keys_start + 4:keys_start + 8])[0] + 1):
        size = struct.unpack(">I", data[pos:pos + 4])[0]
        names[index] = data[pos + 8:pos + size].decode()
        pos += size
    ilst_start, ilst_end = find(meta[0] + 4, meta[1], b"ilst")
    found, pos = {}, ilst_start
    while pos < ilst_end - 8:
        size, index = struct.unpack(">II", data[pos:pos + 8])
        value_start, value_end = find(pos + 8, pos + size, b"data")
        value = data[value_start + 8:value_end]
        if names[index].lower() in ("prompt", "workflow"):
            found[names[index].lower()] = json.loads(value[value.index(b"{"):])
        pos += size
    return found


def ebml_frontend_metadata(data):
    """The frontend's getFromWebmFile: SimpleTag elements, names compared exactly with PROMPT/WORKFLOW,
    JSON cut where a naive brace count (braces in strings included) returns to zero."""
    def vint(pos):
        length = 9 - data[pos].bit_length()
        value = data[pos] & (0xFF >> length)
        for b in data[pos + 1:pos + length]:
            value = value << 8 | b
        return value, length

    def element(start, end, ident):
        pos = data.find(ident, start, end)
        size, n = vint(pos + 2)
        return data[pos + 2 + n:pos + 2 + n + size]

    found, pos = {}, 0
    while (pos := data.find(b"\x67\xc8", pos)) >= 0:
        size, n = vint(pos + 2)
        end = pos + 2 + n + size
        name = element(pos, end, b"\x45\xa3").decode()
        if name in ("PROMPT", "WORKFLOW"):
            text = element(pos, end, b"\x44\x87").decode()
            text = text[text.index("{"):]
            depth, cut = 0, None
            for i, ch in enumerate(text):
                depth += {"{": 1, "}": -1}.get(ch, 0)
                if depth == 0:
                    cut = i + 1
                    break
            found[name.lower()] = json.loads(text[:cut])
            assert end <= 2 * 1024 * 1024, "the frontend reads only the first 2 MB of a WebM"
        pos = end
    return found


def stored_metadata(format_name, saved):
    """What the file holds, read the way ComfyUI's frontend reads that kind of file."""
    kind = FORMATS[format_name].metadata
    if kind == "tags":
        return isobmff_frontend_metadata(saved.video.read_bytes())
    if kind == "ebml":
        return ebml_frontend_metadata(saved.video.read_bytes())
    if kind == "webp":
        return {k: json.loads(v) for k, v in webp_exif_fields(saved.video).items()}
    if kind == "gif":
        return {k: json.loads(v) for k, v in gif_comments(saved.video).items()}
    return {k: json.loads(v) for k, v in png_text_chunks(saved.video / (SEQUENCE_PATTERN % 1)).items()}


def streams_of(path):
    return subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr


# --- every format ------------------------------------------------------------------------------

@pytest.mark.parametrize("format_name", list(FORMATS))
def test_every_format_round_trips(format_name, tmp_path):
    assert format_availability()[format_name] is None, "imageio-ffmpeg's binary has every encoder"
    frames = moving_frames()
    saved = save(frames, format_name, tmp_path)

    decoded = read_video_frames(decodable(saved))
    assert decoded.frames.shape == (FRAMES, HEIGHT, WIDTH, 3)
    if not saved.video.is_dir():  # a PNG sequence has no frame rate
        assert abs(1 / decoded.fps - 1 / FPS) <= 0.01  # GIF stores delays in 1/100 s
    expected = as_uint8(frames)
    if format_name in LOSSLESS:
        assert np.array_equal(decoded.frames, expected)
    else:
        assert psnr(decoded.frames, expected) > MIN_PSNR[format_name]
        # Content, not just quality: the same frame matches far better than its neighbour.
        assert psnr(decoded.frames[5], expected[5]) > psnr(decoded.frames[5], expected[6]) + 6

    assert stored_metadata(format_name, saved) == METADATA
    if saved.first_frame is not None:
        assert {k: json.loads(v) for k, v in png_text_chunks(saved.first_frame).items()} == METADATA
        # Exact: 16-bit when the video is deeper than 8 bits, 8-bit otherwise.
        if "rgb48be" in streams_of(saved.first_frame):
            assert np.array_equal(raw_frames(saved.first_frame), as_uint16(frames[:1]))
        else:
            assert np.array_equal(read_video_frames(saved.first_frame).frames, expected[:1])
    if saved.preview != saved.video:
        assert saved.preview.suffix == ".webp" and saved.preview.parent == tmp_path / "temp"
        assert len(read_video_frames(saved.preview).frames) == FRAMES
        assert {k: json.loads(v) for k, v in webp_exif_fields(saved.preview).items()} == METADATA
    assert not [p for p in all_files(tmp_path) if ".partial" in p]


@pytest.mark.parametrize("format_name", AUDIO_FORMATS)
def test_metadata_survives_audio_muxing(format_name, tmp_path):
    rate = 22050
    t = torch.arange(int(rate * 1.3)) / rate  # shorter than the 2 s of video: padded with silence
    waveform = torch.stack([torch.sin(2 * math.pi * 440 * t), torch.sin(2 * math.pi * 660 * t)]) * 0.5
    saved = save(moving_frames(), format_name, tmp_path, audio=(waveform, rate))

    assert stored_metadata(format_name, saved) == METADATA
    assert re.search(rf"Audio: {FORMATS[format_name].audio_codec.replace('lib', '')}", streams_of(saved.video))
    decoded = np.frombuffer(subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(saved.video), "-map", "0:a", "-ac", "2", "-ar", str(rate),
         "-f", "f32le", "-"], capture_output=True, check=True).stdout, "<f4").reshape(-1, 2)
    assert abs(len(decoded) / rate - FRAMES / FPS) < 0.06  # fitted to the video's 2 s
    for channel, hz in ((0, 440), (1, 660)):  # channels interleaved right, at the right rate
        second = decoded[int(0.1 * rate):int(1.1 * rate), channel]
        crossings = np.count_nonzero(np.diff(np.signbit(second)))
        assert abs(crossings / 2 - hz) < hz * 0.03
    assert np.abs(decoded[int(1.4 * rate):]).max() < 0.02  # silence after the audio ends


def test_ffmpeg_reads_the_container_tags_too(tmp_path):
    for name in ("video/h264-mp4", "video/prores-mov", "video/ffv1-mkv", "video/webm"):
        tags = ffmetadata_of(save(moving_frames(4), name, tmp_path).video)
        assert json.loads(tags["prompt"]) == PROMPT and json.loads(tags["workflow"]) == WORKFLOW


def test_large_workflow_is_not_limited_by_the_command_line(tmp_path):
    big = {"nodes": [{"id": i, "widgets_values": ["x" * 200]} for i in range(2000)]}  # ~450 KB of JSON
    saved = save(moving_frames(2), "video/h264-mp4", tmp_path, metadata={"prompt": PROMPT, "workflow": big})
    data = saved.video.read_bytes()
    assert isobmff_frontend_metadata(data)["workflow"] == big
    assert data.find(b"moov") < data.find(b"mdat")  # at the front, within what the frontend reads


def test_gif_and_webp_without_metadata_stay_valid(tmp_path):
    for name in ("image/gif", "image/webp"):
        saved = save(moving_frames(3), name, tmp_path, metadata=None)
        assert len(read_video_frames(saved.video).frames) == 3
        assert "prompt" not in png_text_chunks(saved.first_frame)


# --- frame counts and order --------------------------------------------------------------------

def test_zero_frames_are_refused_clearly(tmp_path):
    with pytest.raises(VideoError, match="0 frames"):
        save(torch.zeros(0, HEIGHT, WIDTH, 3), "video/h264-mp4", tmp_path)
    assert all_files(tmp_path / "output") == []


@pytest.mark.parametrize("format_name", list(FORMATS))
def test_one_frame_makes_a_one_frame_file(format_name, tmp_path):
    frames = moving_frames(1, 17, 35)  # odd sizes, and the single-frame WebP path
    saved = save(frames, format_name, tmp_path)
    decoded = read_video_frames(decodable(saved)).frames
    padded = FORMATS[format_name].even_size
    assert decoded.shape == (1, 18 if padded else 17, 36 if padded else 35, 3)
    assert stored_metadata(format_name, saved) == METADATA


def test_permuted_frames_from_vae_decode_are_written(tmp_path):
    """VAE Decode returns a channels-last view of a channels-first tensor: not contiguous."""
    frames = moving_frames(4)
    permuted = frames.permute(0, 3, 1, 2).contiguous().permute(0, 2, 3, 1)
    assert not permuted.is_contiguous()
    saved = save(permuted, "video/ffv1-mkv", tmp_path)
    decoded = read_video_frames(decodable(saved)).frames
    assert np.array_equal(decoded, (frames * 255).round().to(torch.uint8).numpy())


def test_pingpong_order_skips_the_end_frames():
    assert playback_order(4, pingpong=True, repeats=0) == [0, 1, 2, 3, 2, 1]
    assert playback_order(2, pingpong=True, repeats=0) == [0, 1]
    assert playback_order(1, pingpong=True, repeats=0) == [0]
    assert playback_order(3, pingpong=False, repeats=2) == [0, 1, 2] * 3


def test_pingpong_and_loop_emulation_write_exact_frames(tmp_path):
    frames = moving_frames(5)
    saved = save(frames, "video/ffv1-mkv", tmp_path, pingpong=True, loop_count=1)
    order = [0, 1, 2, 3, 4, 3, 2, 1] * 2
    assert np.array_equal(read_video_frames(saved.video).frames, as_uint8(frames)[order])


def test_loop_count_is_stored_in_gif_and_webp(tmp_path):
    frames = moving_frames(3)
    assert gif_loop_count(save(frames, "image/gif", tmp_path, loop_count=0).video) == 0  # forever
    assert gif_loop_count(save(frames, "image/gif", tmp_path, loop_count=2).video) == 2  # 2 repeats
    for loop_count, stored in ((0, 0), (2, 3)):  # WebP counts plays, not repeats
        anim = dict(webp_chunks(save(frames, "image/webp", tmp_path, loop_count=loop_count).video))[b"ANIM"]
        assert struct.unpack("<H", anim[4:6])[0] == stored
    # No repeated frames in formats that loop by themselves.
    assert len(read_video_frames(save(frames, "image/gif", tmp_path, loop_count=2).video).frames) == 3


def test_odd_size_is_padded_for_yuv420_codecs_and_noted(tmp_path, caplog):
    frames = moving_frames(4, HEIGHT - 1, WIDTH - 1)
    with caplog.at_level(logging.WARNING):
        saved = save(frames, "video/h264-mp4", tmp_path)
    note = f"{WIDTH - 1}x{HEIGHT - 1} was padded to {WIDTH}x{HEIGHT}"
    assert note in caplog.text and any(note in n for n in saved.notes)
    decoded = read_video_frames(saved.video).frames
    assert decoded.shape == (4, HEIGHT, WIDTH, 3)
    assert psnr(decoded[:, :-1, :-1], as_uint8(frames)) > 30
    # The added column repeats the last one rather than adding a black edge.
    assert np.abs(decoded[:, :-1, -1].astype(int) - decoded[:, :-1, -2]).mean() < 8


# --- pixel formats -------------------------------------------------------------------------------

@pytest.mark.parametrize("format_name", ["video/ffv1-mkv", "image/png-sequence"])
def test_alpha_is_kept_exactly_in_lossless_formats(format_name, tmp_path):
    frames = moving_frames(4, alpha=True)
    saved = save(frames, format_name, tmp_path)
    assert np.array_equal(raw_frames(decodable(saved), 4, "rgba"), as_uint8(frames))
    assert raw_frames(saved.preview, 4, "rgba")[..., 3].min() == 0  # preview keeps it too


def test_prores_auto_chooses_4444_with_alpha(tmp_path):
    frames = moving_frames(3, alpha=True)
    saved = save(frames, "video/prores-mov", tmp_path)
    assert "yuva444p" in streams_of(saved.video)
    alpha = raw_frames(saved.video, 3, "rgba")[..., 3]
    assert np.abs(alpha.astype(int) - as_uint8(frames)[..., 3]).max() <= 2


def test_sixteen_bit_png_sequence(tmp_path):
    frames = moving_frames(3)
    saved = save(frames, "image/png-sequence", tmp_path, settings=EncodeSettings(pix_fmt="rgb48be"))
    assert "rgb48be" in streams_of(saved.video / (SEQUENCE_PATTERN % 1))
    assert np.array_equal(raw_frames(decodable(saved), count=3), as_uint16(frames))


def test_settings_outside_a_format_are_refused(tmp_path):
    with pytest.raises(VideoError, match="pix_fmt 'bgra' does not fit video/h264-mp4.*yuv420p"):
        save(moving_frames(2), "video/h264-mp4", tmp_path, settings=EncodeSettings(pix_fmt="bgra"))
    with pytest.raises(VideoError, match="crf 60 is out of range for video/h265-mp4"):
        save(moving_frames(2), "video/h265-mp4", tmp_path, settings=EncodeSettings(crf=60))
    with pytest.raises(VideoError, match="Unknown format 'video/avi'.*image/gif"):
        save(moving_frames(2), "video/avi", tmp_path)


# --- output paths and failures ---------------------------------------------------------------------

@pytest.mark.parametrize("prefix", ["../x", "a/../../x", "..", "sub/..", "/tmp/absolute", "\\\\server\\x", "C:\\x"])
def test_prefix_outside_the_output_folder_is_refused(prefix, tmp_path):
    output = tmp_path / "output"
    with pytest.raises(VideoError, match="filename_prefix"):
        save_video(moving_frames(2), "video/h264-mp4", output, prefix, frame_rate=FPS, preview_dir=tmp_path / "temp")
    assert all_files(tmp_path) in ([], ["output"])


def test_subfolders_and_counter(tmp_path):
    first = save_video(moving_frames(2), "video/h264-mp4", tmp_path, "clips/%width%x%height%/cat",
                       frame_rate=FPS, preview_dir=tmp_path)
    second = save_video(moving_frames(2), "image/gif", tmp_path, "clips/64x48/cat", frame_rate=FPS, preview_dir=tmp_path)
    assert first.video == tmp_path / "clips/64x48/cat_00001.mp4"
    assert first.first_frame == tmp_path / "clips/64x48/cat_00001.png"
    assert second.video == tmp_path / "clips/64x48/cat_00002.gif"
    assert resolve_output_stem(tmp_path, "clips/64x48/cat").name == "cat_00003"
    assert resolve_output_stem(tmp_path, "clips/64x48/ca").name == "ca_00001"


def test_unwritable_output_folder_gives_a_clear_error(tmp_path):
    blocker = tmp_path / "output"
    blocker.write_text("a file where the output folder should be")
    with pytest.raises(VideoError, match="Cannot write to the folder .*output"):
        save(moving_frames(2), "video/h264-mp4", tmp_path)
    assert all_files(tmp_path) == ["output"]


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_output_folder_gives_a_clear_error(tmp_path):
    (tmp_path / "output").mkdir(mode=0o500)
    with pytest.raises(VideoError, match="Cannot write to the folder .*output"):
        save(moving_frames(2), "video/h264-mp4", tmp_path)
    assert all_files(tmp_path / "output") == []


def test_ffmpeg_failure_names_the_format_and_leaves_no_file(tmp_path):
    with pytest.raises(VideoEncodeError, match=r"video/h265-mp4.*(?s:.*)too small"):
        save(moving_frames(3, 8, 8), "video/h265-mp4", tmp_path)  # x265 refuses frames under 16x16
    assert all_files(tmp_path / "output") == [] and all_files(tmp_path / "temp") == []


def test_interruption_mid_stream_leaves_no_file(tmp_path):
    def interrupt(done, total):
        if done == 5:
            raise KeyboardInterrupt("stop")

    with pytest.raises(KeyboardInterrupt):
        save(moving_frames(), "image/png-sequence", tmp_path, on_frame=interrupt)
    assert all_files(tmp_path / "output") == [] and all_files(tmp_path / "temp") == []


def test_progress_is_reported_per_written_frame(tmp_path):
    calls = []
    save(moving_frames(3), "image/gif", tmp_path, pingpong=True, on_frame=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


# --- ffmpeg choice and availability ----------------------------------------------------------------

def test_missing_encoders_are_reported_not_dropped(tmp_path, monkeypatch):
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\necho 'Encoders:\n ------\n V....D libx264   H.264\n V....D gif   GIF'\n")
    fake.chmod(0o755)
    monkeypatch.setenv(FFMPEG_ENV, str(fake))
    availability = format_availability()
    assert list(availability) == list(FORMATS)
    assert availability["video/h264-mp4"] is None and availability["image/gif"] is None
    assert "libsvtav1 or libaom-av1" in availability["video/av1-webm"]
    with pytest.raises(VideoError, match="Format video/prores-mov is not available: .*prores_ks"):
        save(moving_frames(2), "video/prores-mov", tmp_path)


def test_a_system_ffmpeg_is_used_only_when_asked_for(monkeypatch):
    import imageio_ffmpeg

    monkeypatch.delenv(FFMPEG_ENV, raising=False)
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", lambda: "/usr/bin/ffmpeg")
    with pytest.raises(VideoError, match=f"set {FFMPEG_ENV}=/usr/bin/ffmpeg"):
        ffmpeg_exe()
    monkeypatch.setenv(FFMPEG_ENV, "/nonexistent/ffmpeg")
    with pytest.raises(VideoError, match="not an executable"):
        ffmpeg_exe()


# --- decoding -------------------------------------------------------------------------------------

def test_read_video_frames_options(tmp_path):
    frames = moving_frames()
    saved = save(frames, "video/ffv1-mkv", tmp_path)
    picked = read_video_frames(saved.video, skip_first=2, every_nth=3, max_frames=4)
    assert np.array_equal(picked.frames, as_uint8(frames)[[2, 5, 8, 11]])
    assert picked.fps == pytest.approx(FPS / 3)
    assert read_video_frames(saved.video, size=(32, 24)).frames.shape == (FRAMES, 24, 32, 3)
    with pytest.raises(VideoEncodeError, match="Reading"):
        read_video_frames(tmp_path / "missing.mp4")


def test_alpha_dropped_by_the_format_is_noted_for_the_user(tmp_path):
    saved = save(moving_frames(4, alpha=True), "video/h264-mp4", tmp_path)
    (note,) = saved.notes
    assert note.startswith("video/h264-mp4 with pix_fmt yuv420p has no alpha channel: the frames' transparency was dropped")
    assert save(moving_frames(4, alpha=True), "video/ffv1-mkv", tmp_path).notes == ()


@pytest.mark.parametrize("prefix", ["cat\x00dog", "videos/cat\ndog"])
def test_prefix_with_characters_no_file_name_holds_is_refused(prefix, tmp_path):
    with pytest.raises(VideoError) as refused:
        save_video(moving_frames(2), "image/gif", tmp_path, prefix, frame_rate=FPS, preview_dir=tmp_path)
    assert str(refused.value).startswith(f"filename_prefix {prefix!r} contains ")
    assert "which file names cannot hold: use letters, digits" in str(refused.value)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_partials_of_killed_encodes_are_removed_at_the_next_write(tmp_path):
    out = tmp_path / "output"
    out.mkdir()
    dead, alive = _dead_pid(), os.getppid()
    stale_file = out / f".AnimateDiff_00001.mp4.{dead}.0a1b2c3d.4e5f6a7b.partial"
    stale_dir = out / f".AnimateDiff_00002.{dead}.0a1b2c3d.4e5f6a7b.partial"
    running = out / f".AnimateDiff_00003.mp4.{alive}.0a1b2c3d.4e5f6a7b.partial"  # another process, still encoding
    users_own = out / f".notes.{dead}.0a1b2c3d.txt"
    for path in (stale_file, running, users_own):
        path.write_bytes(b"x")
    stale_dir.mkdir()
    (stale_dir / "frame_00001.png").write_bytes(b"x")

    save(moving_frames(2), "image/gif", tmp_path)

    assert not stale_file.exists() and not stale_dir.exists()
    assert running.exists() and users_own.exists()


def test_encoder_dies_with_the_process_feeding_it(tmp_path):
    """kill -9 of the process writing a video must not leave ffmpeg finishing the partial file."""
    script = f"""
import subprocess, sys, time, torch
real_popen = subprocess.Popen
class Reporting(real_popen):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if kwargs.get("stdin") == subprocess.PIPE:  # the encoder, fed frame by frame
            print("ffmpeg", self.pid, flush=True)
subprocess.Popen = Reporting
from video.files import save_video
def slow(done, total):
    print("fed", done, flush=True)
    time.sleep(0.5)
save_video(torch.rand(200, 32, 32, 3), "video/h264-mp4", {str(tmp_path)!r}, "killed", frame_rate=8.0,
           preview_dir={str(tmp_path)!r}, on_frame=slow)
"""
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    line = writer.stdout.readline()
    assert line.startswith("ffmpeg "), line
    encoder = int(line.split()[1])
    while not writer.stdout.readline().startswith("fed 3"):
        pass
    writer.kill()
    writer.wait()
    for _ in range(100):  # the kernel signals it at once; allow it a moment to go
        try:
            with open(f"/proc/{encoder}/stat") as stat:
                if stat.read().split(") ")[1].startswith("Z"):
                    break  # a zombie: dead, waiting to be reaped by init
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"ffmpeg (pid {encoder}) still runs after the process feeding it was killed")
    # Killed, not finishing: an ffmpeg that saw its input end would complete a playable partial file.
    (partial,) = tmp_path.glob(".killed_*.mp4.*.partial")
    with pytest.raises(VideoEncodeError):
        read_video_frames(partial)


def test_audio_a_format_cannot_carry_is_noted(tmp_path):
    saved = save(moving_frames(4), "image/gif", tmp_path, audio=(torch.zeros(1, 8000), 16000))
    assert saved.notes == ("image/gif cannot carry audio: the audio input was ignored.",)
