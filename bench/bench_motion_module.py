"""Time and peak memory of one full set of SD1.5 motion modules: ours vs diffusers.

Identical weights (ours are loaded from the diffusers MotionAdapter's state dict),
identical inputs, interleaved runs in one process; prints the ratio ours/diffusers.

    python bench/bench_motion_module.py                 # CPU: 128x128 px (16x16 latent), fp32
    python bench/bench_motion_module.py --device cuda --dtype fp16 --size 512
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from animatediff_core import load_motion_model  # noqa: E402
from memory import peak_memory  # noqa: E402

# Latent positions per UNet level are the image size / 8, halved at every level.
LEVEL_OF_PREFIX = {"down_blocks": lambda i: i, "mid_block": lambda i: 3, "up_blocks": lambda i: 3 - i}


def block_inputs(blocks, size: int, frames: int, batch: int, device, dtype):
    inputs = {}
    for name, block in blocks.items():
        kind, _, rest = name.partition(".")
        level = LEVEL_OF_PREFIX[kind](int(rest.split(".")[0]) if kind != "mid_block" else 0)
        side = size // 8 // 2**level
        c = block.norm.weight.shape[0]
        inputs[name] = torch.randn(batch * frames, c, side, side, device=device, dtype=dtype)
    return inputs


def run_all(call, inputs, frames, device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for name, x in inputs.items():
        call(name, x, frames)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (latent = size/8)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--batch", type=int, default=2, help="2 = cond and uncond together")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
    torch.set_flush_denormal(True)
    torch.manual_seed(0)

    from diffusers import MotionAdapter

    adapter = MotionAdapter(use_motion_mid_block=True, motion_max_seq_length=32).to(device, dtype).eval()
    ours = load_motion_model(adapter.state_dict(), groupnorm="across_frames")  # shares the tensors
    blocks = ours.blocks
    inputs = block_inputs(blocks, args.size, args.frames, args.batch, device, dtype)
    implementations = {
        "diffusers": lambda name, x, f: adapter.get_submodule(name)(x, num_frames=f),
        "ours": lambda name, x, f: blocks[name](x, f),
    }
    times = {name: [] for name in implementations}
    peaks = {}
    with torch.inference_mode():
        for call in implementations.values():  # warm-up
            run_all(call, inputs, args.frames, device)
        for _ in range(args.repeats):
            for name, call in implementations.items():
                times[name].append(run_all(call, inputs, args.frames, device))
        for name, call in implementations.items():
            with peak_memory(device) as peak:
                run_all(call, inputs, args.frames, device)
            peaks[name] = peak["peak_mib"]

    params = sum(p.numel() for p in adapter.parameters())
    print(f"{len(blocks)} motion modules, {params / 1e6:.0f}M parameters, {args.size}x{args.size} px, "
          f"{args.frames} frames x batch {args.batch}, {args.dtype} on {device}")
    print(f"{'impl':<10} {'median s':>9} {'peak MiB':>9}")
    for name in implementations:
        print(f"{name:<10} {statistics.median(times[name]):>9.4f} {peaks[name]:>9.1f}")
    ratio = statistics.median(times["ours"]) / statistics.median(times["diffusers"])
    memory_ratio = peaks["ours"] / peaks["diffusers"] if peaks["diffusers"] > 0 else float("nan")
    print(f"time ratio ours/diffusers: {ratio:.3f}   peak memory ratio: {memory_ratio:.3f}")


if __name__ == "__main__":
    main()
