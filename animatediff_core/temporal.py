"""The AnimateDiff motion module: a temporal transformer over frames.

Spec section 1 / paper section 4.2. Input and output are ``(B*F, C, H, W)``,
batch-major (row ``b*F + f``). Every spatial position is a sequence of ``F``
frame tokens; attention mixes frames only.
"""

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .errors import MotionModelError

HEADS = 8
GROUPS = 32
GROUPNORM_SCOPES = ("per_frame", "across_frames")


def sinusoidal_pe(length: int, channels: int) -> torch.Tensor:
    """pe[p, 2i] = sin(p * div_i), pe[p, 2i+1] = cos(p * div_i), div_i = 10000^(-2i/C); (1, L, C)."""
    position = torch.arange(length).unsqueeze(1)
    div = torch.exp(torch.arange(0, channels, 2) * (-math.log(10000.0) / channels))
    pe = torch.zeros(1, length, channels)
    pe[0, :, 0::2] = torch.sin(position * div)
    pe[0, :, 1::2] = torch.cos(position * div)
    return pe


class PositionalEncoding(nn.Module):
    def __init__(self, channels: int, length: int):
        super().__init__()
        self.register_buffer("pe", sinusoidal_pe(length, channels))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        # .to(tokens): a host that offloads weights may leave this buffer elsewhere.
        return tokens + self.pe[:, : tokens.shape[1]].to(tokens)


class TemporalSelfAttention(nn.Module):
    """softmax((n Wq)(s * n Wk)^T / sqrt(d)) (n Wv) Wo, with n = LN(h) + pe."""

    def __init__(self, channels: int, pe_length: int, ops=nn):
        super().__init__()
        self.to_q = ops.Linear(channels, channels, bias=False)
        self.to_k = ops.Linear(channels, channels, bias=False)
        self.to_v = ops.Linear(channels, channels, bias=False)
        self.to_out = nn.ModuleList([ops.Linear(channels, channels), nn.Identity()])
        self.pos_encoder = PositionalEncoding(channels, pe_length)

    def forward(self, normed: torch.Tensor, key_scale) -> torch.Tensor:
        n = self.pos_encoder(normed)
        q, k, v = self.to_q(n), self.to_k(n), self.to_v(n)
        if not _is_one(key_scale):
            k = k * key_scale
        q, k, v = (rearrange(t, "n f (h d) -> n h f d", h=HEADS) for t in (q, k, v))
        o = F.scaled_dot_product_attention(q, k, v)
        return self.to_out[0](rearrange(o, "n h f d -> n f (h d)"))


