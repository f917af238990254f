"""An animated GIF written frame by frame, with one palette for all frames.

``Image.save(save_all=True)`` keeps every frame in memory until the end
(~230 MB for 1000 frames of 640 x 360); this writer streams each frame to disk
as it comes, so a 1000-step episode costs the memory of one frame. All frames
share a fixed global palette (the renderer knows its colours), which avoids
colour flicker and makes quantisation a table look-up (~0.3 ms a frame
instead of ~15 ms for a median cut). The file appears under its name only when
complete (written to a temporary file, then renamed).
"""
from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Optional, Sequence, Tuple

from PIL import GifImagePlugin, Image

RGB = Tuple[int, int, int]

#: Viewers stretch GIF delays under 2 centiseconds to ~10 cs, so faster
#: animations play slower; 50 frames/s is the fastest that plays as asked.
MAX_FPS = 50.0


def palette_image(colors: Sequence[RGB]) -> Image.Image:
    """A "P" image whose 256-entry palette starts with ``colors`` (at most 256);
    the remaining entries repeat the first colour."""
    if not 1 <= len(colors) <= 256:
        raise ValueError(f"a GIF palette holds 1 to 256 colours, got {len(colors)}")
    padded = list(colors) + [colors[0]] * (256 - len(colors))
    image = Image.new("P", (1, 1))
    image.putpalette([c for rgb in padded for c in rgb])
    return image


class GifWriter:
    """Append RGB frames of one size; ``close()`` finishes the file.

    Args:
        path: the .gif to write (its directory must exist).
        size: (width, height) of every frame.
        fps: frames per second of playback, in (0, MAX_FPS].
        palette: the colours frames are mapped to (nearest colour, no dither).
        loop: times to repeat; 0 loops forever.

    Use as a context manager: on an exception the partial file is removed.
    """

    def __init__(self, path: os.PathLike, size: Tuple[int, int], fps: float, palette: Sequence[RGB], loop: int = 0):
        if not 0 < fps <= MAX_FPS:
            raise ValueError(f"fps must be in (0, {MAX_FPS:g}], got {fps!r}")
        self.path = Path(path)
        self.size = (int(size[0]), int(size[1]))
        self.fps = float(fps)
        self.frames = 0
        self._palette = palette_image(palette)
        self._tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self._file = open(self._tmp, "wb")
        self._file.write(self._header(loop))

    def _header(self, loop: int) -> bytes:
        width, height = self.size
        header = b"GIF89a" + struct.pack("<HHBBB", width, height, 0xF7, 0, 0)  # 256-colour global table
        header += bytes(self._palette.getpalette()[:768])
        header += b"!\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", loop) + b"\x00"
        return header

    def append(self, image: Image.Image) -> None:
        if image.size != self.size:
            raise ValueError(f"frame size {image.size} differs from the GIF's {self.size}")
        indexed = image.convert("RGB").quantize(palette=self._palette, dither=Image.Dither.NONE)
        # Delays are whole centiseconds: spread the rounding so that the
        # average rate is exactly ``fps``.
        delay_cs = round(100 * (self.frames + 1) / self.fps) - round(100 * self.frames / self.fps)
        for chunk in GifImagePlugin.getdata(indexed, duration=10 * delay_cs):
            self._file.write(chunk)
        self.frames += 1

    def close(self) -> Path:
        """Finish the file and move it to ``path``."""
        if self._file.closed:
            return self.path
        if self.frames == 0:
            self.abort()
            raise ValueError(f"no frames were added to {self.path}")
        self._file.write(b";")
        self._file.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the partial file."""
        if not self._file.closed:
            self._file.close()
        if self._tmp.exists():
            self._tmp.unlink()

    def __enter__(self) -> "GifWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> Optional[bool]:
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return None
