"""Context windows: coverage, cost at the floor, schedules, fuse weights and the windowed evaluation."""

import itertools
import math

import pytest
import torch

from animatediff_core.context import (
    FUSE_METHODS,
    SCHEDULES,
    ContextOptions,
    context_windows,
    describe_plan,
    evaluate_windowed,
    window_weights,
)
from animatediff_core.errors import MotionModelError

LENGTH_OVERLAP = [(16, 4), (16, 8), (24, 4), (32, 8), (8, 2)]


def spacing(window, num_frames):
    """The constant step (mod num_frames) between consecutive frames of a window, or None."""
    steps = {(b - a) % num_frames for a, b in zip(window, window[1:])}
    return steps.pop() if len(steps) == 1 else None


def evaluations_per_frame(num_frames, options, steps=1):
    """Average UNet frame-evaluations per output frame over ``steps`` sampling steps."""
    evaluated = sum(len(w) for step in range(steps) for w in context_windows(num_frames, options, step))
    return evaluated / (num_frames * steps)


def wraps(window, num_frames):
    return num_frames - 1 in window and 0 in window and spacing(window, num_frames) == 1


# --- coverage and shape -------------------------------------------------------------------

SAMPLED_OPTIONS = [
    ContextOptions(length, overlap, stride, schedule, closed_loop)
    for (length, overlap), stride, schedule, closed_loop in itertools.product(
        [(16, 4), (8, 2), (6, 5)], [1, 2, 4], SCHEDULES, [False, True]
    )
]


@pytest.mark.parametrize("options", SAMPLED_OPTIONS[::2] + SAMPLED_OPTIONS[1::6], ids=repr)
def test_every_frame_covered_by_full_length_windows(options):
    for num_frames in range(1, 201):
        for step in (0, 3):
            windows = context_windows(num_frames, options, step)
            covered = set()
            for window in windows:
                assert len(window) == min(options.context_length, num_frames)
                assert len(set(window)) == len(window)
                assert all(0 <= f < num_frames for f in window)
                covered.update(window)
            assert covered == set(range(num_frames)), (num_frames, step)


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("stride", [1, 4])
def test_short_animation_is_one_plain_window(schedule, stride):
    options = ContextOptions(context_stride=stride, schedule=schedule, closed_loop=True)
    for num_frames in range(1, 17):
        assert context_windows(num_frames, options, step=5) == [list(range(num_frames))]


# --- cost -------------------------------------------------------------------------------

@pytest.mark.parametrize("length,overlap", LENGTH_OVERLAP)
@pytest.mark.parametrize("schedule", ["static", "uniform"])
def test_line_windows_are_the_fewest_possible(length, overlap, schedule):
    options = ContextOptions(length, overlap, schedule=schedule)
    for num_frames in range(length + 1, 513):
        windows = context_windows(num_frames, options, step=num_frames)
        count = len(windows)
        assert count == math.ceil((num_frames - overlap) / (length - overlap))
        # One window fewer could not reach the last frame with overlaps >= overlap.
        assert length + (count - 2) * (length - overlap) < num_frames
        starts = [w[0] for w in windows]
        assert starts[0] == 0 and windows[-1][-1] == num_frames - 1
        assert all(spacing(w, num_frames) == 1 for w in windows)
        assert all(len(set(a) & set(b)) >= overlap for a, b in zip(windows, windows[1:]))
        if schedule == "static":
            gaps = [b - a for a, b in zip(starts, starts[1:])]
            assert max(gaps) - min(gaps) <= 1
        assert evaluations_per_frame(num_frames, options) == pytest.approx(count * length / num_frames)


@pytest.mark.parametrize("length,overlap", LENGTH_OVERLAP)
@pytest.mark.parametrize("options", [dict(closed_loop=True), dict(schedule="looped")], ids=repr)
def test_ring_windows_are_the_fewest_possible(length, overlap, options):
    options = ContextOptions(length, overlap, **options)
    for num_frames in range(length + 1, 513):
        windows = context_windows(num_frames, options, step=num_frames)
        assert len(windows) == math.ceil(num_frames / (length - overlap))
        # Around the ring, including last -> first, neighbours share at least `overlap` frames.
        starts = sorted(w[0] for w in windows)
        gaps = [(b - a) % num_frames for a, b in zip(starts, starts[1:] + starts[:1])]
        assert max(gaps) <= length - overlap


def test_cost_is_the_window_floor_where_the_leading_pack_pays_more():
    # The leading pack pays 1.73x with its uniform schedule at 24 frames; the floor there is 32/24.
    assert evaluations_per_frame(24, ContextOptions(schedule="uniform"), steps=10) == pytest.approx(32 / 24)
    assert evaluations_per_frame(48, ContextOptions()) == pytest.approx(64 / 48)
    # 32 frames need 3 windows of 16 (2 would overlap by 0 < 4): that is the floor.
    assert evaluations_per_frame(32, ContextOptions()) == pytest.approx(1.5)


