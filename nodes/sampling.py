"""AnimateDiff at sampling time: motion layers in the UNet, context windows, hint slicing, self-check."""

import contextlib
import logging
from dataclasses import dataclass

import comfy.patcher_extension
import torch

from ..animatediff_core import MotionModelError
from ..animatediff_core.context import (ContextOptions, context_windows, describe_plan, evaluate_windowed,
                                         freenoise_order, window_weights)
from .host import (MotionLayer, normalise_across_frames, restore_norm, run_motion_layer, show_text, unet_blocks,
                   unet_resnet_norms)
from .host_features import require

log = logging.getLogger("AnimateDiff")

FRAMES_KEY = "animatediff_frames"  # transformer_options: absolute frame indices of this UNet call
FEW_FRAMES = 8
WRAPPER_KEY = "animatediff"


@dataclass(frozen=True)
class MotionSettings:
    scale: float = 1.0
    effect: float = 1.0
    scale_mask: torch.Tensor | None = None  # (frames or 1, h, w), multiplies scale
    effect_mask: torch.Tensor | None = None
    start_percent: float = 0.0
    end_percent: float = 1.0
    context: ContextOptions | None = None


@dataclass
class RunStats:
    frames: int = 0
    block_calls: int = 0  # motion modules that ran
    skipped_calls: int = 0  # outside start/end percent or at effect 0
    largest_window: int = 0


