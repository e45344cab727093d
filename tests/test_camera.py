"""Camera-motion clips: where each frame's view lies, sub-pixel steps, no borders."""

import math

import pytest
import torch

from animatediff_core import MotionModelError
from animatediff_core.camera import MOTIONS, camera_clips, camera_path, render_views

SIZE = 64


def ramp(width=SIZE, height=SIZE):
    """Channel 0 = x and channel 1 = y of each pixel centre, over the image size: bilinear
    sampling reproduces it exactly, so a rendered pixel says where in the image it was taken."""
    x = (torch.arange(width) + 0.5) / width
    y = (torch.arange(height) + 0.5) / height
    return torch.stack([x.expand(height, width), y[:, None].expand(height, width), torch.zeros(height, width)], -1)


def sampled_x(frame):
    return frame[..., 0] * SIZE


def sampled_y(frame):
    return frame[..., 1] * SIZE


def test_zoom_in_frames_are_centred_crops_of_shrinking_area():
    frames, strength = 9, 0.5
    clip = camera_clips(ramp().unsqueeze(0), "zoom in", frames, strength, SIZE, SIZE)
    assert clip.shape == (frames, SIZE, SIZE, 3)
    for f, frame in enumerate(clip):
        view = SIZE * (1 - strength) ** (f / (frames - 1))
        step = view / SIZE
        left, right = SIZE / 2 - view / 2 + step / 2, SIZE / 2 + view / 2 - step / 2  # outer pixel centres
        assert float(sampled_x(frame)[0, 0]) == pytest.approx(left, abs=1e-3)
        assert float(sampled_x(frame)[0, -1]) == pytest.approx(right, abs=1e-3)
        assert float(sampled_y(frame)[0, 0]) == pytest.approx(left, abs=1e-3)
        assert float(sampled_y(frame)[-1, 0]) == pytest.approx(right, abs=1e-3)
    zoom_out = camera_clips(ramp().unsqueeze(0), "zoom out", frames, strength, SIZE, SIZE)
    assert torch.allclose(zoom_out, clip.flip(0))


@pytest.mark.parametrize("motion, sign", [("pan left", -1), ("pan right", 1)])
def test_a_pan_moves_the_view_by_the_expected_sub_pixel_step(motion, sign):
    frames, strength = 16, 0.3
    clip = camera_clips(ramp().unsqueeze(0), motion, frames, strength, 32, 32)
    travel = SIZE * strength  # image pixels, over the whole clip
    per_frame = travel / (frames - 1)
    assert 0 < per_frame < 2 and per_frame != round(per_frame)  # sub-pixel steps, no whole-pixel snapping
    xs = torch.stack([sampled_x(frame)[16, 16] for frame in clip])
    assert torch.allclose(xs.diff(), torch.full((frames - 1,), sign * per_frame), atol=1e-3)
    ys = torch.stack([sampled_y(frame)[16, 16] for frame in clip])
    assert torch.allclose(ys, ys[0].expand(frames), atol=1e-4)
    # In output pixels the content moves travel/(frames-1) * (output width / view width) per frame.
    view = SIZE * (1 - strength)
    assert float(sampled_x(clip[0])[16, 1] - sampled_x(clip[0])[16, 0]) == pytest.approx(view / 32, abs=1e-3)


def test_tilt_up_moves_the_view_up():
    clip = camera_clips(ramp().unsqueeze(0), "tilt up", 8, 0.4, SIZE, SIZE)
    ys = torch.stack([sampled_y(frame)[32, 32] for frame in clip])
    assert (ys.diff() < 0).all()


def test_roll_turns_the_view_about_the_centre():
    frames, strength = 5, 0.5
    clip = camera_clips(ramp().unsqueeze(0), "roll clockwise", frames, strength, SIZE, SIZE)
    for f, frame in enumerate(clip):
        # The frame's top edge runs along the view's turned x axis.
        dx = float(sampled_x(frame)[0, -1] - sampled_x(frame)[0, 0])
        dy = float(sampled_y(frame)[0, -1] - sampled_y(frame)[0, 0])
        expected = math.radians(90 * strength) * f / (frames - 1)
        assert math.atan2(dy, dx) == pytest.approx(expected, abs=1e-3)
    anticlockwise = camera_clips(ramp().unsqueeze(0), "roll counter-clockwise", frames, strength, SIZE, SIZE)
    assert torch.allclose(anticlockwise[..., 0], clip[..., 0].flip(1), atol=1e-4)


@pytest.mark.parametrize("motion", MOTIONS)
@pytest.mark.parametrize("image_size, aspect", [((640, 480), 1.0), ((300, 700), 16 / 9), ((512, 512), 0.5)])
def test_every_view_stays_inside_the_image(motion, image_size, aspect):
    width, height = image_size
    for view in camera_path(motion, 16, 0.9, image_size, aspect):
        c, s = math.cos(view.angle), math.sin(view.angle)
        for u in (-view.width / 2, view.width / 2):
            for v in (-view.height / 2, view.height / 2):
                x, y = view.x + c * u - s * v, view.y + s * u + c * v
                assert -1e-6 <= x <= width + 1e-6 and -1e-6 <= y <= height + 1e-6
        assert view.width / view.height == pytest.approx(aspect)


@pytest.mark.parametrize("motion", MOTIONS)
def test_no_frame_shows_a_border(motion):
    image = torch.full((90, 160, 3), 0.7)
    clip = camera_clips(image.unsqueeze(0), motion, 6, 0.9, 48, 64)
    assert clip.shape == (6, 64, 48, 3)
    assert torch.allclose(clip, torch.full_like(clip, 0.7))


def test_a_large_image_is_shrunk_without_aliasing():
    # A one-pixel checkerboard seen at a quarter of its size is grey, not a moire of black and white.
    checker = ((torch.arange(256)[:, None] + torch.arange(256)) % 2).float()
    image = checker[..., None].expand(256, 256, 3)
    views = camera_path("pan right", 4, 0.1, (256, 256), 1.0)
    frames = render_views(image, views, 64, 64)
    assert frames[:, 4:-4, 4:-4].sub(0.5).abs().max() < 0.05


def test_clips_are_clip_major():
    images = torch.stack([torch.full((32, 32, 3), v) for v in (0.1, 0.9)])
    clips = camera_clips(images, "zoom in", 4, 0.3, 16, 16)
    assert torch.allclose(clips[:4], torch.full_like(clips[:4], 0.1))
    assert torch.allclose(clips[4:], torch.full_like(clips[4:], 0.9))


@pytest.mark.parametrize("kwargs, message", [
    ({"frames": 1}, "frames must be at least 2"),
    ({"strength": 0.95}, "strength must be between 0 and 0.9"),
    ({"motion": "dolly"}, "motion 'dolly' is unknown"),
])
def test_bad_requests_are_named(kwargs, message):
    request = {"motion": "zoom in", "frames": 16, "strength": 0.3, **kwargs}
    with pytest.raises(MotionModelError, match=message):
        camera_clips(ramp().unsqueeze(0), width=32, height=32, **request)
