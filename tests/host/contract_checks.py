"""Contract checks: the pack called exactly as the newest ComfyUI source calls it.

Newer ComfyUI releases than the two in ../shared/host cannot run here, so these checks
replay how the newest public source (Comfy-Org/ComfyUI) calls into a pack: wrapper
signatures, weight-adapter rebuilding, ControlNet hint caching. Each check names the file
and commit it follows. They run inside a host release's Python (in_host.py), so the host's
own executor and LoRA classes are used.

Commits: 783545f6 is upstream master as of 2026-08-22 (release 0.33.0); 03b1ca67 is the
newest comfy/controlnet.py stored (release 0.38.x), the first with the per-size hint cache.
"""

import os
import tempfile

import torch


def motion_sampling(context_length=None, overlap=4):
    from animatediff_pack.animatediff_core.context import ContextOptions
    from animatediff_pack.nodes.sampling import MotionSampling, MotionSettings

    context = ContextOptions(context_length, overlap) if context_length else None
    return MotionSampling(motion_model=None, placements=[], settings=MotionSettings(context=context))


# -- 1. wrappers receive the keyword arguments newer hosts add --------------------------------

def check_prepare_sampling_passes_force_full_load_and_force_offload():
    """comfy/sampler_helpers.py @783545f6, prepare_sampling():
    executor.execute(model, noise_shape, conds, model_options=model_options,
                     force_full_load=force_full_load, force_offload=force_offload)."""
    from comfy.patcher_extension import WrapperExecutor

    seen = {}

    def host_prepare_sampling(model, noise_shape, conds, model_options=None, force_full_load=False, force_offload=False):
        seen.update(noise_shape=list(noise_shape), model_options=model_options, force_full_load=force_full_load,
                    force_offload=force_offload)
        return "real_model", conds, []

    sampling = motion_sampling(context_length=16)
    executor = WrapperExecutor.new_executor(host_prepare_sampling, [sampling.prepare_sampling])
    result = executor.execute("model", (48, 4, 8, 8), [], model_options={"k": 1}, force_full_load=True,
                              force_offload=True)
    assert result == ("real_model", [], []), result
    # The memory estimate is for one window, and the host's own keywords arrive unchanged.
    assert seen == {"noise_shape": [16, 4, 8, 8], "model_options": {"k": 1}, "force_full_load": True,
                    "force_offload": True}, seen


def check_outer_sample_passes_latent_shapes():
    """comfy/samplers.py @783545f6, CFGGuider.sample(): executor.execute(noise, latent_image, sampler,
    sigmas, denoise_mask, callback, disable_pbar, seed, latent_shapes=latent_shapes)."""
    from comfy.patcher_extension import WrapperExecutor

    sampling = _with_motion_model(motion_sampling())

    class Guider:  # the attributes of CFGGuider the wrapper reads
        model_patcher = _StubPatcher()

        def outer_sample(self, noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None,
                         disable_pbar=False, seed=None, latent_shapes=None):
            sampling.stats.block_calls += 1  # as if the motion modules ran
            return ("sampled", latent_shapes, seed)

    guider = Guider()
    executor = WrapperExecutor.new_class_executor(guider.outer_sample, guider, [sampling.outer_sample])
    noise = torch.zeros(16, 4, 8, 8)
    output = executor.execute(noise, noise, "sampler", torch.ones(3), None, None, False, 7, latent_shapes=[noise.shape])
    assert output == ("sampled", [noise.shape], 7), output
    assert guider.model_patcher.ejected


def check_calc_cond_batch_takes_the_five_host_arguments():
    """comfy/samplers.py @783545f6, _calc_cond_batch_outer(): executor.execute(model, conds, x_in,
    timestep, model_options), all positional; the result is one tensor per cond."""
    from comfy.patcher_extension import WrapperExecutor

    def host_calc_cond_batch(model, conds, x_in, timestep, model_options):
        return [x_in * (i + 1) for i in range(len(conds))]

    sampling = motion_sampling(context_length=16)
    x = torch.randn(24, 4, 2, 2)
    executor = WrapperExecutor.new_executor(host_calc_cond_batch, [sampling.calc_cond_batch])
    out = executor.execute("model", [[{}], [{}]], x, torch.full((24,), 5.0), {"transformer_options": {}})
    assert len(out) == 2 and torch.allclose(out[0], x) and torch.allclose(out[1], 2 * x)