class MotionSampling:
    """Everything one Inject into Model output does at sampling time, attached to a clone of the user's MODEL
    (which stays unchanged) as an injection and as sampler wrappers; shared by that clone's clones."""

    def __init__(self, motion_model, placements, settings: MotionSettings):
        self.motion_model = motion_model
        self.placements = placements
        self.settings = settings
        self.stats = RunStats()
        self.sigma_range = (float("inf"), 0.0)
        self.video_frames = 0  # frames per video in the UNet call running now (a window's, or all)

    def __deepcopy__(self, memo):
        # MODEL clones deep-copy their options; this object holds the motion modules.
        return self

    def inject(self, patcher) -> None:
        diffusion_model = patcher.model.diffusion_model
        self.eject(patcher)
        blocks, sequences = self.motion_model.blocks, unet_blocks(diffusion_model)
        for placement in self.placements:
            layer = MotionLayer(placement.module, lambda x, options, name=placement.module:
                                self.run_block(name, blocks[name], x, options))
            sequences[placement.block].insert(placement.index, layer)
        if self.motion_model.traits.unet_groupnorm == "across_frames":  # v1, as the original samples it
            for norm in unet_resnet_norms(diffusion_model):
                normalise_across_frames(norm, lambda: self.video_frames)

    def eject(self, patcher) -> None:
        diffusion_model = patcher.model.diffusion_model
        for sequence in unet_blocks(diffusion_model).values():
            for index in reversed(range(len(sequence))):
                if isinstance(sequence[index], MotionLayer):
                    del sequence[index]
        for norm in unet_resnet_norms(diffusion_model):
            restore_norm(norm)

    def outer_sample(self, executor, noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None,
                     disable_pbar=False, seed=None, *args, **kwargs):
        guider = executor.class_obj
        _refuse_host_context_windows(guider.model_patcher.model_options)
        frames = noise.shape[0]
        context = self.settings.context
        if context is not None and context.freenoise and frames > context.context_length:
            noise = noise[freenoise_order(frames, context, torch.Generator().manual_seed(seed or 0))]
        self._check_frames(frames)
        model_sampling = guider.model_patcher.get_model_object("model_sampling")
        start, end = self.settings.start_percent, self.settings.end_percent
        self.sigma_range = (model_sampling.percent_to_sigma(start), model_sampling.percent_to_sigma(end))
        self.stats = RunStats(frames=frames)
        plan = f"{frames} frames in one window" if context is None else describe_plan(frames, context)
        log.info("AnimateDiff: %s; %s", self.motion_model.describe(), plan)
        try:
            output = executor(noise, latent_image, sampler, sigmas, denoise_mask, callback, disable_pbar, seed, *args,
                              **kwargs)
        finally:
            # Out of the UNet after every run, also after an error or an interrupt.
            guider.model_patcher.eject_model()
        self._self_check(len(sigmas) - 1)
        return output

    # Wrappers pass on every argument they don't use: host releases add keyword arguments
    # (force_full_load= in 0.8, force_offload= later, latent_shapes= to OUTER_SAMPLE).

    def prepare_sampling(self, executor, model, noise_shape, *args, **kwargs):
        # The host reserves activation memory for the batch it is shown: a window, not the video.
        context = self.settings.context
        if context is not None and noise_shape[0] > context.context_length:
            noise_shape = [context.context_length, *noise_shape[1:]]
        return executor(model, noise_shape, *args, **kwargs)

    def calc_cond_batch(self, executor, model, conds, x_in, timestep, model_options, *args, **kwargs):
        frames = x_in.shape[0]
        controls = _controls_in(conds, frames)
        context = self.settings.context
        if context is None or frames <= context.context_length:
            self.video_frames = frames
            return executor(model, conds, x_in, timestep, _with_frames(model_options, list(range(frames))), *args,
                            **kwargs)
        if controls:
            require("ControlNet hints", "ControlNet under Context Options")
        windows = context_windows(frames, context, _step_index(timestep, model_options))
        weights = window_weights(windows, frames, context)

        def predict(window):  # one prediction per cond, for the window's frames
            self.video_frames = len(window)
            with _hints_for(controls, window):
                return executor(model, _slice_conds(conds, window, frames), x_in[window], timestep[window],
                                _with_frames(model_options, window), *args, **kwargs)

        return evaluate_windowed(predict, frames, windows, weights)

    def run_block(self, name, block, x, transformer_options):
        chunks = len(transformer_options.get("cond_or_uncond", [0]))
        frames = x.shape[0] // chunks
        window = transformer_options.get(FRAMES_KEY) or list(range(frames))
        sigma = float(transformer_options["sigmas"][0]) if "sigmas" in transformer_options else None
        high, low = self.sigma_range
        settings = self.settings
        if (sigma is not None and not low <= sigma <= high) or (settings.effect == 0 and settings.effect_mask is None):
            self.stats.skipped_calls += 1
            return x
        self.stats.block_calls += 1
        self.stats.largest_window = max(self.stats.largest_window, frames)
        scale = _per_frame(settings.scale, settings.scale_mask, window, "motion_scale_mask")
        effect = _per_frame(settings.effect, settings.effect_mask, window, "effect_mask")
        return self.call_block(name, block, x, frames, scale=scale, effect=effect)

    @staticmethod
    def call_block(name, block, x, frames, **settings):
        """The motion module's forward; training replaces it with one that adds its LoRA."""
        return block(x, frames, **settings)

    def _check_frames(self, frames: int) -> None:
        limit = self.motion_model.pe_length
        if self.settings.context is None:
            self.motion_model.check_frames(
                frames, "latent_image", "connect a Context Options node to Inject into Model's context_options input "
                f"to sample {frames} frames window by window (context_length {min(16, limit)}), or use at most "
                f"{limit} frames")
        if frames < FEW_FRAMES:
            warning = (f"AnimateDiff: only {frames} frame(s) in the latent batch; motion modules were trained on 16 "
                       f"and give noisy or static results below {FEW_FRAMES}. Set the latent batch_size to 16.")
            log.warning(warning)
            show_text(warning)

    def _self_check(self, steps: int) -> None:
        stats = self.stats
        if stats.block_calls == 0 and stats.skipped_calls == 0 and stats.frames > 1:
            raise MotionModelError(
                "AnimateDiff self-check: the motion modules never ran during sampling, so the frames would not move "
                "together. Another node probably replaced the model's patches after Inject into Model; connect "
                "Inject into Model directly before the sampler.")
        report = (f"AnimateDiff: motion modules ran {stats.block_calls} times ({len(self.placements)} blocks) on "
                  f"{stats.frames} frames over {steps} steps, up to {stats.largest_window} frames at once")
        if stats.skipped_calls:
            report += f"; {stats.skipped_calls} calls skipped by start/end percent or effect 0"
        log.info(report)
        show_text(report)


def attach(model, sampling: MotionSampling, motion_patcher) -> None:
    """Attach to a MODEL clone: weights load with the UNet, layers go in at load and out after sampling."""
    require("model injections", "Inject into Model")
    require("sampling wrappers", "Inject into Model")
    model.set_additional_models(WRAPPER_KEY, [motion_patcher])
    model.set_injections(WRAPPER_KEY, [comfy.patcher_extension.PatcherInjection(sampling.inject, sampling.eject)])
    model.set_model_forward_timestep_embed_patch((MotionLayer, run_motion_layer))
    wrappers = comfy.patcher_extension.WrappersMP
    for kind, wrapper in ((wrappers.OUTER_SAMPLE, sampling.outer_sample),
                          (wrappers.PREPARE_SAMPLING, sampling.prepare_sampling),
                          (wrappers.CALC_COND_BATCH, sampling.calc_cond_batch)):
        model.remove_wrappers_with_key(kind, WRAPPER_KEY)  # injecting twice: the last one wins
        model.add_wrapper_with_key(kind, WRAPPER_KEY, wrapper)


