"""PyTorch reference of MLNet.Contrastive's SimCLR recipe, for build/bench's and build/speed's side-by-side figures.

Same encoder (ResNet-style, stem 16, stages 32-64-128, one block each, D = 128, normalisation inside; the small-image
stem, a 3 x 3 convolution, up to 64 px, the ImageNet-style stem, 7 x 7 stride 2 and a 3 x 3 max-pool, above, as
EncoderOptions.For chooses), projection head (128 -> 512 -> BN -> ReLU -> 128), per-sample views as
AugmentationOptions.ForImageSize gives them (crop with log-uniform aspect 3/4-4/3 and flip as one bilinear affine
resample; colour jitter with p = 0.8: brightness and contrast 0.4, and for RGB saturation 0.2 and a YIQ hue rotation
of up to 0.1 turn, then grayscale with p = 0.2; up to 64 px crop 0.25-1 and Gaussian noise sigma 0.05 with p = 0.5,
above it crop 0.08-1 and a separable Gaussian blur, sigma 0.1-2, with p = 0.5), NT-Xent tau = 0.2, AdamW (lr 2e-3,
weight decay 1e-4), 5 % linear warm-up then cosine over the time budget, batch 256, a uint8 image store converted per
batch. Views/s = views of all steps / wall-clock seconds of the loop, as in C#.

With --encoder resnet18 the encoder is torchvision's resnet18 without its classifier (D = 512, so the head is
512 -> 512 -> BN -> ReLU -> 128), with the stem EncoderOptions.For gives our ResNet18 preset: torchvision's own
(7 x 7 stride 2 and max-pool) above 64 px, a 3 x 3 stride-1 convolution without pooling up to 64 px; ImageNet
normalisation on RGB, mean 0.5 / std 0.5 on gray; the embedding is the last stage's global average, as ours.
--channels-last stores the encoder's weights and its input views channels-last (torch.channels_last), as a
performance-minded PyTorch user would on CPU (ours lays its activations out that way too).

    /usr/bin/python3 simclr_reference.py --data-dir DIR --seconds 600 --threads 2 [--embed OUT_PREFIX]
        [--image-size S] [--channels 1|3] [--train-count N] [--encoder small|resnet18] [--channels-last]

Images are read from DIR's IDX files ([N, H, W] gray or [N, H, W, 3] RGB) and resized to S x S once, before the clock
starts (bilinear; C# resizes with ML.NET's ResizeImages, also before its clock).

--peak measures this PyTorch's attainable float32 speed on the machine instead (a 2,048-square matrix product and a
3 x 3 convolution of 64 x 128 x 56 x 56 to 128 channels, NCHW and channels-last, best of 10 after warm-up, same
threads) and prints it as JSON. Every run's JSON holds the encoder's and head's forward FLOPs per view
(multiply-adds x 2 of every convolution and linear layer, counted from the layer shapes with forward hooks); a
training step costs about 3 x that per view (forward, then the gradients of inputs and weights).

Prints one JSON line; with --embed, writes OUT_PREFIX.train.f32 and OUT_PREFIX.test.f32 ([N, 768] float32, eval mode:
the embedding MLNet.Contrastive exports, the last two stages averaged over a 2 x 2 grid and concatenated).
"""
import argparse, gzip, json, math, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx_images(path, size=None, channels=1):
    """uint8 [N, C, S, S] from an IDX file of [N, H, W] (gray) or [N, H, W, 3] (RGB) images."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    images = torch.from_numpy(np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).copy()).view(*dims)
    images = images.unsqueeze(1) if rank == 3 else images.permute(0, 3, 1, 2)
    if images.shape[1] != channels:
        images = images.expand(-1, 3, -1, -1) if channels == 3 else \
            (0.299 * images[:, 0:1] + 0.587 * images[:, 1:2] + 0.114 * images[:, 2:3]).round().to(torch.uint8)
    if size is None or size == images.shape[2]:
        return images.contiguous()
    out = torch.empty(images.shape[0], channels, size, size, dtype=torch.uint8)
    for s in range(0, images.shape[0], 1024):
        chunk = F.interpolate(images[s:s + 1024].float(), size=(size, size), mode="bilinear", align_corners=False)
        out[s:s + 1024] = chunk.round().clamp(0, 255).to(torch.uint8)
    return out


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
    def __init__(self, channels=1, small_stem=True, stem=16, widths=(32, 64, 128)):
        super().__init__()
        if small_stem:
            self.stem = nn.Sequential(nn.Conv2d(channels, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU())
        else:
            self.stem = nn.Sequential(nn.Conv2d(channels, stem, 7, 2, 3, bias=False), nn.BatchNorm2d(stem), nn.ReLU(),
                                      nn.MaxPool2d(3, 2, 1))
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


class TorchvisionResNet18(nn.Module):
    """torchvision's resnet18 without fc, normalisation inside, the stem of our ResNet18 preset at this image size."""

    def __init__(self, channels=1, small_stem=False):
        super().__init__()
        import torchvision
        self.net = torchvision.models.resnet18(weights=None)
        self.net.fc = nn.Identity()
        if small_stem:
            self.net.conv1 = nn.Conv2d(channels, 64, 3, 1, 1, bias=False)
            self.net.maxpool = nn.Identity()
        elif channels != 3:
            self.net.conv1 = nn.Conv2d(channels, 64, 7, 2, 3, bias=False)
        mean, std = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)) if channels == 3 else ((0.5,), (0.5,))
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x):
        return self.net((x - self.mean) / self.std)

    def embed(self, x):
        return self.forward(x)


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


