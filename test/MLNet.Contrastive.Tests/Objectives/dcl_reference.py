# Independent reference for DecoupledContrastiveLossTests: the DCL / DCLW losses of Yeh et al. 2022 (Eq. 6; DCLW's
# negative von Mises-Fisher weights as lightly's negative_mises_fisher_weights) in plain Python, double precision.
# Run: /usr/bin/python3 test/MLNet.Contrastive.Tests/Objectives/dcl_reference.py
import math

z1 = [[1.0, 0.0, 2.0, -1.0], [0.5, 1.5, -0.5, 0.0], [-1.0, 0.5, 0.0, 1.0]]
z2 = [[0.8, 0.3, 1.5, -0.6], [0.0, 1.0, 0.5, 0.5], [1.0, -0.5, 0.5, 0.0]]

def unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]

def dot(a, b):
    return sum(x * y for x, y in zip(a, b))

def dcl(z1, z2, tau, sigma=None):
    n = len(z1)
    views = [unit(v) for v in z1] + [unit(v) for v in z2]
    if sigma is None:
        weights = [1.0] * n
    else:
        c = [dot(unit(a), unit(b)) / sigma for a, b in zip(z1, z2)]
        total = sum(math.exp(x) for x in c)
        weights = [2 - n * math.exp(x) / total for x in c]
    loss = 0.0
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        negatives = [dot(views[i], views[j]) / tau for j in range(2 * n) if j not in (i, positive)]
        loss += -weights[i % n] * dot(views[i], views[positive]) / tau + math.log(sum(math.exp(s) for s in negatives))
    return loss / (2 * n), weights

print("dcl  tau=0.5        %.10f" % dcl(z1, z2, 0.5)[0])
print("dcl  tau=0.1        %.10f" % dcl(z1, z2, 0.1)[0])
loss, w = dcl(z1, z2, 0.5, sigma=0.5)
print("dclw tau=0.5 s=0.5  %.10f" % loss)
print("weights             " + " ".join("%.10f" % x for x in w))
