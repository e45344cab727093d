"""Train MotionLoRA in the real ComfyUI: seconds per step and peak memory, with and without
gradient checkpointing, at several sizes x 16 frames.

Starts a ComfyUI server with this pack, random full-size SD1.5 weights and a synthetic v2
motion module (the host-test cache), and runs the training prompt of the host tests
(Camera Motion Clips of two stills -> Train MotionLoRA, rank 64, batch 1).

s/step = (time of a (1+N)-step training - time of a 1-step training) / N with fresh seeds,
so loading and the VAE encode cancel out. Peak memory is the peak RSS of a server started
for that configuration alone, models included (a CPU measure). The machine should be
otherwise idle.

    python bench/bench_training.py --comfyui ~/ComfyUI --python ~/ComfyUI/venv/bin/python --sizes 64 128 256
"""

import argparse
import time
from pathlib import Path

from bench_host import peak_rss_mib
from host_server import CHECKPOINT, MOTION_MODULE, started_server  # first: puts the repository on sys.path
from tests.host.api import training_prompt  # noqa: E402


def timed(server, prompt) -> float:
    start = time.perf_counter()
    server.run(prompt, timeout=6 * 3600)
    return time.perf_counter() - start


def measure(comfyui: Path, python: str, size: int, checkpointing: bool, steps: int, frames: int,
            rank: int) -> tuple[float, float]:
    """(s/step, the server's peak RSS MiB), in a fresh server: a process keeps the heap of its
    earlier work, so only a new one shows this configuration's own peak."""
    def prompt(n, seed):
        return training_prompt(CHECKPOINT, MOTION_MODULE, "bench", steps=n, frames=frames, size=size, seed=seed,
                               rank=rank, gradient_checkpointing=checkpointing)

    with started_server(comfyui, python) as server:
        timed(server, prompt(1, 0))  # loads models, makes the stills
        short = timed(server, prompt(1, 1))
        long = timed(server, prompt(1 + steps, 2))
        return (long - short) / steps, peak_rss_mib(server.process.popen.pid)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comfyui", required=True, type=Path)
    parser.add_argument("--python", required=True, help="Python with ComfyUI's requirements")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2, help="extra steps timed per measurement")
    args = parser.parse_args()

    print(f"Train MotionLoRA, {args.frames} frames, rank {args.rank}, batch 1")
    print(f"{'size':>5} {'checkpointing':>13} {'s/step':>8} {'peak RSS MiB':>12}   time / memory vs without")
    for size in args.sizes:
        without = measure(args.comfyui, args.python, size, False, args.steps, args.frames, args.rank)
        with_ = measure(args.comfyui, args.python, size, True, args.steps, args.frames, args.rank)
        print(f"{size:>5} {'off':>13} {without[0]:>8.2f} {without[1]:>12.0f}")
        print(f"{size:>5} {'on':>13} {with_[0]:>8.2f} {with_[1]:>12.0f}   "
              f"{with_[0] / without[0]:.2f} / {with_[1] / without[1]:.2f}", flush=True)

if __name__ == "__main__":
    main()
