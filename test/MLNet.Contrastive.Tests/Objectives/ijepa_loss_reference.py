# Expected values of IjepaLossTests, computed independently in plain Python (run: /usr/bin/python3 ijepa_loss_reference.py).
# facebookresearch/ijepa src/train.py: h = F.layer_norm(h, (h.size(-1),)) (eps 1e-5, biased variance, no affine);
# loss = F.smooth_l1_loss(z, h) (beta 1, mean over every element).
import math

target = [[[1.0, 2.0, 4.0], [0.5, -0.5, 0.0]], [[3.0, 3.0, 0.0], [-2.0, 1.0, 2.5]]]
prediction = [[[-1.0, 0.2, 1.5], [1.0, -1.0, 0.3]], [[0.7, 0.5, -2.0], [0.0, 0.1, 1.0]]]

def layer_norm(row):
    mean = sum(row) / len(row)
    var = sum((x - mean) ** 2 for x in row) / len(row)
    return [(x - mean) / math.sqrt(var + 1e-5) for x in row]

def smooth_l1(d):
    return 0.5 * d * d if abs(d) < 1 else abs(d) - 0.5

terms = [smooth_l1(z - h) for zb, tb in zip(prediction, target) for zr, tr in zip(zb, tb) for z, h in zip(zr, layer_norm(tr))]
print(repr(sum(terms) / len(terms)))
