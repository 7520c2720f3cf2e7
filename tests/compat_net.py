"""The small network both facade tests build: INI text with added keys, and a training loop."""

import numpy as np
from layout import chwn

BATCH = 8
SECTIONS = {
    "sp": ["SizeX=12", "SizeY=12", f"BatchSize={BATCH}"],
    "conv1": ["Input=sp", "Type=Conv", "KernelDims=3 3", "NbOutputs=8",
              "ActivationFunction=Rectifier", "WeightsFiller=HeFiller", "ConfigSection=solver"],
    "conv2": ["Input=conv1", "Type=Conv", "KernelDims=3 3", "Stride=2", "NbOutputs=64",
              "ActivationFunction=Rectifier", "WeightsFiller=HeFiller", "ConfigSection=solver"],
    "fc": ["Input=conv2", "Type=Fc", "NbOutputs=10", "ConfigSection=solver"],
    "softmax": ["Input=fc", "Type=Softmax", "NbOutputs=10", "WithLoss=1"],
    "softmax.Target": [],
    "solver": ["Solvers.LearningRate=0.05", "Solvers.Momentum=0.9"],
}


def ini_text(keys=None, nb_outputs=64):
    """The test network's INI, with ``{cell: {key: value}}`` added to its sections."""
    lines = []
    for name, body in SECTIONS.items():
        body = [f"NbOutputs={nb_outputs}" if (name, line) == ("conv2", "NbOutputs=64") else line
                for line in body]
        extra = [f"{k}={v}" for k, v in (keys or {}).get(name, {}).items()]
        lines += [f"[{name}]", *body, *extra, ""]
    return "\n".join(lines)


def train(net, steps, after_step, seed):
    """``steps`` SGD steps on random 12x12 inputs (generator ``seed``), ``after_step()`` after each."""
    data = np.random.default_rng(seed)
    for _ in range(steps):
        net.forward(chwn(data.random((1, BATCH, 12, 12), dtype=np.float32)), train=True)
        net.loss_and_backward(data.integers(0, 10, BATCH))
        net.apply_solvers(BATCH)
        after_step()
