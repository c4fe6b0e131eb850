#!/usr/bin/python3
"""Train the digits model family and export each variant to ONNX.

Run with the Debian interpreter (apt-get install python3-torch python3-onnx):

    /usr/bin/python3 models/digits/train.py [--only NAME[,NAME...]]

Reads models/digits/.work/train.bin (written by make-data.ts) and writes
models/digits/<name>.onnx. eval.bin is only read to PRINT accuracy for the
developer; it is never used for training, model selection or early stopping,
and no accuracy figure is written to any file (`slogate eval` records those).

Every variant has the same ONNX signature (opset 13):
    input  pixels  float32 [batch, 784]  (values 0..1, row-major 28x28)
    output logits  float32 [batch, 10]
    output label   int64   [batch, 1]    (ArgMax over axis 1, keepdims=1)
"""

import argparse
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, '.work')


def read_slgeval(path):
    """Read an SLGEVAL1 file -> (labels int64 [N], pixels float32 [N, F])."""
    with open(path, 'rb') as f:
        buf = f.read()
    magic, n, feats, scale, _reserved = struct.unpack_from('<8sIIII', buf, 0)
    if magic != b'SLGEVAL1':
        raise ValueError(f'{path}: bad magic {magic!r}')
    labels = np.frombuffer(buf, dtype=np.uint8, count=n, offset=24).astype(np.int64)
    data_start = (24 + n + 7) // 8 * 8
    values = np.frombuffer(buf, dtype='<u2', count=n * feats, offset=data_start)
    pixels = (values.astype(np.float32) / np.float32(scale)).reshape(n, feats)
    return labels, pixels


# ---------------------------------------------------------------- models

class Dense(nn.Linear):
    """nn.Linear that trains through a 1x1 convolution.

    Debian's torch links the reference BLAS, so F.linear is ~5x slower than
    oneDNN's convolution on this machine. Exports as a plain Gemm; the
    parameters and the maths are exactly those of nn.Linear.
    """

    def forward(self, x):
        if torch.onnx.is_in_onnx_export():
            return F.linear(x, self.weight, self.bias)
        return F.conv2d(x[:, :, None, None], self.weight[:, :, None, None], self.bias).flatten(1)


class LogReg(nn.Module):
    """tiny: multinomial logistic regression, 784 -> 10."""

    def __init__(self):
        super().__init__()
        self.fc = Dense(784, 10)

    def forward(self, x):
        return self.fc(x)