def gray(x):
    return x if x.shape[1] == 1 else 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def hue_shift(x, turns):
    yiq = torch.einsum("ij,bjhw->bihw", YIQ, x)
    angle = (turns * 2 * math.pi).view(-1, 1, 1, 1)
    cos, sin = angle.cos(), angle.sin()
    i = yiq[:, 1:2] * cos - yiq[:, 2:3] * sin
    q = yiq[:, 1:2] * sin + yiq[:, 2:3] * cos
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(YIQ), torch.cat([yiq[:, 0:1], i, q], 1))


def blur(x, g, p=0.5, sigma_min=0.1, sigma_max=2.0):
    b, c, h, w = x.shape
    radius = int(min(math.ceil(2 * sigma_max), (min(h, w) - 1) // 2))
    sigma = uniform(b, sigma_min, sigma_max, g)
    apply = chance(b, p, g)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = (-(offsets.pow(2).unsqueeze(0)) / (2 * sigma.pow(2).unsqueeze(1))).exp()
    kernel /= kernel.sum(1, keepdim=True)
    identity = (offsets == 0).float().unsqueeze(0).expand_as(kernel)
    kernel = torch.where(apply.unsqueeze(1), kernel, identity).repeat_interleave(c, dim=0)
    planes = F.pad(x.reshape(1, b * c, h, w), (radius,) * 4, mode="reflect")
    planes = F.conv2d(planes, kernel.view(b * c, 1, 1, -1), groups=b * c)
    planes = F.conv2d(planes, kernel.view(b * c, 1, -1, 1), groups=b * c)
    return planes.view(b, c, h, w)


def augment(x, g, small=True):
    b = x.shape[0]
    area = uniform(b, 0.25 if small else 0.08, 1.0, g)
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
    mean = gray(x).mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * factor(0.4) + mean).clamp_(0, 1)
    if x.shape[1] == 3:
        luma = gray(x)
        x = ((x - luma) * factor(0.2) + luma).clamp_(0, 1)
        x = hue_shift(x, uniform(b, -0.1, 0.1, g) * apply).clamp_(0, 1)
        x = torch.where(chance(b, 0.2, g).view(-1, 1, 1, 1), gray(x).expand_as(x), x)
    if not small:
        return blur(x, g)
    noise = torch.randn(x.shape, generator=g) * 0.05
    return (x + noise * chance(b, 0.5, g).view(-1, 1, 1, 1)).clamp_(0, 1)


def nt_xent(z1, z2, tau=0.2):
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = (z @ z.t() / tau).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(logits, targets)


def embed(encoder, images, layout, batch=512):
    encoder.eval()
    out = []
    with torch.no_grad():
        for s in range(0, images.shape[0], batch):
            out.append(encoder.embed(layout(images[s:s + batch].float().div_(255))))
    return torch.cat(out).numpy().astype(np.float32)


def profile(encoder, head, optimizer, train, g, batch, steps, small, layout):
    """Mean ms per step of: augmentation, encoder forward, head and loss, backward, optimizer, whole step."""
    phases = [0.0] * 6
    for step in range(5 + steps):
        start = time.perf_counter()
        images = train[:batch].float().div_(255)
        views = layout(torch.cat([augment(images, g, small), augment(images, g, small)]))
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


def forward_flops(module, x):
    """Multiply-adds x 2 of module's convolutions and linear layers for one forward pass of x, per sample."""
    total = [0]

    def hook(m, inputs, out):
        if isinstance(m, torch.nn.Conv2d):
            total[0] += 2 * m.weight.numel() * out.shape[2] * out.shape[3]
        elif isinstance(m, torch.nn.Linear):
            total[0] += 2 * m.weight.numel()
    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    was_training = module.training
    module.eval()
    with torch.no_grad():
        out = module(x[:1])
    module.train(was_training)
    for h in handles:
        h.remove()
    return total[0], out


def peak(threads):
    """The attainable float32 GFLOP/s of this PyTorch on this machine: a large matrix product and a large convolution."""
    def best(f, flop, repeats=10):
        f(); f()
        times = []
        for _ in range(repeats):
            start = time.perf_counter(); f(); times.append(time.perf_counter() - start)
        return round(flop / min(times) / 1e9, 1)
    with torch.no_grad():
        n = 2048
        a, b = torch.randn(n, n), torch.randn(n, n)
        gemm = best(lambda: torch.mm(a, b), 2 * n ** 3)
        x = torch.randn(64, 128, 56, 56)
        conv = torch.nn.Conv2d(128, 128, 3, padding=1, bias=False)
        flop = 2 * conv.weight.numel() * 56 * 56 * 64
        nchw = best(lambda: conv(x), flop, 5)
        conv_cl, x_cl = conv.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
        nhwc = best(lambda: conv_cl(x_cl), flop, 5)
    return {"torch": torch.__version__, "threads": threads, "gemm_gflops": gemm, "conv_nchw_gflops": nchw, "conv_channels_last_gflops": nhwc}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", required=True)
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--train-count", type=int, default=0, help="use the first N training images (0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--embed")
    p.add_argument("--image-size", type=int, default=0, help="resize to S x S (0: the files' size)")
    p.add_argument("--channels", type=int, default=1, choices=(1, 3))
    p.add_argument("--profile", type=int, default=0, help="time N steps by phase (after 5 warm-up steps) and exit")
    p.add_argument("--encoder", default="small", choices=("small", "resnet18"),
                   help="small: ours (stem 16, stages 32-64-128); resnet18: torchvision's, as our ResNet18 preset")
    p.add_argument("--channels-last", action="store_true", help="encoder weights and input views in torch.channels_last")
    p.add_argument("--peak", action="store_true", help="measure the attainable GEMM and convolution GFLOP/s and exit")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.peak:
        print(json.dumps(peak(a.threads)))
        return
    torch.manual_seed(a.seed)
    read = lambda kind: read_idx_images(f"{a.data_dir}/{kind}-images-idx3-ubyte.gz", a.image_size or None, a.channels)
    train = read("train")
    if a.train_count:
        train = train[:a.train_count]
    small = train.shape[2] <= 64
    encoder = Encoder(a.channels, small) if a.encoder == "small" else TorchvisionResNet18(a.channels, small)
    head = Head(d=128 if a.encoder == "small" else 512)
    layout = lambda x: x
    if a.channels_last:
        encoder = encoder.to(memory_format=torch.channels_last)
        layout = lambda x: x.contiguous(memory_format=torch.channels_last)
    probe = layout(train[:1].float().div_(255))
    encoder_flops, features = forward_flops(encoder, probe)
    head_flops, _ = forward_flops(head, features)
    params = list(encoder.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=2e-3, weight_decay=1e-4)
    g = torch.Generator().manual_seed(a.seed)
    if a.profile:
        print(" ".join("%.1f" % t for t in profile(encoder, head, optimizer, train, g, a.batch_size, a.profile, small, layout)))
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
            views = layout(torch.cat([augment(images, g, small), augment(images, g, small)]))
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
              "torch": torch.__version__, "threads": torch.get_num_threads(),
              "image_size": train.shape[2], "channels": a.channels, "encoder": a.encoder, "channels_last": a.channels_last,
              "encoder_forward_gflops_per_view": round(encoder_flops / 1e9, 4), "head_forward_gflops_per_view": round(head_flops / 1e9, 5)}
    if a.embed:
        embed(encoder, train if not a.train_count else read("train"), layout).tofile(a.embed + ".train.f32")
        embed(encoder, read("t10k"), layout).tofile(a.embed + ".test.f32")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
