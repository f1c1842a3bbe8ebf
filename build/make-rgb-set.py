"""Builds "Coloured Fashion-MNIST 32": a 32 x 32 RGB benchmark set made from Fashion-MNIST, as IDX .gz files with
Fashion-MNIST's names, so that `mlnet-contrastive demo --full --data-dir OUT --image-size 32 --channels 3` runs on it.

No RGB image set is installed on these machines, so this one is made from what is: each Fashion-MNIST item keeps its
label and its grey-level texture, which becomes the blend weight between two colours drawn per image:
  - the item is placed at a random offset (0-4 px each way) on a 32 x 32 canvas;
  - the background is a linear gradient between two colours of random hue, the garment one colour of random hue;
  - polarity is random: light garment on a dark background or dark garment on a light one (|value difference| >= 0.3);
  - Gaussian pixel noise (sigma 4 of 255).
Hue, polarity, position and background are independent of the class, so raw pixels must cope with nuisances that
a colour-jitter / grayscale / crop-invariant encoder can learn to ignore. It tests RGB input, colour augmentation and
3-channel speed; it is not a set of natural photographs (no clutter, occlusion or 3-D pose), so figures on it say
nothing about ImageNet-like data.

    /usr/bin/python3 build/make-rgb-set.py OUT_DIR [--train N] [--test N] [--source DIR] [--seed S]
"""
import argparse, colorsys, gzip, os, struct
import numpy as np


def read_idx(path):
    with gzip.open(path) as f:
        data = f.read()
    rank = data[3]
    dims = struct.unpack('>' + 'i' * rank, data[4:4 + 4 * rank])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(dims)


def write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + struct.pack('>' + 'i' * array.ndim, *array.shape)
    # mtime=0 keeps the output byte-identical across runs
    with open(path, 'wb') as raw, gzip.GzipFile(fileobj=raw, mode='wb', compresslevel=6, mtime=0, filename='') as f:
        f.write(header + np.ascontiguousarray(array).tobytes())


def colour(rng, value_low, value_high):
    h, s, v = rng.uniform(0, 1), rng.uniform(0.35, 1), rng.uniform(value_low, value_high)
    return np.array(colorsys.hsv_to_rgb(h, s, v), np.float32)


def colourise(items, rng):
    n = items.shape[0]
    out = np.empty((n, 32, 32, 3), np.uint8)
    ramp = np.linspace(0, 1, 32, dtype=np.float32)
    for i in range(n):
        light_item = rng.uniform() < 0.5
        fg = colour(rng, 0.65, 1.0) if light_item else colour(rng, 0.05, 0.35)
        bg_range = (0.0, 0.35) if light_item else (0.65, 1.0)
        bg_a, bg_b = colour(rng, *bg_range), colour(rng, *bg_range)
        t = ramp[:, None] if rng.uniform() < 0.5 else ramp[None, :]
        background = bg_a * (1 - t[..., None]) + bg_b * t[..., None]            # [32, 32, 3]
        mask = np.zeros((32, 32), np.float32)
        dy, dx = rng.integers(0, 5, size=2)
        mask[dy:dy + 28, dx:dx + 28] = items[i] / 255.0
        image = background * (1 - mask[..., None]) + fg * mask[..., None]
        image = image * 255 + rng.normal(0, 4, size=image.shape)
        out[i] = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument('out')
    p.add_argument('--train', type=int, default=60000)
    p.add_argument('--test', type=int, default=10000)
    p.add_argument('--source', default='/usr/share/datasets/fashion-mnist')
    p.add_argument('--seed', type=int, default=0)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    for kind, n in (('train', a.train), ('t10k', a.test)):
        items = read_idx(f'{a.source}/{kind}-images-idx3-ubyte.gz')[:n]
        labels = read_idx(f'{a.source}/{kind}-labels-idx1-ubyte.gz')[:n]
        write_idx(f'{a.out}/{kind}-images-idx3-ubyte.gz', colourise(items, rng))
        write_idx(f'{a.out}/{kind}-labels-idx1-ubyte.gz', labels)
        print(f'{kind}: {n} images, 32 x 32 x 3')


if __name__ == '__main__':
    main()
