"""Synthetic model files in the exact official key layouts (spec section 3), written from the
spec's tables, independently of the core's own layout code.

``channels`` is (c0, c1, c2): 320/640/1280 for full-size SD1.5 modules, tiny values for CPU tests.
"""

import math

import torch

TINY = (32, 64, 64)
FULL = (320, 640, 1280)

FAMILIES = {
    #             base    mid    pe_length  stores_pe  naming
    "v1":         ("sd15", False, 24, True, "original"),
    "v2":         ("sd15", True, 32, True, "original"),
    "v3":         ("sd15", False, 32, True, "original"),
    "animatelcm": ("sd15", True, 64, False, "original"),
    "sdxl_beta":  ("sdxl", False, 32, True, "original"),
    "hotshotxl":  ("sdxl", False, 24, True, "hotshotxl"),
}


def official_pe(length: int, channels: int) -> torch.Tensor:
    pe = torch.zeros(1, length, channels)
    for p in range(length):
        for i in range(0, channels, 2):
            angle = p * math.exp(i * -math.log(10000.0) / channels)
            pe[0, p, i] = math.sin(angle)
            pe[0, p, i + 1] = math.cos(angle)
    return pe


def module_prefixes(base: str, mid: bool, channels=TINY) -> list[tuple[str, int]]:
    c0, c1, c2 = channels
    if base == "sd15":
        down, up = (c0, c1, c2, c2), (c2, c2, c1, c0)
    else:
        down, up = (c0, c1, c2), (c2, c1, c0)
    out = [(f"down_blocks.{i}.motion_modules.{j}", c) for i, c in enumerate(down) for j in range(2)]
    if mid:
        out.append(("mid_block.motion_modules.0", c2))
    out += [(f"up_blocks.{i}.motion_modules.{j}", c) for i, c in enumerate(up) for j in range(3)]
    return out


def _module_tensors(c: int, pe_length: int, stores_pe: bool, hotshot: bool, gen, std: float) -> dict:
    def rnd(*shape):
        return torch.randn(*shape, generator=gen) * std

    t = {"norm.weight": 1 + rnd(c), "norm.bias": rnd(c), "proj_in.weight": rnd(c, c), "proj_in.bias": rnd(c)}
    pe_name = "pos_encoder.positional_encoding" if hotshot else "pos_encoder.pe"
    for a in (0, 1):
        p = f"transformer_blocks.0.attention_blocks.{a}."
        t[p + "to_q.weight"] = rnd(c, c)
        t[p + "to_k.weight"] = rnd(c, c)
        t[p + "to_v.weight"] = rnd(c, c)
        t[p + "to_out.0.weight"] = rnd(c, c)
        t[p + "to_out.0.bias"] = rnd(c)
        if stores_pe:
            t[p + pe_name] = official_pe(pe_length, c)
        t[f"transformer_blocks.0.norms.{a}.weight"] = 1 + rnd(c)
        t[f"transformer_blocks.0.norms.{a}.bias"] = rnd(c)
    t["transformer_blocks.0.ff.net.0.proj.weight"] = rnd(8 * c, c)
    t["transformer_blocks.0.ff.net.0.proj.bias"] = rnd(8 * c)
    t["transformer_blocks.0.ff.net.2.weight"] = rnd(c, 4 * c)
    t["transformer_blocks.0.ff.net.2.bias"] = rnd(c)
    t["transformer_blocks.0.ff_norm.weight"] = 1 + rnd(c)
    t["transformer_blocks.0.ff_norm.bias"] = rnd(c)
    t["proj_out.weight"] = rnd(c, c)
    t["proj_out.bias"] = rnd(c)
    return t


def motion_state_dict(family: str, channels=TINY, seed: int = 0, std: float = 0.2, dtype=torch.float32) -> dict:
    """A motion module of ``family`` in that family's official key layout."""
    base, mid, pe_length, stores_pe, naming = FAMILIES[family]
    gen = torch.Generator().manual_seed(seed)
    hotshot = naming == "hotshotxl"
    state = {}
    for prefix, c in module_prefixes(base, mid, channels):
        if hotshot:
            level, _, index = prefix.rpartition(".motion_modules.")
            prefix = f"{level}.temporal_attentions.{index}"
        else:
            prefix = f"{prefix}.temporal_transformer"
        for name, tensor in _module_tensors(c, pe_length, stores_pe, hotshot, gen, std).items():
            state[f"{prefix}.{name}"] = tensor.to(dtype)
    return state


def motion_lora_state_dict(family: str, channels=TINY, rank: int = 4, seed: int = 1, std: float = 0.1,
                           spelling: str = "original", with_mid: bool = True) -> dict:
    """A MotionLoRA for every attention projection, in one of the three key spellings."""
    base, mid, _, _, _ = FAMILIES[family]
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for prefix, c in module_prefixes(base, mid or with_mid, channels):
        for a in (0, 1):
            for proj in ("q", "k", "v", "out"):
                down = torch.randn(rank, c, generator=gen) * std
                up = torch.randn(c, rank, generator=gen) * std
                if spelling == "original":
                    stem = f"{prefix}.temporal_transformer.transformer_blocks.0.attention_blocks.{a}.processor.to_{proj}_lora"
                    state[f"{stem}.down.weight"], state[f"{stem}.up.weight"] = down, up
                elif spelling == "diffusers":
                    stem = f"unet.{prefix}.transformer_blocks.0.attn{a + 1}.processor.to_{proj}_lora"
                    state[f"{stem}.down.weight"], state[f"{stem}.up.weight"] = down, up
                elif spelling == "peft":
                    target = "to_out.0" if proj == "out" else f"to_{proj}"
                    stem = f"{prefix}.transformer_blocks.0.attn{a + 1}.{target}"
                    state[f"{stem}.lora_A.weight"], state[f"{stem}.lora_B.weight"] = down, up
                else:
                    raise ValueError(spelling)
    return state


def domain_adapter_state_dict(channels=TINY, rank: int = 8, seed: int = 2, std: float = 0.1) -> dict:
    """A v3 domain adapter: LoRA on SD1.5 spatial attention, old diffusers processor naming."""
    c0, c1, c2 = channels
    gen = torch.Generator().manual_seed(seed)
    places = [(f"down_blocks.{i}.attentions.{j}", c) for i, c in enumerate((c0, c1, c2)) for j in range(2)]
    places.append(("mid_block.attentions.0", c2))
    places += [(f"up_blocks.{i}.attentions.{j}", c) for i, c in ((1, c2), (2, c1), (3, c0)) for j in range(3)]
    state = {}
    for prefix, c in places:
        for attn in ("attn1", "attn2"):
            for proj in ("q", "k", "v", "out"):
                stem = f"{prefix}.transformer_blocks.0.{attn}.processor.to_{proj}_lora"
                in_features = 768 if attn == "attn2" and proj in ("k", "v") else c
                state[f"{stem}.down.weight"] = torch.randn(rank, in_features, generator=gen) * std
                state[f"{stem}.up.weight"] = torch.randn(c, rank, generator=gen) * std
    return state