# --- schedules --------------------------------------------------------------------------

@pytest.mark.parametrize("options", [ContextOptions(closed_loop=True), ContextOptions(schedule="looped")], ids=repr)
def test_ring_windows_wrap_from_last_frame_to_first(options):
    for num_frames in (17, 40, 64, 101):
        assert any(wraps(w, num_frames) for w in context_windows(num_frames, options))


def test_line_windows_never_wrap():
    for schedule in ("static", "uniform"):
        windows = context_windows(64, ContextOptions(schedule=schedule), step=1)
        assert all(w == list(range(w[0], w[0] + 16)) for w in windows)


def test_static_windows_are_the_same_every_step():
    for options in (ContextOptions(), ContextOptions(closed_loop=True, context_stride=2)):
        first = context_windows(70, options, 0)
        assert all(context_windows(70, options, step) == first for step in range(1, 8))


def test_uniform_moves_seams_when_there_is_slack():
    # 38 frames, 16/4: 3 windows with 2 frames of spare overlap, so the middle window can slide.
    options = ContextOptions(schedule="uniform")
    plans = [context_windows(38, options, step) for step in range(8)]
    assert plans[0] != plans[1]
    assert len({tuple(map(tuple, p)) for p in plans}) == 3  # slides through all 3 positions
    assert all(len(p) == 3 for p in plans)  # same cost every step


def test_uniform_and_looped_rotate_ring_windows():
    for options in (ContextOptions(schedule="uniform", closed_loop=True), ContextOptions(schedule="looped")):
        first, second = context_windows(64, options, 0), context_windows(64, options, 1)
        assert first != second and len(first) == len(second)
        assert any(wraps(w, 64) for w in second)


# --- context_stride ---------------------------------------------------------------------

def test_stride_adds_dilated_windows():
    base = context_windows(64, ContextOptions())
    for stride, dilations in ((2, {2}), (3, {2}), (4, {2, 4})):
        windows = context_windows(64, ContextOptions(context_stride=stride))
        found = {spacing(w, 64) for w in windows} - {1}
        assert found == dilations
        assert windows[: len(base)] == base
        # Every residue class of every dilation is covered by its own windows.
        for d in dilations:
            covered = set().union(*(w for w in windows if spacing(w, 64) == d))
            assert covered == set(range(64))


def test_stride_skips_dilations_too_long_for_the_animation():
    # 4 * 16 > 40 frames: only dilation 2 fits.
    windows = context_windows(40, ContextOptions(context_stride=4))
    assert {spacing(w, 40) for w in windows} == {1, 2}


def test_dilated_ring_windows_keep_spacing_across_the_wrap():
    for num_frames in (40, 41):  # dilation 2 divides 40; on 41 one cycle visits every frame
        windows = context_windows(num_frames, ContextOptions(context_stride=2, closed_loop=True))
        dilated = [w for w in windows if spacing(w, num_frames) == 2]
        assert dilated and any(max(w) - min(w) > 2 * 15 for w in dilated)  # some wrap
        assert set().union(*dilated) == set(range(num_frames))


# --- weights ----------------------------------------------------------------------------

@pytest.mark.parametrize("fuse_method", FUSE_METHODS)
@pytest.mark.parametrize("options", [dict(), dict(closed_loop=True), dict(context_stride=2, schedule="uniform")], ids=repr)
def test_weights_positive_and_shaped(fuse_method, options):
    options = ContextOptions(fuse_method=fuse_method, **options)
    for num_frames in (5, 16, 17, 38, 64):
        windows = context_windows(num_frames, options, step=1)
        weights = window_weights(windows, num_frames, options)
        assert len(weights) == len(windows)
        for window, weight in zip(windows, weights):
            assert weight.dtype == torch.float32 and weight.shape == (len(window),)
            assert bool((weight > 0).all())


def test_flat_and_pyramid_weights():
    windows = context_windows(40, ContextOptions())
    for weight in window_weights(windows, 40, ContextOptions(fuse_method="flat")):
        assert torch.equal(weight, torch.ones(16))
    for weight in window_weights(windows, 40, ContextOptions(fuse_method="pyramid")):
        assert torch.equal(weight, weight.flip(0))
        assert weight[0] == 1 and weight.max() == 8 and weight.argmax() == 7


