"""Accuracy of a network on a whole partition, in inference mode."""

import numpy as np

EVAL_BATCH = 1000


def accuracy(network, model, part, batch_size=EVAL_BATCH):
    """Fraction of ``part`` the first target classifies right (dropout off)."""
    images, labels = model.stimuli(part)
    if len(labels) == 0:
        return None
    target = network.targets[0]
    # Random transformations applied to this partition draw the same numbers every time.
    rng = np.random.default_rng(0)
    correct = 0
    for start in range(0, len(labels), batch_size):
        idx = np.arange(start, min(start + batch_size, len(labels)))
        batch = model.provider.batch(images, idx, rng, part)
        out = network.forward(batch, train=False)
        correct += target.correct(out[:, 0, 0, :], labels[idx])
    return correct / len(labels)
