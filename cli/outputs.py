"""The files a finished prompt wrote: found in its history entry, located on disk, copied out.

Every output node reports its files in its ``ui`` result as ``{"filename", "subfolder", "type"}``
entries under a list key: ``images`` (SaveImage, and Video Combine's video or its animated
preview), ``gifs``, ``latents``, ``audio``...; the history entry's ``outputs`` holds those
results by node id.
"""

import argparse
from pathlib import Path

# ComfyUI's own flags that move the folders files are written to (see its main.py).
FOLDER_FLAGS = ("--base-directory", "--output-directory", "--temp-directory", "--input-directory")


def output_files(outputs: dict) -> list[dict]:
    """Every file entry of a history entry's ``outputs``, in node order, without repeats."""
    files = []
    for node_output in outputs.values():
        for entries in node_output.values():
            if not isinstance(entries, list):
                continue
            for entry in entries:
                if isinstance(entry, dict) and "filename" in entry and entry not in files:
                    files.append(entry)
    return files


def server_folders(argv: list[str], comfyui_path: Path | None) -> dict[str, Path] | None:
    """``{"output"|"temp"|"input": folder}`` of the server started with ``argv`` (``/system_stats``
    reports it), or None when they cannot be known: it runs a relative ``main.py`` and
    ``comfyui_path`` does not say where that is."""
    reader = argparse.ArgumentParser(add_help=False)
    for flag in FOLDER_FLAGS:
        reader.add_argument(flag)
    flags, _ = reader.parse_known_args(argv[1:])
    main_py = Path(argv[0]) if argv else Path("main.py")
    if flags.base_directory:
        base = Path(flags.base_directory)
    elif main_py.is_absolute():
        base = main_py.parent
    elif comfyui_path is not None:
        base = comfyui_path
    else:
        return None
    return {
        "output": Path(flags.output_directory) if flags.output_directory else base / "output",
        # ComfyUI puts a "temp" folder inside the one it is given.
        "temp": Path(flags.temp_directory) / "temp" if flags.temp_directory else base / "temp",
        "input": Path(flags.input_directory) if flags.input_directory else base / "input",
    }


def local_path(file_info: dict, folders: dict[str, Path]) -> Path:
    folder = folders[file_info.get("type", "output")]
    return (folder / file_info.get("subfolder", "") / file_info["filename"]).resolve()


def copy_destination(file_info: dict, out_dir: Path) -> Path:
    """Where ``--out`` puts a file: its subfolder kept, so equal names in two subfolders do not clash."""
    return (out_dir / file_info.get("subfolder", "") / file_info["filename"]).resolve()
