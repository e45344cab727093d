"""Keyframe schedules (prompt travel, value schedules) and FreeNoise noise rescheduling."""

from types import SimpleNamespace

import pytest
import torch

from animatediff_core import MotionModelError
from animatediff_core.context import ContextOptions, freenoise_order
from animatediff_core.keyframes import blend_frames, frame_blends, padded_to_longest, parse_schedule, value_schedule


def test_the_syntaxes_artists_type_elsewhere_all_parse():
    text = '{\n"0": "a cat in spring",\n  8: a cat in summer ,\n\'12\': "a (cat:1.2), in autumn",\n-1: "winter"\n}'
    assert parse_schedule(text, 16) == [(0, "a cat in spring"), (8, "a cat in summer"),
                                        (12, "a (cat:1.2), in autumn"), (15, "winter")]


@pytest.mark.parametrize("text, expected", [
    ('0: "cat"\nkitten in the snow', r"schedule line 2: 'kitten in the snow' is not a keyframe: expected `frame: \"text\"`"),
    ('0: "cat"\n16: "dog"', r"schedule line 2: frame 16 is outside the animation's 16 frames \(0 to 15, or -1 to -16"),
    ('0: "cat"\n-16: "dog"', r"schedule line 2: frame -16 has a keyframe already"),
    ('0:', r"schedule line 1: '0:' is not a keyframe"),
    ('\n# only a comment\n', r"schedule has no keyframe: write one per line"),
])
def test_syntax_errors_name_the_line_and_what_was_expected(text, expected):
    with pytest.raises(MotionModelError, match=expected):
        parse_schedule(text, 16)


def test_linear_blends_evenly_and_holds_outside_the_keyframes():
    blends = frame_blends([2, 6], 9, "linear")
    assert [(b.first, b.second, b.weight) for b in blends] == [
        (0, 0, 0.0), (0, 0, 0.0), (0, 0, 0.0), (0, 1, 0.25), (0, 1, 0.5), (0, 1, 0.75), (1, 1, 0.0), (1, 1, 0.0),
        (1, 1, 0.0)]


def test_none_holds_and_ease_in_out_is_slow_at_the_keyframes():
    assert all(b.weight == 0.0 for b in frame_blends([0, 8], 16, "none"))
    eased = [b.weight for b in frame_blends([0, 8], 9, "ease-in-out")]
    assert eased[4] == pytest.approx(0.5) and eased[1] < 1 / 8 and eased[7] > 7 / 8


def test_value_schedule():
    assert value_schedule("0: 1.0\n4: 0.0", 6, "linear") == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    with pytest.raises(MotionModelError, match=r"schedule: frame 4's value 'lots' is not a number"):
        value_schedule("0: 1\n4: lots", 6, "linear")


def test_blended_frames_are_exact_at_keyframes_and_between():
    a, b = torch.randn(1, 77, 8), torch.randn(1, 77, 8)
    blended = blend_frames([a, b], frame_blends([0, 4], 5, "linear"))
    assert blended.shape == (5, 77, 8)
    assert torch.equal(blended[0], a[0]) and torch.equal(blended[4], b[0])
    assert torch.allclose(blended[1], 0.75 * a[0] + 0.25 * b[0], atol=1e-6)


def test_longer_prompts_are_padded_with_the_empty_prompt():
    short, long, empty = torch.randn(1, 77, 8), torch.randn(1, 154, 8), torch.randn(1, 77, 8)
    padded_short, padded_long = padded_to_longest([short, long], empty)
    assert torch.equal(padded_short, torch.cat([short, empty], dim=1)) and padded_long is long


# --- FreeNoise --------------------------------------------------------------------------------------

def diffusers_free_noise(frames: int, length: int, stride: int, seed: int) -> torch.Tensor:
    """diffusers' own FreeNoise rescheduling (AnimateDiffFreeNoiseMixin, noise type "shuffle_context"),
    frames first: (frames, 4, 2, 2)."""
    from diffusers.pipelines.free_noise_utils import AnimateDiffFreeNoiseMixin

    pipe = SimpleNamespace(_free_noise_context_length=length, _free_noise_context_stride=stride,
                           _free_noise_noise_type="shuffle_context", vae_scale_factor=8)
    latents = AnimateDiffFreeNoiseMixin._prepare_latents_free_noise(
        pipe, 1, 4, frames, 16, 16, torch.float32, torch.device("cpu"), torch.Generator().manual_seed(seed))
    return latents[0].transpose(0, 1)


@pytest.mark.parametrize("frames, length, overlap", [(48, 16, 4), (40, 16, 4), (64, 16, 8), (17, 16, 0)])
def test_freenoise_matches_diffusers_exactly(frames, length, overlap):
    generator = torch.Generator().manual_seed(7)
    noise = torch.randn(1, 4, frames, 2, 2, generator=generator)[0].transpose(0, 1)  # the same first draw
    order = freenoise_order(frames, ContextOptions(length, overlap, freenoise=True), generator)
    assert torch.equal(noise[order], diffusers_free_noise(frames, length, length - overlap, 7))


def test_freenoise_chunks_are_permutations_of_the_first_window():
    length, stride, frames = 16, 12, 48
    order = freenoise_order(frames, ContextOptions(length, length - stride), torch.Generator().manual_seed(0))
    assert order[:length] == list(range(length))
    for start in range(length, frames, stride):
        chunk, earlier = order[start:start + stride], order[start - length:start - length + stride]
        # a shuffle of the frames one window earlier (cut short at the end), all from the first window
        assert len(set(chunk)) == len(chunk) and set(chunk) <= set(earlier)
        assert len(chunk) < stride or sorted(chunk) == sorted(earlier)
        assert all(source < length for source in chunk)
    assert order != sorted(order)


def test_freenoise_is_deterministic_per_seed():
    options = ContextOptions(16, 4, freenoise=True)
    same = [freenoise_order(40, options, torch.Generator().manual_seed(3)) for _ in range(2)]
    other = freenoise_order(40, options, torch.Generator().manual_seed(4))
    assert same[0] == same[1] != other
    assert freenoise_order(16, options, torch.Generator().manual_seed(3)) == list(range(16))
