"""Video Combine encode speed and memory: 300 and 1,000 frames at 512x512, h264 and gif.

Each run happens in a fresh child process so peak RSS belongs to that run alone. Streaming
means the Python process's peak should sit at the input tensor plus a constant, and ffmpeg's
peak should not depend on the frame count; the table's ratios (1000 vs 300 frames) show it.

    python bench/bench_video.py
"""

import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = [("video/h264-mp4", 300), ("video/h264-mp4", 1000), ("image/gif", 300), ("image/gif", 1000)]
SIZE = 512


def _status_kib(field: str, status: Path = Path("/proc/self/status")) -> int:
    for line in status.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class ChildPeakWatcher(threading.Thread):
    """Polls the peak RSS (VmHWM) of this process's ffmpeg children.

    getrusage(RUSAGE_CHILDREN) cannot be used, nor a child that has not yet exec'd: both
    count the forked copy of this process, input tensor included.
    """

    def __init__(self):
        super().__init__(daemon=True)
        self.peak_kib = 0
        self.running = True

    def run(self):
        me = str(os.getpid())
        while self.running:
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    head, _, rest = stat.read_text().rpartition(")")
                    if rest.split()[1] == me and head.split("(", 1)[1].startswith("ffmpeg"):
                        self.peak_kib = max(self.peak_kib, _status_kib("VmHWM", stat.parent / "status"))
                except (OSError, IndexError, KeyError):
                    pass  # the process ended between listing and reading
            time.sleep(0.05)


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (ffmpeg): steadier than wall time on a busy machine."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def child(format_name: str, frame_count: int) -> dict:
    """One encode; returns its figures as a dict (printed as JSON for the parent)."""
    sys.path.insert(0, str(ROOT))
    import torch

    from video.files import save_video

    y = torch.linspace(0, 1, SIZE)[:, None]
    x = torch.linspace(0, 1, SIZE)[None, :]
    frames = torch.empty(frame_count, SIZE, SIZE, 3)
    for t in range(frame_count):  # a pattern that moves every frame, so no encoder can skip frames
        phase = 2 * math.pi * t / 48
        frames[t, ..., 0] = 0.5 + 0.5 * torch.sin(12 * x + phase + 3 * y)
        frames[t, ..., 1] = 0.5 + 0.5 * torch.cos(9 * y - phase + 2 * x)
        frames[t, ..., 2] = (x + y) / 2
    input_kib = frames.numel() * frames.element_size() // 1024
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM: measure the encode, not the set-up
    before_kib = _status_kib("VmRSS")
    watcher = ChildPeakWatcher()
    watcher.start()
    with tempfile.TemporaryDirectory() as out:
        cpu_before = _cpu_seconds()
        start = time.perf_counter()
        saved = save_video(frames, format_name, out, "bench", frame_rate=8, preview_dir=out)
        seconds = time.perf_counter() - start
        cpu_seconds = _cpu_seconds() - cpu_before
        size_mib = saved.video.stat().st_size / 2**20
    watcher.running = False
    return {
        "format": format_name, "frames": frame_count, "seconds": seconds, "fps": frame_count / seconds,
        "cpu_ms_per_frame": 1000 * cpu_seconds / frame_count,
        "input_mib": input_kib / 1024, "python_peak_mib": _status_kib("VmHWM") / 1024,
        "python_growth_mib": (_status_kib("VmHWM") - before_kib) / 1024,
        "ffmpeg_peak_mib": watcher.peak_kib / 1024, "file_mib": size_mib,
    }


def main() -> None:
    results = []
    for format_name, frame_count in RUNS:
        out = subprocess.run([sys.executable, __file__, "--child", format_name, str(frame_count)],
                             capture_output=True, text=True, check=True).stdout
        results.append(json.loads(out.splitlines()[-1]))
        print(f"done {format_name} x{frame_count}", file=sys.stderr)

    print(f"{'format':16} {'frames':>6} {'enc fps':>8} {'cpu ms/fr':>9} {'input MiB':>9} {'py peak':>8} "
          f"{'py growth':>9} {'ffmpeg peak':>11} {'file MiB':>8}")
    for r in results:
        print(f"{r['format']:16} {r['frames']:6d} {r['fps']:8.1f} {r['cpu_ms_per_frame']:9.1f} {r['input_mib']:9.0f} "
              f"{r['python_peak_mib']:8.0f} {r['python_growth_mib']:9.1f} {r['ffmpeg_peak_mib']:11.1f} {r['file_mib']:8.1f}")
    print("\nratios 1000 vs 300 frames (streaming: growth and ffmpeg peak ~1.0, time ~3.3):")
    for format_name in dict.fromkeys(f for f, _ in RUNS):
        short, long = (r for r in results if r["format"] == format_name)
        print(f"  {format_name:16} time x{long['seconds'] / short['seconds']:.2f}  "
              f"cpu x{long['cpu_ms_per_frame'] * long['frames'] / (short['cpu_ms_per_frame'] * short['frames']):.2f}  "
              f"python growth x{long['python_growth_mib'] / max(short['python_growth_mib'], 0.1):.2f}  "
              f"ffmpeg peak x{long['ffmpeg_peak_mib'] / short['ffmpeg_peak_mib']:.2f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(sys.argv[2], int(sys.argv[3]))))
    else:
        main()
