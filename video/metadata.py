"""Prompt/workflow metadata in the places ComfyUI's frontend looks for it.

Containers with tags (mp4, mov, mkv, webm) get it from ffmpeg through an ffmetadata file;
PNG, WebP and GIF get it here, by adding chunks to the file ffmpeg wrote:
- PNG: tEXt chunks "prompt"/"workflow" (what SaveImage writes and the frontend reads).
- WebP: an EXIF chunk whose ASCII entries read "prompt:{json}" (tag 0x0110) and
  "workflow:{json}" (0x010F and down), the layout of ComfyUI's SaveAnimatedWEBP.
- GIF: comment extensions with the same "key:{json}" text (nothing reads them in the
  frontend today, but the data survives in the file).
"""

import json
import re
import struct
import zlib
from pathlib import Path
from typing import Any, Mapping

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def metadata_texts(metadata: Mapping[str, Any], braces_in_strings_escaped: bool = False) -> dict[str, str]:
    """JSON text per key, ASCII only so every container stores it byte for byte.

    The frontend's WebM reader finds the end of the JSON by counting braces, including
    braces inside strings (a prompt like "{cat|dog}"); written as \\u007b/\\u007d those
    parse to the same JSON without confusing it.
    """
    texts = {key: json.dumps(value) for key, value in metadata.items()}
    if braces_in_strings_escaped:
        def escape(string: re.Match) -> str:
            return string.group(0).replace("{", "\\u007b").replace("}", "\\u007d")
        texts = {key: _JSON_STRING.sub(escape, text) for key, text in texts.items()}
    return texts


def ffmetadata_file_text(texts: Mapping[str, str]) -> str:
    """ffmpeg's ffmetadata format: these characters are special and take a backslash."""
    def escape(s: str) -> str:
        return re.sub(r"([=;#\\\n])", r"\\\1", s)
    return ";FFMETADATA1\n" + "".join(f"{escape(k)}={escape(v)}\n" for k, v in texts.items())


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def add_png_text(path: Path, texts: Mapping[str, str]) -> None:
    """Insert tEXt chunks right after IHDR, before the image data, where SaveImage puts them."""
    data = path.read_bytes()
    ihdr_end = 8 + 8 + 13 + 4  # signature, IHDR length+type, IHDR body, crc
    chunks = b"".join(_png_chunk(b"tEXt", k.encode("latin-1") + b"\0" + v.encode("latin-1")) for k, v in texts.items())
    path.write_bytes(data[:ihdr_end] + chunks + data[ihdr_end:])


def _exif_ascii_ifd(texts: Mapping[str, str]) -> bytes:
    """A little-endian TIFF header and one IFD of ASCII entries, values after the IFD."""
    others = [f"{key}:{value}" for key, value in texts.items() if key != "prompt"]
    tags = {0x010F - i: text for i, text in enumerate(others)}
    if "prompt" in texts:
        tags[0x0110] = f"prompt:{texts['prompt']}"
    entries, values = b"", b""
    values_start = 8 + 2 + 12 * len(tags) + 4
    for tag in sorted(tags):  # TIFF requires ascending tag order
        value = tags[tag].encode("ascii") + b"\0"
        entries += struct.pack("<HHII", tag, 2, len(value), values_start + len(values))
        values += value + b"\0" * (len(value) & 1)
    return b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", len(tags)) + entries + b"\0\0\0\0" + values


_VP8X_EXIF = 0x08
_VP8X_ALPHA = 0x10


def add_webp_exif(path: Path, texts: Mapping[str, str], width: int, height: int, has_alpha: bool) -> None:
    """Append an EXIF chunk and flag it in VP8X, in place, so a long animation is never read into memory.

    libwebp writes a single frame as a plain VP8/VP8L file without VP8X; that (small)
    file is rebuilt with a VP8X header in front, which EXIF requires.
    """
    exif = _exif_ascii_ifd(texts)
    exif_chunk = b"EXIF" + struct.pack("<I", len(exif)) + exif + b"\0" * (len(exif) & 1)
    with open(path, "r+b") as f:
        head = f.read(30)
        if head[12:16] == b"VP8X":
            f.seek(20)
            f.write(bytes([head[20] | _VP8X_EXIF]))
            f.seek(0, 2)
            f.write(exif_chunk)
        else:
            f.seek(12)
            body = f.read()
            flags = _VP8X_EXIF | (_VP8X_ALPHA if has_alpha else 0)
            vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([flags, 0, 0, 0]) + \
                (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
            f.seek(12)
            f.write(vp8x + body + exif_chunk)
        riff_size = f.tell() - 8
        f.seek(4)
        f.write(struct.pack("<I", riff_size))


def add_gif_comments(path: Path, texts: Mapping[str, str]) -> None:
    """Comment extensions just before the trailer byte, in place."""
    blocks = b""
    for key, value in texts.items():
        text = f"{key}:{value}".encode("ascii")
        sub_blocks = b"".join(bytes([len(part)]) + part for part in (text[i:i + 255] for i in range(0, len(text), 255)))
        blocks += b"\x21\xfe" + sub_blocks + b"\0"
    with open(path, "r+b") as f:
        f.seek(-1, 2)
        if f.read(1) != b"\x3b":
            raise ValueError(f"{path} does not end with a GIF trailer")
        f.seek(-1, 2)
        f.write(blocks + b"\x3b")
