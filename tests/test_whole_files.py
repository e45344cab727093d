"""Files written whole or not at all (video/whole_files.py), as every writer of the pack uses them."""

import os
import subprocess
import sys

import pytest

from video.whole_files import atomic_path


def test_the_file_appears_only_when_complete(tmp_path):
    path = tmp_path / "camera.safetensors"
    with atomic_path(path) as partial:
        partial.write_bytes(b"data")
        assert not path.exists()
        assert partial.parent == tmp_path and partial.name.startswith(".") and partial.name.endswith(".partial")
    assert path.read_bytes() == b"data"
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, OSError])
def test_an_interrupted_write_leaves_nothing(tmp_path, interruption):
    with pytest.raises(interruption):
        with atomic_path(tmp_path / "camera.safetensors") as partial:
            partial.write_bytes(b"half a file")
            raise interruption
    with pytest.raises(interruption):
        with atomic_path(tmp_path / "frames") as partial:  # a folder (PNG sequences)
            partial.mkdir()
            (partial / "frame_00001.png").write_bytes(b"x")
            raise interruption
    assert list(tmp_path.iterdir()) == []


def test_keep_suffix_ends_in_the_files_own_suffix(tmp_path):
    with atomic_path(tmp_path / "model.safetensors", keep_suffix=True) as partial:
        assert partial.name.endswith(".partial.safetensors")
        partial.write_bytes(b"x")
    assert (tmp_path / "model.safetensors").exists()


def test_the_next_write_removes_a_killed_writers_files_but_not_a_running_ones(tmp_path):
    """A process killed inside atomic_path leaves its temporary file; the next write to the folder
    removes it, whatever its suffix, and leaves alone the temporary files of processes that still run."""
    script = ("import sys, os, pathlib; from video.whole_files import atomic_path\n"
              "writes = [atomic_path(pathlib.Path(n), keep_suffix=n.endswith('.safetensors')) for n in sys.argv[1:]]\n"
              "for write in writes:\n"
              "    write.__enter__().write_bytes(b'x')\n"
              "os._exit(0)  # killed: no clean-up runs\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "a.mp4"), str(tmp_path / "b.safetensors")],
                   check=True, cwd=root, env={**os.environ, "PYTHONPATH": root})
    assert len(list(tmp_path.iterdir())) == 2
    running = atomic_path(tmp_path / "c.mp4")  # a write still in progress
    running.__enter__().write_bytes(b"x")
    with atomic_path(tmp_path / "d.mp4") as partial:
        partial.write_bytes(b"x")
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".c.mp4.")) == ["d.mp4"]
    assert len(list(tmp_path.glob(".c.mp4.*.partial"))) == 1
    running.__exit__(None, None, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mp4", "d.mp4"]