def check_timestep_embed_patch_takes_the_host_arguments():
    """comfy/ldm/modules/diffusionmodules/openaimodel.py @783545f6, forward_timestep_embed():
    handler(layer, x, emb, context, transformer_options, output_shape, time_context,
    num_video_frames, image_only_indicator)."""
    from animatediff_pack.nodes.host import MotionLayer, run_motion_layer

    layer = MotionLayer("down_blocks.0.motion_modules.0", lambda x, options: x + options["add"])
    x = torch.zeros(2, 4, 2, 2)
    out = run_motion_layer(layer, x, None, None, {"add": 1.0}, None, None, None, None)
    assert torch.equal(out, x + 1)


# -- 2. weight adapters survive the host rebuilding them --------------------------------------

def check_lora_patches_survive_the_dynamic_vram_rebuild():
    """comfy/lora.py @783545f6, prefetch_prepared_value(): a WeightAdapterBase is rebuilt as
    type(value)(value.loaded_keys, <its weights, tuple for tuple>), then comfy.lora.calculate_weight
    calls adapter.calculate_weight(weight, key, strength, strength_model, offset, function,
    intermediate_dtype, original_weights)."""
    import comfy.lora
    from animatediff_pack.nodes.host import low_rank_patch
    from comfy.weight_adapter.base import WeightAdapterBase

    generator = torch.Generator().manual_seed(0)
    up, down = torch.randn(8, 2, generator=generator), torch.randn(2, 6, generator=generator)
    weight = torch.randn(8, 6, generator=generator)
    patch = low_rank_patch(up, down)
    assert isinstance(patch, WeightAdapterBase)
    weights = patch.weights
    rebuilt = type(patch)(patch.loaded_keys, tuple(weights) if isinstance(weights, tuple) else list(weights))
    # (strength_patch, adapter, strength_model, offset, function), as ModelPatcher.add_patches stores it
    merged = comfy.lora.calculate_weight([(0.5, rebuilt, 1.0, None, None)], weight.clone(), "key")
    assert torch.allclose(merged, weight + 0.5 * up @ down, atol=1e-5)


def check_every_motion_lora_patch_is_rebuildable():
    """The patches Apply MotionLoRA puts on the motion modules' ModelPatcher, rebuilt as in
    comfy/lora.py @783545f6 prefetch_prepared_value(), give the LoRA's weights."""
    import comfy.lora
    from animatediff_pack.animatediff_core import load_motion_lora
    from animatediff_pack.nodes import host
    from animatediff_pack.tests.factories import motion_lora_state_dict, motion_state_dict

    handle = host.load_motion_model_file(_saved(motion_state_dict("v2"), "mm.safetensors"))
    lora = load_motion_lora(_saved(motion_lora_state_dict("v2"), "lora.safetensors"))
    patcher = host.motion_patcher_for(handle.with_lora(lora, 0.75))
    assert patcher.patches, "no LoRA patch was added"
    weights = dict(handle.model.module.named_parameters())
    for key, entries in patcher.patches.items():
        rebuilt = [(s, type(v)(v.loaded_keys, tuple(v.weights)), sm, o, f) for s, v, sm, o, f in entries]
        up, down = lora.layers[key]
        expected = weights[key].float() + 0.75 * up.float() @ down.float()
        merged = comfy.lora.calculate_weight(rebuilt, weights[key].detach().float().clone(), key)
        assert torch.allclose(merged, expected, atol=1e-4), key


# -- 3. per-window ControlNet hints under both hint-caching schemes ----------------------------

class _CachingControl:
    """The parts of a ControlNet that per-window slicing meets: ``get_control`` resizes
    ``cond_hint_original`` to the latent's size once and reuses that, then broadcasts it over
    the batch of the call. ``per_size_cache``: the newest scheme, a dict per latent size."""

    def __init__(self, hints: torch.Tensor, per_size_cache: bool):
        from comfy.controlnet import ControlBase

        self.__dict__.update(vars(ControlBase()))  # every attribute a real control starts with
        self.cond_hint_original = hints
        self.per_size_cache = per_size_cache
        if per_size_cache:
            self.cond_hints = {}

    def get_control(self, x_noisy, t, cond, batched_number, transformer_options=None):
        from comfy.controlnet import broadcast_image_to

        size = (x_noisy.shape[2], x_noisy.shape[3])
        if self.per_size_cache:
            # comfy/controlnet.py @03b1ca67, ControlNet.get_control(): cond_hints[(h, w)] is reused,
            # the broadcast result is local; cond_hint is never read.
            hint = self.cond_hints.get(size)
            if hint is None:
                hint = self.cond_hints[size] = self._resized(size)
            if x_noisy.shape[0] != hint.shape[0]:
                hint = broadcast_image_to(hint, x_noisy.shape[0], batched_number)
            return hint
        # comfy/controlnet.py @783545f6 (and 0.3.64, 0.8.0), ControlNet.get_control(): cond_hint is
        # rebuilt only when None or of another size; the broadcast overwrites it.
        if self.cond_hint is None or tuple(self.cond_hint.shape[2:]) != tuple(s * 8 for s in size):
            self.cond_hint = self._resized(size)
        if x_noisy.shape[0] != self.cond_hint.shape[0]:
            self.cond_hint = broadcast_image_to(self.cond_hint, x_noisy.shape[0], batched_number)
        return self.cond_hint

    def _resized(self, size):
        return torch.nn.functional.interpolate(self.cond_hint_original, size=(size[0] * 8, size[1] * 8))