class MLP(nn.Module):
    def __init__(self, sizes, dropout=0.0):
        super().__init__()
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(Dense(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
                if dropout:
                    layers.append(nn.Dropout(dropout))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def conv_bn(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class CNNSmall(nn.Module):
    """cnn-small: 3 x (conv3x3 + BN + ReLU + maxpool2), 16-32-64 channels, linear head."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            *conv_bn(1, 16), nn.MaxPool2d(2),   # 14x14
            *conv_bn(16, 32), nn.MaxPool2d(2),  # 7x7
            *conv_bn(32, 64), nn.MaxPool2d(2),  # 3x3
        )
        self.head = Dense(64 * 3 * 3, 10)

    def forward(self, x):
        x = self.features(x.reshape(-1, 1, 28, 28))
        return self.head(torch.flatten(x, 1))


class CNNLarge(nn.Module):
    """large: VGG-style, 2 x conv3x3 (+BN+ReLU) per stage at 28/14/7 px with
    64/128/256 channels, maxpool between stages, global average pool, dropout, linear head."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            *conv_bn(1, 64), *conv_bn(64, 64), nn.MaxPool2d(2),      # 14x14
            *conv_bn(64, 128), *conv_bn(128, 128), nn.MaxPool2d(2),  # 7x7
            *conv_bn(128, 256), *conv_bn(256, 256),
        )
        self.head = nn.Sequential(nn.Dropout(0.3), Dense(256, 10))

    def forward(self, x):
        x = self.features(x.reshape(-1, 1, 28, 28))
        return self.head(x.mean(dim=(2, 3)))


# name -> (constructor, epochs, lr, augment, seed)
VARIANTS = {
    'tiny': (LogReg, 20, 2e-3, False, 1),
    'small': (lambda: MLP([784, 64, 10]), 30, 2e-3, False, 2),
    'medium': (lambda: MLP([784, 512, 256, 10], dropout=0.2), 30, 1e-3, False, 3),
    'cnn-small': (CNNSmall, 15, 3e-3, True, 4),
    'large': (CNNLarge, 6, 2e-3, True, 5),
}


class Exported(nn.Module):
    """Wraps a classifier with the family signature: pixels -> (logits, label)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, pixels):
        logits = self.net(pixels)
        return logits, torch.argmax(logits, dim=1, keepdim=True)


# ---------------------------------------------------------------- training

def shift_batch(x, gen, max_shift=2):
    """Random integer translation of each 28x28 image by -max..+max px (zero fill)."""
    b = x.shape[0]
    img = x.reshape(b, 28, 28)
    padded = F.pad(img, (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (b,), generator=gen)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), generator=gen)
    ar = torch.arange(28)
    rows = (dy[:, None] + ar[None, :])[:, :, None]  # [b, 28, 1]
    cols = (dx[:, None] + ar[None, :])[:, None, :]  # [b, 1, 28]
    out = padded[torch.arange(b)[:, None, None], rows, cols]
    return out.reshape(b, 784)


def accuracy(net, pixels, labels):
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(pixels[i:i + 100]).argmax(1) for i in range(0, len(pixels), 100)])
    return (pred == labels).float().mean().item()


def train_variant(name, x_train, y_train, batch=64):
    ctor, epochs, lr, augment, seed = VARIANTS[name]
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)  # data order + augmentation
    net = ctor()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * ((len(x_train) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
    t0 = time.time()
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(x_train), generator=gen)
        total = 0.0
        for i in range(0, len(perm), batch):
            idx = perm[i:i + batch]
            xb, yb = x_train[idx], y_train[idx]
            if augment:
                xb = shift_batch(xb, gen)
            loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f'  {name} epoch {epoch + 1}/{epochs} loss {total / len(x_train):.4f} '
              f'({time.time() - t0:.0f}s)', flush=True)
    net.eval()
    return net


def export(net, path):
    wrapped = Exported(net).eval()
    dummy = torch.zeros(2, 784)
    torch.onnx.export(
        wrapped, (dummy,), path, opset_version=13, do_constant_folding=True,
        input_names=['pixels'], output_names=['logits', 'label'],
        dynamic_axes={'pixels': {0: 'batch'}, 'logits': {0: 'batch'}, 'label': {0: 'batch'}})
    fix_signature(path)


def fix_signature(path):
    """Pin the declared I/O shapes to [batch,784] / [batch,10] / [batch,1] and check the model."""
    import onnx
    from onnx import TensorProto

    model = onnx.load(path)
    want = {'pixels': (TensorProto.FLOAT, ['batch', 784]),
            'logits': (TensorProto.FLOAT, ['batch', 10]),
            'label': (TensorProto.INT64, ['batch', 1])}
    for vi in list(model.graph.input) + list(model.graph.output):
        elem, dims = want[vi.name]
        tt = vi.type.tensor_type
        if tt.elem_type != elem:
            raise ValueError(f'{path}: {vi.name} has elem_type {tt.elem_type}, want {elem}')
        del tt.shape.dim[:]
        for d in dims:
            dim = tt.shape.dim.add()
            if isinstance(d, str):
                dim.dim_param = d
            else:
                dim.dim_value = d
    if [i.name for i in model.graph.input] != ['pixels'] or \
            [o.name for o in model.graph.output] != ['logits', 'label']:
        raise ValueError(f'{path}: unexpected signature')
    onnx.checker.check_model(model)
    onnx.save(model, path)


def n_params(net):
    return sum(p.numel() for p in net.parameters())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--only', default='', help='comma-separated subset of ' + ','.join(VARIANTS))
    ap.add_argument('--out-dir', default=HERE)
    args = ap.parse_args()
    names = [n for n in args.only.split(',') if n] or list(VARIANTS)
    for n in names:
        if n not in VARIANTS:
            sys.exit(f'unknown variant {n}')

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    y_train, x_train = read_slgeval(os.path.join(WORK, 'train.bin'))
    x_train, y_train = torch.from_numpy(x_train), torch.from_numpy(y_train)
    eval_path = os.path.join(HERE, 'eval.bin')
    have_eval = os.path.exists(eval_path)
    if have_eval:  # for printing only
        y_eval, x_eval = read_slgeval(eval_path)
        x_eval, y_eval = torch.from_numpy(x_eval), torch.from_numpy(y_eval)
    print(f'train: {len(x_train)} samples', flush=True)

    for name in names:
        t0 = time.time()
        net = train_variant(name, x_train, y_train)
        path = os.path.join(args.out_dir, f'{name}.onnx')
        export(net, path)
        msg = f'{name}: {n_params(net)} params, trained in {time.time() - t0:.0f}s'
        if have_eval:
            msg += f', eval acc {accuracy(net, x_eval, y_eval):.4f} (info only)'
        print(msg + f' -> {path}', flush=True)


if __name__ == '__main__':
    main()