def _refuse_host_context_windows(model_options: dict) -> None:
    # The host's own windows (its "Context Windows" nodes) split the video outside this pack's
    # wrappers: no release slices ControlNet hints per window, 0.3.64 not even per-frame conds,
    # and newer ones add an anchor frame to each window. Mixed with ours, windows would nest.
    if model_options.get("context_handler") is not None:
        raise MotionModelError(
            "ComfyUI's own context-window node (Context Windows) is applied to this model, which AnimateDiff "
            "cannot sample correctly (ControlNet hints and per-frame inputs would not follow the windows). "
            "Remove it and connect AnimateDiff Context Options to Inject into Model's context_options instead")


def _with_frames(model_options: dict, window: list[int]) -> dict:
    transformer_options = {**model_options.get("transformer_options", {}), FRAMES_KEY: window}
    return {**model_options, "transformer_options": transformer_options}


def _step_index(timestep: torch.Tensor, model_options: dict) -> int:
    sample_sigmas = model_options.get("transformer_options", {}).get("sample_sigmas")
    if sample_sigmas is None:
        return 0
    return int((sample_sigmas.to(timestep.device) - timestep[0]).abs().argmin())


def _per_frame(value: float, mask, window: list[int], input_name: str):
    if mask is None:
        return value
    if mask.shape[0] == 1:
        return value * mask.expand(len(window), *mask.shape[1:])
    if mask.shape[0] <= max(window):
        raise MotionModelError(
            f"{input_name}: the mask has {mask.shape[0]} frames but frame {max(window)} is sampled: "
            "give one mask frame per latent frame (or a single mask for all)")
    return value * mask[window]


def _controls_in(conds, frames: int) -> list:
    """Every control object (ControlNet, T2I adapter, ...) in the conds, chains unrolled, once each; each has one
    hint image per frame or one for all."""
    found = {}
    for cond_list in conds:
        for cond in cond_list or []:
            control = cond.get("control")
            while control is not None:
                found[id(control)] = control
                control = control.previous_controlnet
    for control in found.values():
        hints = getattr(control, "cond_hint_original", None)
        if hints is not None and 1 < hints.shape[0] < frames:
            raise MotionModelError(
                f"ControlNet image: {hints.shape[0]} hint images for {frames} frames. Give one hint image per "
                "frame (hint i conditions frame i), or a single image for all frames")
    return list(found.values())


@contextlib.contextmanager
def _hints_for(controls, window: list[int]):
    """Give every control with per-frame hints (checked: one per frame) the window's own, then put them back."""
    saved = [(c, c.cond_hint_original) for c in controls if getattr(c, "cond_hint_original", None) is not None
             and c.cond_hint_original.shape[0] > 1]
    try:
        for control, hints in saved:
            _set_hints(control, hints[window])
        yield
    finally:
        for control, hints in saved:
            _set_hints(control, hints)


def _set_hints(control, hints) -> None:
    """Set the hints and drop the host's resized copies, so that the next UNet call resizes these.

    Up to 0.8 the host caches one resized hint in ``cond_hint`` (T2I adapters also their
    features in ``control_input``); newer releases keep them per latent size in the dicts
    ``cond_hints`` / ``control_inputs`` and no longer read ``cond_hint``. Clear whichever exist.
    """
    control.cond_hint_original = hints
    for name in ("cond_hint", "control_input"):
        if hasattr(control, name):
            setattr(control, name, None)
    for name in ("cond_hints", "control_inputs"):
        cache = getattr(control, name, None)
        if isinstance(cache, dict):
            cache.clear()


def _slice_conds(conds, window: list[int], frames: int):
    """Conds for a window: per-frame tensors (batch == frames) keep only the window's frames."""
    def per_frame(value) -> bool:
        return isinstance(value, torch.Tensor) and value.shape[0] == frames

    def in_window(tensor):
        return tensor[torch.tensor(window, device=tensor.device)]

    def sliced(cond: dict) -> dict:
        model_conds = {name: value._copy_with(in_window(value.cond)) if per_frame(getattr(value, "cond", None))
                       else value for name, value in cond.get("model_conds", {}).items()}
        cond = {**cond, "model_conds": model_conds}
        if per_frame(cond.get("mask")):
            cond["mask"] = in_window(cond["mask"])
        return cond

    return [None if cond_list is None else [sliced(cond) for cond in cond_list] for cond_list in conds]
