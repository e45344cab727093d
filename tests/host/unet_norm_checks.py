"""v1 motion models sample as the original code samples them: the image UNet's ResNet GroupNorms
and its output norm take their statistics across all frames of each video (a 5-D GroupNorm),
checked on the host's own UNet against a direct computation. Run by in_host.py."""

import torch
import torch.nn.functional as F

FRAMES, VIDEOS = 4, 2


def _tiny_unet():
    import comfy.ops
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    unet = UNetModel(image_size=None, in_channels=4, model_channels=32, out_channels=4, num_res_blocks=[1, 1],
                     channel_mult=(1, 2), transformer_depth=[1, 0], transformer_depth_output=[1, 1, 0, 0],
                     transformer_depth_middle=0, use_spatial_transformer=True, context_dim=16, num_head_channels=16,
                     legacy=False, dtype=torch.float32, device="cpu", operations=comfy.ops.disable_weight_init)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in unet.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2)
    return unet


def _inputs():
    generator = torch.Generator().manual_seed(1)
    # Frames of very different brightness: per-frame and per-video statistics disagree.
    x = torch.randn(VIDEOS * FRAMES, 4, 8, 8, generator=generator) * torch.linspace(0.2, 3.0, VIDEOS * FRAMES).view(-1, 1, 1, 1)
    return x, torch.full((VIDEOS * FRAMES,), 500.0), torch.randn(VIDEOS * FRAMES, 4, 16, generator=generator)


def _direct_5d_norm(norm):
    """The original code's GroupNorm on a (b, c, f, h, w) video, computed with F.group_norm."""
    def forward(x):
        video = x.reshape(-1, FRAMES, *x.shape[1:]).transpose(1, 2)
        out = F.group_norm(video, norm.num_groups, norm.weight, norm.bias, norm.eps)
        return out.transpose(1, 2).reshape(x.shape)

    return forward


def check_resnet_and_output_norms_normalise_across_frames_like_a_5d_groupnorm():
    from animatediff_pack.nodes.host import normalise_across_frames, restore_norm, unet_resnet_norms
    from comfy.ldm.modules.attention import SpatialTransformer
    from comfy.ldm.modules.diffusionmodules.openaimodel import ResBlock

    unet, (x, t, context) = _tiny_unet(), _inputs()
    norms = unet_resnet_norms(unet)
    resnets = [m for m in unet.modules() if isinstance(m, ResBlock)]
    attention_norms = [m.norm for m in unet.modules() if isinstance(m, SpatialTransformer)]
    assert len(norms) == 2 * len(resnets) + 1 and norms[-1] is unet.out[0]
    assert attention_norms and not any(n is m for n in attention_norms for m in norms)
    with torch.no_grad():
        per_frame = unet(x, t, context)
        for norm in norms:
            normalise_across_frames(norm, lambda: FRAMES)
        ours = unet(x, t, context)
        second_alone = unet(x[FRAMES:], t[FRAMES:], context[FRAMES:])
        for norm in norms:
            restore_norm(norm)
        assert torch.equal(unet(x, t, context), per_frame)  # restored exactly
        for norm in norms:
            norm.forward = _direct_5d_norm(norm)
        reference = unet(x, t, context)
    assert torch.allclose(ours, reference, atol=1e-5), (ours - reference).abs().max()
    assert (ours - per_frame).abs().max() > 1e-2  # the scope changes the frames
    assert torch.allclose(ours[FRAMES:], second_alone, atol=1e-5)  # each video (cond, uncond, window) on its own


def check_only_v1_changes_the_unets_norms_and_only_while_injected():
    from animatediff_pack.animatediff_core import load_motion_model
    from animatediff_pack.nodes.sampling import MotionSampling, MotionSettings
    from animatediff_pack.tests.factories import motion_state_dict

    class Patcher:  # what MotionSampling.inject/eject read of a ModelPatcher
        def __init__(self, unet):
            self.model = type("BaseModel", (), {"diffusion_model": unet})()

    unet = _tiny_unet()
    patcher = Patcher(unet)
    from animatediff_pack.nodes.host import unet_resnet_norms

    for family, expected in (("v1", True), ("v2", False), ("v3", False)):
        sampling = MotionSampling(load_motion_model(motion_state_dict(family)), [], MotionSettings())
        sampling.inject(patcher)
        assert all(("forward" in norm.__dict__) is expected for norm in unet_resnet_norms(unet)), family
        sampling.eject(patcher)
        assert not any("forward" in norm.__dict__ for norm in unet_resnet_norms(unet)), family
