#!/usr/bin/env bash
# Regenerates the bundled Fashion-MNIST sample (first TRAIN training and first TEST test images, IDX .gz)
# from Debian's dataset-fashion-mnist. Usage: build/make-sample.sh [TRAIN] [TEST]
set -euo pipefail
train=${1:-6000}
test=${2:-1000}
src=/usr/share/datasets/fashion-mnist
out=$(cd "$(dirname "$0")/.." && pwd)/src/MLNet.Contrastive.Cli/Sample
if [ ! -d "$src" ]; then
  apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist
fi
/usr/bin/python3 - "$src" "$out" "$train" "$test" <<'PY'
import gzip, struct, sys, os
src, out, n_train, n_test = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def cut(name, n):
    with gzip.open(os.path.join(src, name)) as f:
        data = f.read()
    rank = data[3]
    dims = list(struct.unpack('>' + 'i' * rank, data[4:4 + 4 * rank]))
    item = 1
    for d in dims[1:]:
        item *= d
    dims[0] = n
    body = data[4 + 4 * rank: 4 + 4 * rank + n * item]
    header = data[:4] + struct.pack('>' + 'i' * rank, *dims)
    # mtime=0 keeps the output byte-identical across runs
    with open(os.path.join(out, name), 'wb') as raw, gzip.GzipFile(fileobj=raw, mode='wb', compresslevel=9, mtime=0, filename='') as f:
        f.write(header + body)
for kind, n in (('train', n_train), ('t10k', n_test)):
    cut(f'{kind}-images-idx3-ubyte.gz', n)
    cut(f'{kind}-labels-idx1-ubyte.gz', n)
PY
ls -l "$out"
