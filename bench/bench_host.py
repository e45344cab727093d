"""Sampling cost in the real ComfyUI: with vs without the motion module, and long videos in windows.

Starts a ComfyUI server (CPU) with this pack, random full-size SD1.5 weights and a
synthetic v2 motion module (the host-test cache), then measures in one run:

  1. s/step of a 16-frame prompt without and with the motion module (ratio);
  2. s/step and the server's peak RSS for 16, 32, 64, 128 frames with Context Options
     16/4 (ratios to 16 frames).

s/step = (time of a (3+N)-step prompt - time of a 3-step prompt) / N, the median over
--repeats pairs with fresh seeds: only KSampler re-runs between them (the host caches the
rest), so loading time cancels out. The machine should be otherwise idle.

    python bench/bench_host.py --comfyui ~/ComfyUI --python ~/ComfyUI/venv/bin/python
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

from host_server import CHECKPOINT, MOTION_MODULE, started_server  # first: puts the repository on sys.path
from tests.host.api import animatediff, node, txt2vid_prompt  # noqa: E402
from tests.host.server import ComfyServer  # noqa: E402


def peak_rss_reset(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def timed_run(server: ComfyServer, prompt: dict) -> float:
    start = time.perf_counter()
    server.run(prompt, timeout=3600)
    return time.perf_counter() - start


def seconds_per_step(server: ComfyServer, make_prompt, steps: int, repeats: int) -> tuple[float, float]:
    """(median s/step, peak RSS MiB over the long runs)."""
    timed_run(server, make_prompt(2, 0))  # loads the models
    per_step = []
    peak_rss_reset(server.process.popen.pid)
    for seed in range(1, repeats + 1):
        short = timed_run(server, make_prompt(3, seed))
        long = timed_run(server, make_prompt(3 + steps, seed))
        per_step.append((long - short) / steps)
    return statistics.median(per_step), peak_rss_mib(server.process.popen.pid)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comfyui", required=True, type=Path)
    parser.add_argument("--python", default=sys.executable, help="Python with ComfyUI's requirements")
    parser.add_argument("--size", type=int, default=64, help="image side in px for part 1")
    parser.add_argument("--context-size", type=int, default=32, help="image side in px for part 2")
    parser.add_argument("--steps", type=int, default=4, help="extra steps timed per measurement")
    parser.add_argument("--frames", type=int, nargs="*", default=[16, 32, 64, 128],
                        help="frame counts for part 2 (none: skip it)")
    parser.add_argument("--repeats", type=int, default=3, help="timed pairs per measurement in part 1")
    args = parser.parse_args()

    with started_server(args.comfyui, args.python) as server:
        report(server, CHECKPOINT, args)


def report(server: ComfyServer, checkpoint: str, args) -> None:
    def prompt(frames, size, with_motion, context):
        nodes = None
        if with_motion:
            nodes = animatediff(MOTION_MODULE, **({"context_options": ["context", 0]} if context else {}))
            if context:
                nodes["context"] = node("AnimateDiffContextOptions", context_length=16, context_overlap=4,
                                        context_stride=1, schedule="static", closed_loop=False, fuse_method="pyramid")
        return lambda steps, seed: txt2vid_prompt(checkpoint, frames=frames, width=size, height=size, steps=steps,
                                                  seed=seed, model=["inject", 0] if nodes else None,
                                                  extra_nodes=nodes)

    plain, _ = seconds_per_step(server, prompt(16, args.size, False, False), args.steps, args.repeats)
    motion, _ = seconds_per_step(server, prompt(16, args.size, True, False), args.steps, args.repeats)
    print(f"1. 16 frames at {args.size}x{args.size} px, cfg 7 (cond+uncond), CPU")
    print(f"   without motion module {plain:.3f} s/step, with {motion:.3f} s/step, ratio {motion / plain:.3f}")

    if not args.frames:
        return
    print(f"2. Context Options 16/4, {args.context_size}x{args.context_size} px")
    print(f"   {'frames':>6} {'s/step':>8} {'ratio':>6} {'peak RSS MiB':>12} {'ratio':>6}")
    base = None
    for frames in args.frames:
        step, rss = seconds_per_step(server, prompt(frames, args.context_size, True, True), args.steps, 1)
        base = base or (step, rss)
        print(f"   {frames:>6} {step:>8.3f} {step / base[0]:>6.2f} {rss:>12.0f} {rss / base[1]:>6.2f}")


if __name__ == "__main__":
    main()