def _windowed_hints_reach_their_frames(per_size_cache: bool):
    frames = 40
    hints = torch.arange(frames, dtype=torch.float32).view(frames, 1, 1, 1).expand(frames, 3, 16, 16).clone()
    control = _CachingControl(hints, per_size_cache)
    conds = [[{"control": control}], [{"control": control}]]

    def host_calc_cond_batch(model, conds, x_in, timestep, model_options):
        # Like samplers._calc_cond_batch: cond and uncond in one batch, get_control(input_x, ...).
        batch = torch.cat([x_in] * len(conds))
        hint = control.get_control(batch, timestep, None, len(conds), {})
        per_frame = hint[:, 0, 0, 0].view(-1, 1, 1, 1).expand(-1, *x_in.shape[1:])
        return list(per_frame.chunk(len(conds)))

    sampling = motion_sampling(context_length=16, overlap=4)
    from comfy.patcher_extension import WrapperExecutor

    executor = WrapperExecutor.new_executor(host_calc_cond_batch, [sampling.calc_cond_batch])
    out = executor.execute("model", conds, torch.zeros(frames, 4, 2, 2), torch.full((frames,), 3.0),
                           {"transformer_options": {}})
    seen = out[0][:, 0, 0, 0]
    # Each frame was conditioned only by its own hint, in every window that held it.
    assert torch.allclose(seen, torch.arange(frames, dtype=torch.float32)), seen.tolist()
    assert torch.equal(control.cond_hint_original, hints)  # the user's hints are back in place


def check_windows_get_their_own_hints_with_the_single_hint_cache():
    """comfy/controlnet.py @783545f6 (same in 0.3.64 and 0.8.0): get_control caches cond_hint."""
    _windowed_hints_reach_their_frames(per_size_cache=False)


def check_windows_get_their_own_hints_with_the_per_size_hint_cache():
    """comfy/controlnet.py @03b1ca67: get_control caches resized hints in cond_hints[(h, w)]."""
    _windowed_hints_reach_their_frames(per_size_cache=True)


# -- 4. the random checkpoint builder and the newest save signature ----------------------------

def check_checkpoint_builder_gives_the_unet_first_where_the_host_wants_it():
    """comfy/model_base.py @783545f6: BaseModel.state_dict_for_saving(self, unet_state_dict,
    clip_state_dict=None, vae_state_dict=None, clip_vision_state_dict=None)."""
    from animatediff_pack.demo_models import checkpoint_state_dict

    class NewestModel:
        diffusion_model = torch.nn.Linear(2, 2)

        def state_dict_for_saving(self, unet_state_dict, clip_state_dict=None, vae_state_dict=None,
                                  clip_vision_state_dict=None):
            return {"unet": sorted(unet_state_dict), "clip": clip_state_dict, "vae": vae_state_dict}

    saved = checkpoint_state_dict(NewestModel(), {"c": 1}, {"v": 2})
    assert saved == {"unet": ["bias", "weight"], "clip": {"c": 1}, "vae": {"v": 2}}, saved


# -- helpers -----------------------------------------------------------------------------------

class _StubPatcher:
    """What MotionSampling.outer_sample reads of the guider's ModelPatcher."""

    def __init__(self):
        self.model_options = {}
        self.ejected = False

    def get_model_object(self, name):
        import comfy.model_sampling

        class Sampling(comfy.model_sampling.ModelSamplingDiscrete, comfy.model_sampling.EPS):
            pass

        return Sampling()

    def eject_model(self):
        self.ejected = True


def _with_motion_model(sampling):
    from animatediff_pack.animatediff_core import load_motion_model
    from animatediff_pack.tests.factories import motion_state_dict

    sampling.motion_model = load_motion_model(motion_state_dict("v2"))
    return sampling


def _saved(state_dict: dict, name: str) -> str:
    import safetensors.torch

    path = os.path.join(tempfile.mkdtemp(prefix="animatediff-contract-"), name)
    safetensors.torch.save_file(state_dict, path)
    return path
