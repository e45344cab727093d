"""Seams between context windows, per fuse method, with and without FreeNoise, in the real ComfyUI.

Renders one long animation per setting (random full-size SD1.5 weights and a synthetic v2
motion module from the host-test cache, the same seed everywhere) and reports a seam
score: the mean frame-to-frame change of the latents across window boundaries divided by
the mean change inside windows (1.0 = no seam; above 1, the boundaries jump).

    python bench/bench_seams.py --comfyui ~/ComfyUI --python ~/ComfyUI/venv/bin/python
"""

import argparse
import sys
from pathlib import Path

from host_server import CHECKPOINT, MOTION_MODULE, started_server  # first: puts the repository on sys.path
from animatediff_core.context import FUSE_METHODS, ContextOptions, context_windows  # noqa: E402
from tests.host.api import animatediff, node, txt2vid_prompt  # noqa: E402
from tests.host.server import ComfyServer  # noqa: E402


def seam_score(latent, options: ContextOptions) -> float:
    """Mean |x[i+1] - x[i]| over boundary pairs (a window ends at i or starts at i+1) / over the rest."""
    frames = latent.shape[0]
    change = (latent[1:] - latent[:-1]).abs().flatten(1).mean(1)
    windows = context_windows(frames, options)
    boundary = {w[-1] for w in windows if w[-1] < frames - 1} | {w[0] - 1 for w in windows if w[0] > 0}
    inside = [i for i in range(frames - 1) if i not in boundary]
    return float(change[sorted(boundary)].mean() / change[inside].mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comfyui", required=True, type=Path)
    parser.add_argument("--python", default=sys.executable, help="Python with ComfyUI's requirements")
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--size", type=int, default=16, help="image side in px")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=1, help="seeds averaged per setting")
    args = parser.parse_args()

    with started_server(args.comfyui, args.python) as server:
        report(server, CHECKPOINT, args)


def report(server: ComfyServer, checkpoint: str, args) -> None:
    print(f"{args.frames} frames at {args.size}x{args.size} px, windows 16/4 (static), {args.steps} steps, "
          f"mean of {args.seeds} seeds; seam score (1.0 = no seam)")
    print(f"   {'fuse method':<15} {'FreeNoise off':>13} {'FreeNoise on':>13}")
    for fuse in FUSE_METHODS:
        scores = []
        for freenoise in (False, True):
            options = ContextOptions(16, 4, fuse_method=fuse, freenoise=freenoise)
            per_seed = []
            for seed in range(args.seeds):
                nodes = animatediff(MOTION_MODULE, context_options=["context", 0])
                nodes["context"] = node("AnimateDiffContextOptions", context_length=16, context_overlap=4,
                                        context_stride=1, schedule="static", closed_loop=False, fuse_method=fuse,
                                        freenoise=freenoise)
                prompt = txt2vid_prompt(checkpoint, frames=args.frames, width=args.size, height=args.size,
                                        steps=args.steps, seed=seed, model=["inject", 0], extra_nodes=nodes)
                per_seed.append(seam_score(server.latent(server.run(prompt, timeout=7200), "save"), options))
            scores.append(sum(per_seed) / len(per_seed))
        print(f"   {fuse:<15} {scores[0]:>13.3f} {scores[1]:>13.3f}")


if __name__ == "__main__":
    main()
