# Expected values of IbotPatchLossTests, computed independently in plain Python (this machine's /usr/bin/python3 has
# no torch). Run: /usr/bin/python3 ibot_patch_loss_reference.py. The formula follows lightly's lightly/loss/ibot_loss.py
# IBOTPatchLoss: teacher softmax((t - center) / tt), student log_softmax(s / ts), each masked patch's cross-entropy
# weighted by 1 / (masked patches of its image), summed, divided by the images; centre m * c + (1 - m) * mean of the
# teacher's masked rows.
import math

mask = [[1, 0, 1], [0, 1, 0]]  # B = 2 images of L = 3 patches; rows below are the masked patches in row-major order
t = [[1.0, 0.5, -0.2], [0.3, -0.4, 0.8], [-0.5, 0.6, 0.4]]
s = [[0.4, -0.3, 0.2], [0.1, 0.7, -0.6], [0.9, -0.1, 0.0]]
center = [0.1, -0.2, 0.05]
ts, tt, m = 0.1, 0.07, 0.9

def softmax(row):
    e = [math.exp(x - max(row)) for x in row]
    return [x / sum(e) for x in e]

def log_softmax(row):
    z = max(row) + math.log(sum(math.exp(x - max(row)) for x in row))
    return [x - z for x in row]

weights = [1.0 / max(1, sum(image)) for image in mask for p in image if p]
total = 0.0
for tr, sr, w in zip(t, s, weights):
    q = softmax([(x - c) / tt for x, c in zip(tr, center)])
    total += w * -sum(p * l for p, l in zip(q, log_softmax([x / ts for x in sr])))
print("loss", repr(total / len(mask)))
print("center", [repr(c * m + (1 - m) * sum(r[k] for r in t) / len(t)) for k, c in enumerate(center)])