@pytest.mark.parametrize("options", [dict(), dict(closed_loop=True), dict(context_overlap=8, context_stride=2)], ids=repr)
def test_overlap_linear_cross_fades_only_in_overlaps(options):
    options = ContextOptions(fuse_method="overlap-linear", **options)
    for num_frames in (17, 38, 50, 64):
        windows = context_windows(num_frames, options)
        weights = window_weights(windows, num_frames, options)
        base = [(w, weight) for w, weight in zip(windows, weights) if spacing(w, num_frames) == 1]
        coverage = torch.zeros(num_frames)
        total = torch.zeros(num_frames)
        for window, weight in base:
            coverage[window] += 1
            total[window] += weight
        for window, weight in base:
            once = coverage[window] == 1
            assert torch.equal(weight[once], torch.ones(int(once.sum())))
            assert weight.min() < 1  # every window here meets a neighbour
        # Neighbours' ramps are complementary: where at most two windows meet, weights sum to 1.
        pairs = coverage <= 2
        assert torch.allclose(total[pairs], torch.ones(int(pairs.sum())), atol=1e-6)


def test_overlap_linear_single_window_is_flat():
    options = ContextOptions(fuse_method="overlap-linear")
    assert torch.equal(window_weights(context_windows(12, options), 12, options)[0], torch.ones(12))


# --- evaluate_windowed ------------------------------------------------------------------

def frame_codes(num_frames, channels=3):
    """x[f] filled with f (exact in float32)."""
    return torch.arange(num_frames, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, channels, 2, 2).contiguous()


def test_single_window_calls_fn_once_and_returns_its_outputs():
    x = torch.randn(12, 4, 3, 3)
    seen = []

    def fn(window):
        seen.append(window)
        return [torch.sin(x) * 3 + 1, x]

    windows = context_windows(12, ContextOptions())
    out = evaluate_windowed(fn, 12, windows, window_weights(windows, 12, ContextOptions()))
    assert torch.equal(out[0], torch.sin(x) * 3 + 1) and out[1] is x
    assert seen == [list(range(12))]


@pytest.mark.parametrize("fuse_method", FUSE_METHODS)
@pytest.mark.parametrize("options", [dict(), dict(schedule="looped", context_stride=2), dict(schedule="uniform")], ids=repr)
def test_identity_fn_returns_every_output(fuse_method, options):
    options = ContextOptions(fuse_method=fuse_method, **options)
    cond, uncond = torch.randn(50, 4, 3, 3), torch.randn(50, 4, 3, 3)
    windows = context_windows(50, options, step=2)
    out = evaluate_windowed(lambda w: [cond[w], uncond[w]], 50, windows, window_weights(windows, 50, options))
    assert [o.shape for o in out] == [cond.shape, uncond.shape] and out[0].dtype == cond.dtype
    assert torch.allclose(out[0], cond, rtol=1e-6, atol=1e-6) and torch.allclose(out[1], uncond, rtol=1e-6, atol=1e-6)


def test_each_window_is_called_once_and_outputs_never_mix():
    num_frames = 45
    options = ContextOptions(closed_loop=True, context_stride=2)
    windows = context_windows(num_frames, options)
    codes, calls = frame_codes(num_frames), []

    def fn(window):
        calls.append(window)
        return [codes[window] + 1000 * k for k in range(3)]

    out = evaluate_windowed(fn, num_frames, windows, window_weights(windows, num_frames, options))
    assert calls == windows
    for k, fused in enumerate(out):
        assert torch.allclose(fused, codes + 1000 * k, atol=1e-3)


def test_half_precision_outputs_keep_their_dtype():
    x = torch.randn(40, 4, 2, 2).half()
    windows = context_windows(40, ContextOptions())
    (out,) = evaluate_windowed(lambda w: [x[w]], 40, windows, window_weights(windows, 40, ContextOptions()))
    assert out.dtype == torch.float16 and torch.allclose(out, x)


# --- validation and reporting -----------------------------------------------------------

@pytest.mark.parametrize(
    "fields,names",
    [
        (dict(context_length=0), "context_length"),
        (dict(context_length=1, context_overlap=0), "context_length"),
        (dict(context_overlap=-1), "context_overlap"),
        (dict(context_overlap=16), "context_overlap 16 must be less than context_length 16"),
        (dict(context_length=8, context_overlap=9), "lower context_overlap to 7"),
        (dict(context_stride=0), "context_stride"),
        (dict(schedule="random"), "schedule must be one of static, uniform, looped; got 'random'"),
        (dict(fuse_method="gauss"), "fuse_method must be one of pyramid, flat, overlap-linear; got 'gauss'"),
    ],
)
def test_bad_options_are_refused_with_a_message_naming_the_input(fields, names):
    with pytest.raises(MotionModelError) as error:
        ContextOptions(**fields)
    assert names in str(error.value)


def test_describe_plan():
    assert describe_plan(48, ContextOptions()) == (
        "48 frames, 4 windows of 16 (overlap >= 4), static schedule, 1.33 UNet frame-evaluations per frame"
    )
    looped = describe_plan(64, ContextOptions(schedule="looped", context_stride=2))
    assert "around the loop" in looped and "dilated" in looped
    assert "one window" in describe_plan(16, ContextOptions())
