"""The PyTorch reference of the benchmarks: the only module that imports torch.

It builds the layers an n2prune INI describes (``n2prune_side.layer_spec``:
a chain of Conv, max Pool, Fc, Dropout, ReLU; the Softmax becomes the
cross-entropy loss), applies fixed 0/1 masks with
``torch.nn.utils.prune.custom_from_mask`` (a Conv mapping such as LeNet-5's
conv2 table is such a mask), and trains with the INI's SGD
(``n2prune_side.solver_spec``). Timed steps start from He normal (fan in)
everywhere: only the cost matters there. ``train_recipe`` starts from the
weights n2prune drew (``n2prune_side.initial_weights``): with 90% random
masks the accuracy after a few epochs depends on the start, and LeNet-5's
fc2 has no filler in the INI (N2D2's Normal(0, 0.05), a third of He's scale).

torch's SGD puts the decay inside the momentum buffer, as N2D2's update
``v = m v - lr (g + decay w)`` does; the rate is multiplied by the
StepDecay factor at each epoch start, and weights are clamped after each
step when the INI clamps them.
"""

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

THREADS = 2


def build(spec, masks=None, seed=0, weights=None):
    """``nn.Sequential`` of ``spec`` with ``masks`` ({layer name: float array}) applied.

    ``weights`` ({layer name: array}, n2prune's OCHW or (O, C*H*W) layout,
    which is torch's) replaces the He start of those layers.
    """
    torch.manual_seed(seed)
    layers, named = [], {}
    for s in spec:
        if s["type"] in ("conv", "fc"):
            layer = (nn.Conv2d(s["in"], s["out"], tuple(s["kernel"]), tuple(s["stride"]),
                               tuple(s["padding"]), bias=s["bias"]) if s["type"] == "conv"
                     else nn.Linear(s["in"], s["out"], bias=s["bias"]))
            nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
            if weights is not None and s["name"] in weights:
                with torch.no_grad():
                    layer.weight.copy_(torch.from_numpy(np.asarray(
                        weights[s["name"]], dtype=np.float32)).reshape(layer.weight.shape))
            if s["bias"]:
                nn.init.zeros_(layer.bias)
            layers += [nn.Flatten()] if s["type"] == "fc" else []
            layers += [layer] + ([nn.ReLU()] if s["relu"] else [])
            named[s["name"]] = layer
        elif s["type"] == "maxpool":
            layers.append(nn.MaxPool2d(tuple(s["kernel"]), tuple(s["stride"])))
        elif s["type"] == "dropout":
            layers.append(nn.Dropout(s["p"]))
    for name, mask in (masks or {}).items():
        prune.custom_from_mask(named[name], "weight", torch.from_numpy(np.asarray(mask)))
    return nn.Sequential(*layers)


def bake_masks(net):
    """Make the masks permanent (zeros in the weights), as SparseProp needs."""
    for layer in net:
        if prune.is_pruned(layer):
            prune.remove(layer, "weight")


def to_sparseprop(net, input_shape, batch):
    """Every Linear and Conv2d swapped for SparseProp's module (conv: its own auto choice)."""
    from sparseprop.modules import SparseLinear, sparsify_conv2d_auto
    bake_masks(net)
    x = torch.rand(batch, *input_shape)
    layers = list(net)
    for i, layer in enumerate(layers):
        if isinstance(layer, nn.Linear):
            layers[i] = SparseLinear.from_dense(layer)
        elif isinstance(layer, nn.Conv2d):
            layers[i] = sparsify_conv2d_auto(layer, tuple(x.shape), verbose=False)
        x = layers[i](x)
    return nn.Sequential(*layers)


def optimizer(net, solver):
    """torch SGD with the INI's rates and decays, weights and biases apart."""
    weights = [p for n, p in net.named_parameters() if not n.endswith("bias")]
    biases = [p for n, p in net.named_parameters() if n.endswith("bias")]
    groups = [{"params": weights, "lr": solver["lr"], "weight_decay": solver["decay"]}]
    if biases:
        groups.append({"params": biases, "lr": solver["bias_lr"],
                       "weight_decay": solver["bias_decay"]})
    for group in groups:
        group["initial_lr"] = group["lr"]
    return torch.optim.SGD(groups, lr=solver["lr"], momentum=solver["momentum"])


