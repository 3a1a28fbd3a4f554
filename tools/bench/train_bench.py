"""The plain Python PyTorch loop the C++ train stage is measured against.

usage: python3 train_bench.py NET BATCH THREADS STEPS   (NET: S, W or D)
Prints one line in the format of train_bench (C++).
"""
import sys
import time

import torch
import torch.nn as nn

HIDDEN = {"S": [1024], "W": [4096], "D": [10240, 4096, 2048, 1024]}


def stack(widths):
    layers = []
    for a, b in zip(widths, widths[1:]):
        layers += [nn.Linear(a, b), nn.Tanh()]
    return nn.Sequential(*layers)


def main():
    net, batch, threads, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    widths = [3072] + HIDDEN[net] + [96]
    model = nn.Sequential(stack(widths), stack(widths[::-1]))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = torch.rand(5000, 3072) * 2 - 1
    loss_fn = nn.MSELoss()

    def step():
        x = data[torch.randint(5000, (batch,))]
        optimizer.zero_grad()
        loss_fn(model(x), x).backward()
        optimizer.step()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    images = steps * batch / seconds
    # Operations per image, as train_bench.cpp counts them: two per
    # multiply-add, three passes over every weight (mirrored), less the first
    # layer's input gradient, which the data does not need.
    weights = sum(2.0 * a * b for a, b in zip(widths, widths[1:]))
    flops = 2.0 * (3.0 * weights - widths[0] * widths[1])
    print(f"python net={net} batch={batch} threads={threads} images_per_s={images:.1f} "
          f"gflops={flops * images / 1e9:.1f}")


if __name__ == "__main__":
    main()
