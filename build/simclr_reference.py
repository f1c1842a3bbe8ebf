"""PyTorch reference of MLNet.Contrastive's SimCLR recipe, for build/bench's side-by-side figures.

Same encoder (ResNet-style, small-image stem 16, stages 32-64-128, one block each, D = 128, normalisation inside),
projection head (128 -> 512 -> BN -> ReLU -> 128), per-sample views (crop 0.25-1 with log-uniform aspect 3/4-4/3 and
flip as one bilinear affine resample, brightness/contrast jitter with p = 0.8, Gaussian noise sigma 0.05 with p = 0.5),
NT-Xent tau = 0.2, AdamW (lr 2e-3, weight decay 1e-4), 5 % linear warm-up then cosine over the time budget, batch 256,
a uint8 image store converted per batch. Views/s = views of all steps / wall-clock seconds of the loop, as in C#.

    /usr/bin/python3 simclr_reference.py --data-dir DIR --seconds 600 --threads 2 [--embed OUT_PREFIX]

Prints one JSON line; with --embed, writes OUT_PREFIX.train.f32 and OUT_PREFIX.test.f32 ([N, 768] float32, eval mode:
the embedding MLNet.Contrastive exports, the last two stages averaged over a 2 x 2 grid and concatenated).
"""
import argparse, gzip, json, math, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx_images(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    n, h, w = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
    return torch.from_numpy(np.frombuffer(data, dtype=np.uint8, offset=16).copy()).view(n, 1, h, w)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class Encoder(nn.Module):
    def __init__(self, stem=16, widths=(32, 64, 128)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU())
        blocks, width = [], stem
        for w in widths:
            blocks.append(Block(width, w, 2))
            width = w
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x):
        return self.blocks(self.stem((x - 0.5) / 0.5)).mean(dim=(2, 3))

    def embed(self, x):
        x = self.stem((x - 0.5) / 0.5)
        stages = []
        for block in self.blocks:
            x = block(x)
            stages.append(F.adaptive_avg_pool2d(x, 2).flatten(1))
        return torch.cat(stages[-2:], dim=1)


class Head(nn.Module):
    def __init__(self, d=128, hidden=512, out=128):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(d, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, out))

    def forward(self, x):
        return self.layers(x)


def uniform(n, low, high, g):
    return torch.rand(n, generator=g) * (high - low) + low


def chance(n, p, g):
    return torch.rand(n, generator=g) < p


def augment(x, g):
    b = x.shape[0]
    area = uniform(b, 0.25, 1.0, g)
    ratio = uniform(b, math.log(3 / 4), math.log(4 / 3), g).exp()
    w = (area * ratio).sqrt().clamp(max=1)
    h = (area / ratio).sqrt().clamp(max=1)
    cx = uniform(b, -1, 1, g) * (1 - w)
    cy = uniform(b, -1, 1, g) * (1 - h)
    flip = 1 - 2 * chance(b, 0.5, g).float()
    zeros = torch.zeros(b)
    theta = torch.stack([w * flip, zeros, cx, zeros, h, cy], 1).view(b, 2, 3)
    x = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), "bilinear", "border", align_corners=False)
    apply = chance(b, 0.8, g).float()
    factor = lambda s: (1 + uniform(b, -s, s, g) * apply).view(-1, 1, 1, 1)
    x = (x * factor(0.4)).clamp_(0, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * factor(0.4) + mean).clamp_(0, 1)
    noise = torch.randn(x.shape, generator=g) * 0.05
    return (x + noise * chance(b, 0.5, g).view(-1, 1, 1, 1)).clamp_(0, 1)


def nt_xent(z1, z2, tau=0.2):
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = (z @ z.t() / tau).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(logits, targets)


def embed(encoder, images, batch=512):
    encoder.eval()
    out = []
    with torch.no_grad():
        for s in range(0, images.shape[0], batch):
            out.append(encoder.embed(images[s:s + batch].float().div_(255)))
    return torch.cat(out).numpy().astype(np.float32)


def profile(encoder, head, optimizer, train, g, batch, steps):
    """Mean ms per step of: augmentation, encoder forward, head and loss, backward, optimizer, whole step."""
    phases = [0.0] * 6
    for step in range(5 + steps):
        start = time.perf_counter()
        images = train[:batch].float().div_(255)
        views = torch.cat([augment(images, g), augment(images, g)])
        marks = [time.perf_counter()]
        features = encoder(views); marks.append(time.perf_counter())
        loss = nt_xent(*head(features).split(batch)); marks.append(time.perf_counter())
        optimizer.zero_grad(); loss.backward(); marks.append(time.perf_counter())
        optimizer.step(); marks.append(time.perf_counter())
        loss.item(); marks.append(time.perf_counter())
        if step >= 5:
            for i in range(5):
                phases[i] += marks[i] - (start if i == 0 else marks[i - 1])
            phases[5] += marks[5] - start
    return [1000 * p / steps for p in phases]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", required=True)
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--train-count", type=int, default=0, help="use the first N training images (0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--embed")
    p.add_argument("--profile", type=int, default=0, help="time N steps by phase (after 5 warm-up steps) and exit")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    train = read_idx_images(f"{a.data_dir}/train-images-idx3-ubyte.gz")
    if a.train_count:
        train = train[:a.train_count]
    encoder, head = Encoder(), Head()
    params = list(encoder.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=2e-3, weight_decay=1e-4)
    g = torch.Generator().manual_seed(a.seed)
    if a.profile:
        print(" ".join("%.1f" % t for t in profile(encoder, head, optimizer, train, g, a.batch_size, a.profile)))
        return
    order_rng = np.random.default_rng(a.seed)
    steps_per_epoch = train.shape[0] // a.batch_size
    steps, losses, start = 0, [], time.perf_counter()
    encoder.train(); head.train()
    while time.perf_counter() - start < a.seconds:
        order = torch.from_numpy(order_rng.permutation(train.shape[0]))
        for i in range(steps_per_epoch):
            progress = (time.perf_counter() - start) / a.seconds
            if progress >= 1:
                break
            lr = 2e-3 * (progress / 0.05 if progress < 0.05 else 0.5 * (1 + math.cos(math.pi * (progress - 0.05) / 0.95)))
            for group in optimizer.param_groups:
                group["lr"] = lr
            images = train[order[i * a.batch_size:(i + 1) * a.batch_size]].float().div_(255)
            views = torch.cat([augment(images, g), augment(images, g)])
            z = head(encoder(views))
            loss = nt_xent(z[:a.batch_size], z[a.batch_size:])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            steps += 1
    seconds = time.perf_counter() - start
    result = {"steps": steps, "seconds": round(seconds, 1), "views_per_second": round(steps * 2 * a.batch_size / seconds, 1),
              "epochs": round(steps * a.batch_size / train.shape[0], 2), "last_loss": round(float(np.mean(losses[-20:])), 4),
              "torch": torch.__version__, "threads": torch.get_num_threads()}
    if a.embed:
        embed(encoder, train if not a.train_count else read_idx_images(f"{a.data_dir}/train-images-idx3-ubyte.gz")).tofile(a.embed + ".train.f32")
        embed(encoder, read_idx_images(f"{a.data_dir}/t10k-images-idx3-ubyte.gz")).tofile(a.embed + ".test.f32")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
