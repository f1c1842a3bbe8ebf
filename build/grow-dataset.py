#!/usr/bin/python3
"""Writes a larger IDX image set grown from Fashion-MNIST by augmentation: copy k of every training image, shifted by a
random offset of up to 2 pixels in each direction (edges filled with black) and mirrored at random. Raw (uncompressed)
IDX, so that reading it costs no inflation. Usage: build/grow-dataset.py SOURCE.gz COPIES OUT.idx [SEED]"""
import gzip
import struct
import sys

import numpy as np

source, copies, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(int(sys.argv[4]) if len(sys.argv) > 4 else 0)
with gzip.open(source) as f:
    magic, count, height, width = struct.unpack(">IIII", f.read(16))
    images = np.frombuffer(f.read(), dtype=np.uint8).reshape(count, height, width)
with open(out, "wb") as f:
    f.write(struct.pack(">IIII", magic, count * copies, height, width))
    for copy in range(copies):
        grown = np.zeros_like(images)
        dy, dx = rng.integers(-2, 3, size=(2, count))
        flip = rng.random(count) < 0.5
        padded = np.pad(images, ((0, 0), (2, 2), (2, 2)))
        for i in range(count):
            tile = padded[i, 2 + dy[i]:2 + dy[i] + height, 2 + dx[i]:2 + dx[i] + width]
            grown[i] = tile[:, ::-1] if flip[i] else tile
        f.write(grown.tobytes())
print(f"wrote {count * copies:,} images of {height}x{width} to {out}")
