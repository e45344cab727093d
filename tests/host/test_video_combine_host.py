"""Video Combine inside the real ComfyUI server, through its HTTP API: the file decodes, /view serves
the preview the frontend will load, and the MP4 carries the prompt."""

import json
import subprocess
import urllib.parse
import urllib.request

import pytest

from video.files import read_video_frames
from video.formats import ffmpeg_exe

NODE = "AnimateDiffVideoCombine"
FRAMES, WIDTH, HEIGHT = 12, 64, 48
BLUE_FIRST, BLUE_SECOND = 0x3366CC, 0xCC6633  # frames alternate, so no two neighbours are equal


@pytest.fixture
def host(comfy_pack):
    return comfy_pack


def combine_prompt(prefix, format_name, pingpong=False):
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": WIDTH, "height": HEIGHT, "batch_size": 1, "color": BLUE_FIRST}},
        "3": {"class_type": "EmptyImage", "inputs": {"width": WIDTH, "height": HEIGHT, "batch_size": 1, "color": BLUE_SECOND}},
        "4": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["3", 0]}},
        "5": {"class_type": "RepeatImageBatch", "inputs": {"image": ["4", 0], "amount": FRAMES // 2}},
        "2": {"class_type": NODE, "inputs": {
            "images": ["5", 0], "frame_rate": 8.0, "loop_count": 0, "filename_prefix": prefix,
            "format": format_name, "pingpong": pingpong, "save_output": True, "crf": 19, "pix_fmt": "auto",
            "webp_quality": 90, "webp_lossless": False, "prores_profile": "auto"}},
    }


def view(comfy, file_info):
    query = urllib.parse.urlencode({k: file_info[k] for k in ("filename", "subfolder", "type")})
    with urllib.request.urlopen(f"{comfy.url}/view?{query}", timeout=30) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


def test_object_info_lists_every_format(host):
    inputs = host.object_info()[NODE]["input"]
    formats = inputs["required"]["format"][0]
    assert {"image/gif", "image/webp", "video/h264-mp4", "video/h265-mp4", "video/webm", "video/av1-webm",
            "video/prores-mov", "video/ffv1-mkv", "image/png-sequence"} <= set(formats)
    assert all("tooltip" in spec[1] for spec in inputs["required"].values())


def test_mp4_is_written_previewed_and_holds_the_prompt(host):
    prompt = combine_prompt("hosttest/combine", "video/h264-mp4")
    ui = host.run(prompt)["2"]
    assert ui["animated"] == [True]
    preview = ui["images"][0]
    assert preview["type"] == "output" and preview["subfolder"] == "hosttest" and preview["filename"].endswith(".mp4")

    path = host.output_file(preview)
    decoded = read_video_frames(path)
    assert decoded.frames.shape == (FRAMES, HEIGHT, WIDTH, 3)
    blue = decoded.frames[..., 2].mean(axis=(1, 2))
    assert abs(blue[0] - (BLUE_FIRST & 0xFF)) < 4 and abs(blue[1] - (BLUE_SECOND & 0xFF)) < 4  # colours, in order

    status, content_type, body = view(host, preview)
    assert status == 200 and body == path.read_bytes() and content_type.startswith("video/mp4")

    tags = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "ffmetadata", "-"],
                          capture_output=True, text=True, check=True).stdout
    stored = next(line.split("=", 1)[1] for line in tags.splitlines() if line.startswith("prompt="))
    assert json.loads(stored.replace("\\=", "=").replace("\\;", ";").replace("\\#", "#")) == prompt


def test_gif_gets_an_animated_webp_preview(host, tmp_path):
    ui = host.run(combine_prompt("hosttest/loop", "image/gif", pingpong=True))["2"]
    preview = ui["images"][0]
    assert preview["type"] == "temp" and preview["filename"].endswith(".webp")
    status, content_type, body = view(host, preview)
    assert status == 200 and content_type == "image/webp" and body[:4] == b"RIFF"
    served = tmp_path / "preview.webp"
    served.write_bytes(body)
    assert len(read_video_frames(served).frames) == 2 * FRAMES - 2  # pingpong, end frames not repeated
    gif, first_frame = ui["animatediff_files"]  # the written files themselves, for API clients
    assert gif["type"] == "output" and gif["filename"].endswith(".gif")
    assert first_frame["filename"].endswith(".png") and host.output_file(gif).is_file()


def test_bad_prefix_fails_with_the_reason(host):
    with pytest.raises(Exception, match="filename_prefix"):  # the harness's PromptFailed
        host.run(combine_prompt("../escape", "image/gif"))
