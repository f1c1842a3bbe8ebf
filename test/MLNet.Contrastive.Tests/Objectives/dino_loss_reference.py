# Expected values of DinoLossTests, computed independently in plain Python (this machine's /usr/bin/python3 has no
# torch). Run: /usr/bin/python3 dino_loss_reference.py. The formula follows facebookresearch/dino main_dino.py
# DINOLoss: teacher softmax((t - center) / tt), student log_softmax(s / ts), pairs of teacher crop iq and student
# crop v != iq, each averaged over the batch; centre m * c + (1 - m) * mean of all teacher rows.
import math

t = [[[1.0, 0.5, -0.2], [0.3, -0.4, 0.8]], [[0.2, 0.9, -0.1], [-0.5, 0.6, 0.4]]]
s = [[[0.4, -0.3, 0.2], [0.1, 0.7, -0.6]], [[-0.2, 0.5, 0.3], [0.9, -0.1, 0.0]], [[0.6, 0.1, -0.4], [-0.3, 0.2, 0.5]]]
center = [0.1, -0.2, 0.05]
ts, tt, m = 0.1, 0.07, 0.9

def softmax(row):
    e = [math.exp(x - max(row)) for x in row]
    return [x / sum(e) for x in e]

def log_softmax(row):
    z = max(row) + math.log(sum(math.exp(x - max(row)) for x in row))
    return [x - z for x in row]

probs = [[softmax([(x - c) / tt for x, c in zip(row, center)]) for row in crop] for crop in t]
entropy = [sum(-sum(p * math.log(p) for p in row) for row in crop) / len(crop) for crop in probs]
total, kl, pairs = 0.0, 0.0, 0
for iq, q in enumerate(probs):
    for v, student in enumerate(s):
        if v == iq:
            continue
        ce = sum(-sum(p * l for p, l in zip(qr, log_softmax([x / ts for x in sr]))) for qr, sr in zip(q, student)) / len(q)
        total += ce
        kl += ce - entropy[iq]
        pairs += 1
rows = [row for crop in t for row in crop]
print("loss", repr(total / pairs))
print("center", [repr(c * m + (1 - m) * sum(r[k] for r in rows) / len(rows)) for k, c in enumerate(center)])
print("entropy", repr(sum(entropy) / len(entropy)))
print("kl", repr(kl / pairs))