def train_step_fn(net, solver, x, labels):
    opt = optimizer(net, solver)
    clamp = solver.get("clamp")
    params = list(net.parameters())

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), labels)
        loss.backward()
        opt.step()
        if clamp:
            with torch.no_grad():
                for p in params:
                    p.clamp_(min=clamp[0], max=clamp[1])
        return loss
    return step


def step_fn(spec, solver, input_shape, batch, masks=None, side="torch"):
    """One training step on a random batch; ``side`` "sparseprop" swaps in SparseProp."""
    torch.set_num_threads(THREADS)
    net = build(spec, masks)
    if side == "sparseprop":
        net = to_sparseprop(net, input_shape, batch)
    x = torch.rand(batch, *input_shape)
    labels = torch.randint(0, 10, (batch,))
    return train_step_fn(net, solver, x, labels)


def predict_fn(spec, input_shape, batch):
    """Inference (``eval``, ``no_grad``) on a random batch."""
    torch.set_num_threads(THREADS)
    net = build(spec).eval()
    x = torch.rand(batch, *input_shape)

    def predict():
        with torch.no_grad():
            return net(x)
    return predict


def as_tensor(images):
    """uint8 (N, H, W) images to float32 (N, 1, H, W) in [0, 1], as n2prune's provider."""
    return torch.from_numpy(images.astype(np.float32) / np.float32(255)).unsqueeze(1)


@torch.no_grad()
def accuracy(net, x, y, batch=1000):
    net.eval()
    correct = sum(int((net(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
                  for i in range(0, len(y), batch))
    return correct / len(y)


def train_recipe(spec, solver, data, epochs, seed, masks=None, side="torch", weights=None):
    """Train as the recipe does; seconds per epoch including validation, and accuracy.

    ``data``: uint8 images and int64 labels of learn, validation and test
    (``{"learn_x": ..., "learn_y": ...}``), already rescaled as n2prune does.
    ``weights``: initial weights per layer (``build``), n2prune's start.
    """
    torch.set_num_threads(THREADS)
    x = {p: as_tensor(data[f"{p}_x"]) for p in ("learn", "validation", "test")}
    y = {p: torch.from_numpy(data[f"{p}_y"].astype(np.int64)) for p in x}
    net = build(spec, masks, seed, weights)
    if side == "sparseprop":
        net = to_sparseprop(net, tuple(x["learn"].shape[1:]), solver["batch"])
    generator = torch.Generator().manual_seed(seed)
    batch, n = solver["batch"], len(y["learn"])
    step_state = {"opt": None}
    val = 0.0
    ends = [time.perf_counter()]
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator)
        net.train()
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            _step(net, solver, x["learn"][idx], y["learn"][idx], step_state, epoch)
        val = accuracy(net, x["validation"], y["validation"]) if len(y["validation"]) else 0.0
        ends.append(time.perf_counter())
    per_epoch = (ends[-1] - ends[0]) / epochs
    return {"s/epoch": per_epoch, "last epoch s": ends[-1] - ends[-2], "samples/s": n / per_epoch,
            "test acc": accuracy(net, x["test"], y["test"]), "val acc": val}


def _step(net, solver, xb, yb, state, epoch):
    """One SGD step; the optimizer is made once, its rates set per epoch (StepDecay)."""
    if state["opt"] is None:
        state["opt"], state["params"] = optimizer(net, solver), list(net.parameters())
    opt = state["opt"]
    if state.get("epoch") != epoch:
        for group in opt.param_groups:
            group["lr"] = group["initial_lr"] * solver["lr_decay_per_epoch"] ** epoch
        state["epoch"] = epoch
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(net(xb), yb).backward()
    opt.step()
    clamp = solver.get("clamp")
    if clamp:
        with torch.no_grad():
            for p in state["params"]:
                p.clamp_(min=clamp[0], max=clamp[1])
