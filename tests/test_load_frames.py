"""Reading a folder of images as frames (Load Frames' core), with the bundled ffmpeg."""

import pytest
import torch

from video.errors import VideoError
from video.files import FOLDER_FRAME_RATE, folder_images, read_video_frames, save_video

SHADES = [10, 40, 70, 100, 130, 160, 190, 220, 250]  # frame i is grey SHADES[i]


def write_frames(folder, shades, height=12, width=16):
    """PNG frames frame_00001.png ... in `folder`, each a flat grey."""
    frames = torch.tensor(shades, dtype=torch.float32).div(255).view(-1, 1, 1, 1).expand(-1, height, width, 3)
    saved = save_video(frames, "image/png-sequence", folder.parent, folder.name, frame_rate=8.0,
                       preview_dir=folder.parent / "previews")
    return saved.video  # the folder save_video made (with a counter in its name)


def grey_levels(frames) -> list[int]:
    return [int(frame[..., 0].mean().round()) for frame in frames]


def test_folder_is_read_in_natural_name_order(tmp_path):
    folder = write_frames(tmp_path / "depth", SHADES[:3])
    # frame_00001..3 renamed so that plain string order would put 10 before 2
    for old, new in (("frame_00001.png", "f1.png"), ("frame_00002.png", "f2.png"), ("frame_00003.png", "f10.png")):
        (folder / old).rename(folder / new)
    (folder / "readme.txt").write_text("not a frame")
    assert [p.name for p in folder_images(folder)] == ["f1.png", "f2.png", "f10.png"]
    decoded = read_video_frames(folder)
    assert grey_levels(decoded.frames) == SHADES[:3] and decoded.fps == FOLDER_FRAME_RATE


def test_skip_every_nth_and_cap_on_a_folder(tmp_path):
    folder = write_frames(tmp_path / "depth", SHADES)
    decoded = read_video_frames(folder, skip_first=1, every_nth=2, max_frames=3)
    assert grey_levels(decoded.frames) == [SHADES[1], SHADES[3], SHADES[5]]
    assert decoded.fps == FOLDER_FRAME_RATE / 2


def test_folder_with_a_quote_in_its_path(tmp_path):
    folder = write_frames(tmp_path / "artist's depth", SHADES[:2])
    assert grey_levels(read_video_frames(folder).frames) == SHADES[:2]


def test_one_side_of_the_size_keeps_the_aspect_ratio(tmp_path):
    folder = write_frames(tmp_path / "depth", SHADES[:2], height=12, width=16)
    assert read_video_frames(folder, size=(8, -1)).frames.shape == (2, 6, 8, 3)
    assert read_video_frames(folder, size=(-1, 24)).frames.shape == (2, 24, 32, 3)


def test_empty_folder_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(VideoError, match=r"holds no images \(.png"):
        read_video_frames(tmp_path)


def test_images_of_different_sizes_take_the_first_ones_size(tmp_path):
    small = write_frames(tmp_path / "small", SHADES[:1], height=8, width=8)
    large = write_frames(tmp_path / "large", SHADES[1:2], height=16, width=16)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (small / "frame_00001.png").rename(mixed / "a.png")
    (large / "frame_00001.png").rename(mixed / "b.png")
    decoded = read_video_frames(mixed).frames
    assert decoded.shape == (2, 8, 8, 3) and grey_levels(decoded) == SHADES[:2]


def test_skipping_past_the_end_gives_an_empty_batch(tmp_path):
    folder = write_frames(tmp_path / "depth", SHADES[:2])
    decoded = read_video_frames(folder, skip_first=5, size=(8, -1))
    assert decoded.frames.shape == (0, 0, 8, 3)
