# Expected values of MaeLossTests, computed independently in plain Python (run: /usr/bin/python3 mae_loss_reference.py).
# facebookresearch/mae models_mae.py: patchify (nchpwq -> nhwpqc), norm_pix_loss target (x - mean) / sqrt(var + 1e-6)
# with the unbiased variance, loss = mean over pixels of (pred - target)^2, summed over masked patches / masked count.
import math

image = [[0.1, 0.5, 0.2, 0.9], [0.3, 0.8, 0.4, 0.0], [0.6, 0.7, 1.0, 0.25], [0.05, 0.35, 0.45, 0.55]]
p = 2
patches = [[image[r * p + i][c * p + j] for i in range(p) for j in range(p)] for r in range(2) for c in range(2)]
prediction = [[0.0, 0.4, 0.3, 0.7], [0.1, 1.0, 0.2, -0.1], [-1.0, 0.5, 1.2, 0.0], [0.9, 0.3, 0.4, 0.6]]
mask = [0, 1, 1, 0]

def normalize(row):
    mean = sum(row) / len(row)
    var = sum((x - mean) ** 2 for x in row) / (len(row) - 1)
    return [(x - mean) / math.sqrt(var + 1e-6) for x in row]

def loss(target):
    per_patch = [sum((a - b) ** 2 for a, b in zip(pr, t)) / len(t) for pr, t in zip(prediction, target)]
    return sum(l * m for l, m in zip(per_patch, mask)) / sum(mask)

print("patches", patches)
print("raw", repr(loss(patches)))
print("normalized", repr(loss([normalize(t) for t in patches])))
