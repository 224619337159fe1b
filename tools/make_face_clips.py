"""Make the 1080p clips with 1, 2 and 4 faces that ``panini-video bench gpu`` measures.

    .venv/bin/python tools/make_face_clips.py [OUT_DIR] [--frames N] [--testdata DIR]

OUT_DIR defaults to the cache's ``bench-clips`` folder (where ``bench gpu`` looks); the clips are
tiles of ``videos/talking_720p_silent_audio.mp4`` (see ``panini_video/bench/clips.py``). Never
commit them: ``*.mp4`` is ignored.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from panini_video.bench.clips import clips_dir, face_clips

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=None, help="folder for the clips (default: the cache's)")
    parser.add_argument("--frames", type=int, default=240, help="frames per clip (default 240, 8 s at 30 fps)")
    default_data = Path(os.environ.get("PANINI_TESTDATA", ROOT.parent / "shared" / "testdata"))
    parser.add_argument("--testdata", type=Path, default=default_data, help="the shared test data folder")
    args = parser.parse_args(argv)
    clips = face_clips(args.testdata, frames=args.frames, folder=args.out or clips_dir())
    for faces, path in clips.items():
        print(f"{faces} face(s): {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