class GEGLU(nn.Module):
    """value * gelu(gate), value|gate = split(proj(x)) (exact erf gelu)."""

    def __init__(self, channels: int, hidden: int, ops=nn):
        super().__init__()
        self.proj = ops.Linear(channels, 2 * hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, channels: int, ops=nn):
        super().__init__()
        # Index 1 is the dropout slot of the original code; keeping it keeps the key names.
        hidden = 4 * channels
        self.net = nn.ModuleList([GEGLU(channels, hidden, ops), nn.Identity(), ops.Linear(hidden, channels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net[2](self.net[0](x))


class TemporalTransformerBlock(nn.Module):
    def __init__(self, channels: int, pe_length: int, ops=nn):
        super().__init__()
        self.attention_blocks = nn.ModuleList([TemporalSelfAttention(channels, pe_length, ops) for _ in range(2)])
        self.norms = nn.ModuleList([ops.LayerNorm(channels) for _ in range(2)])
        self.ff = FeedForward(channels, ops)
        self.ff_norm = ops.LayerNorm(channels)

    def forward(self, h: torch.Tensor, key_scale) -> torch.Tensor:
        for attention, norm in zip(self.attention_blocks, self.norms):
            h = h + attention(norm(h), key_scale)
        return h + self.ff(self.ff_norm(h))


class TemporalTransformer(nn.Module):
    """One motion module. ``forward(x, num_frames, scale, effect)``:

    y = x + effect * proj_out(Blocks(proj_in(GroupNorm(x))))

    ``scale`` multiplies the attention keys (a softmax temperature), ``effect``
    blends the module's change in; each is a float, a per-frame sequence of
    length F, or a per-frame mask ``(F, h, w)`` resized to this block's size.
    ``ops`` supplies the Linear/LayerNorm/GroupNorm classes (a host may pass
    its own, e.g. ones that cast or offload weights).
    """

    def __init__(self, channels: int, pe_length: int, groupnorm: str = "per_frame", ops=nn):
        super().__init__()
        if groupnorm not in GROUPNORM_SCOPES:
            raise MotionModelError(f"groupnorm must be one of {GROUPNORM_SCOPES}, got {groupnorm!r}")
        self.norm = ops.GroupNorm(GROUPS, channels, eps=1e-6)
        self.proj_in = ops.Linear(channels, channels)
        self.transformer_blocks = nn.ModuleList([TemporalTransformerBlock(channels, pe_length, ops)])
        self.proj_out = ops.Linear(channels, channels)
        self.pe_length = pe_length
        self.groupnorm = groupnorm

    def forward(self, x: torch.Tensor, num_frames: int, scale=1.0, effect=1.0) -> torch.Tensor:
        if num_frames < 1:
            raise MotionModelError(f"num_frames must be at least 1, got {num_frames}")
        if x.ndim != 4 or x.shape[0] % num_frames:
            raise MotionModelError(
                f"motion module input must be (batch*frames, C, H, W) with a multiple of {num_frames} rows, "
                f"got shape {tuple(x.shape)}"
            )
        if num_frames > self.pe_length:
            raise MotionModelError(
                f"{num_frames} frames at once is more than this motion module takes ({self.pe_length}, the length "
                "of its positional encoding): add Context Options with context_length <= "
                f"{self.pe_length} to sample longer animations window by window"
            )
        if isinstance(effect, (int, float)) and effect == 0.0:
            return x
        rows, _, height, width = x.shape
        batch = rows // num_frames
        key_scale = _token_layout(frame_map(scale, num_frames, height, width, x), batch)
        normed = self.norm(x) if self.groupnorm == "per_frame" else group_norm_across_frames(self.norm, x, num_frames)
        h = self.proj_in(rearrange(normed, "(b f) c h w -> (b h w) f c", f=num_frames))
        for block in self.transformer_blocks:
            h = block(h, key_scale)
        delta = rearrange(self.proj_out(h), "(b h w) f c -> (b f) c h w", b=batch, h=height, w=width)
        effect = frame_map(effect, num_frames, height, width, x)
        if _is_one(effect):
            return x + delta
        if isinstance(effect, torch.Tensor):
            effect = effect.repeat(batch, 1, 1, 1)
        return x + effect * delta


def group_norm_across_frames(norm, x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """``norm`` (a GroupNorm, or its forward) on ``x`` = (b f) c h w with statistics over all frames
    of each video, as on a (b, c, f, h, w) tensor: over (C/G, F, H, W) of each batch item."""
    video = norm(rearrange(x, "(b f) c h w -> b c f (h w)", f=num_frames))
    return rearrange(video, "b c f (h w) -> (b f) c h w", h=x.shape[2])


def frame_map(value, num_frames: int, height: int, width: int, like: torch.Tensor):
    """A scale/effect value as a float or a tensor (F, 1, height, width) / (F, 1, 1, 1)."""
    if isinstance(value, (int, float)):
        return float(value)
    values = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if values.ndim == 0:
        return float(values)
    if values.shape[0] != num_frames:
        raise MotionModelError(
            f"a per-frame motion scale/effect has {values.shape[0]} values but {num_frames} frames are "
            "sampled: give one value per frame (or a single number)"
        )
    if values.ndim == 1:
        return values.view(num_frames, 1, 1, 1)
    if values.ndim == 3:
        return F.interpolate(values.unsqueeze(1), size=(height, width), mode="bilinear", align_corners=False)
    raise MotionModelError(f"a per-frame motion mask must be (frames, height, width), got shape {tuple(values.shape)}")


def _token_layout(values, batch: int):
    """(F, 1, H|1, W|1) -> broadcastable to tokens (B*H*W, F, C)."""
    if not isinstance(values, torch.Tensor):
        return values
    per_pixel = rearrange(values, "f 1 h w -> (h w) f 1")
    return per_pixel if per_pixel.shape[0] == 1 else per_pixel.repeat(batch, 1, 1)


def _is_one(value) -> bool:
    return not isinstance(value, torch.Tensor) and value == 1.0
