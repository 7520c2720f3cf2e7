"""What each ``n2prune`` verb does, on top of the library."""

import json
import logging
from pathlib import Path

from n2prune.errors import UserError
from n2prune.inspect import load_run, run_inspect  # noqa: F401  (the inspect verb)
from n2prune.io.checkpoint import load_weights_file
from n2prune.io.formats import EXPORT_FORMATS, check_options, function
from n2prune.io.syntxt import import_network
from n2prune.prune.channels import refresh_removed_channels
from n2prune.prune.costs import cell_costs, n2d2_synapses, totals
from n2prune.prune.pruned_cells import initialize_masks, pruned_cells, set_kernel
from n2prune.report import run_report  # noqa: F401  (the report verb)
from n2prune.train.evaluate import evaluate
from n2prune.train.loop import DEFAULT_SNAPSHOT_EVERY
from n2prune.train.model import Model
from n2prune.train.runfolder import STIMULI_DATA, RunFolder, new_run_dir, writing
from n2prune.train.world import join_world

log = logging.getLogger("n2prune")

DEFAULT_SEED = 1
DEFAULT_EPOCHS = 10


def load_weights(network, source):
    """Weights from a run folder, a ``.npz`` file or an N2D2 ``weights/`` folder.

    Returns the names of the pruned cells whose masks came with the weights.
    """
    path = Path(source)
    if path.is_dir() and (path / "weights.npz").is_file():
        path = path / "weights.npz"
    if path.suffix == ".npz":
        arrays = load_weights_file(path, network)
        loaded = {k.split("/")[1] for k in arrays if k.startswith("quant/")}
    elif path.is_dir():
        loaded = set(import_network(network, path))
    else:
        raise UserError(f"{path}: not a run folder, .npz file or N2D2 weights folder")
    refresh_removed_channels(network)
    return loaded


def load_masked_weights(model, source):
    """``load_weights``, then masks computed from the imported weights for the pruned
    cells whose files carried none (N2D2's weights folder, a dense run)."""
    restored = load_weights(model.network, source)
    stale = [c for c in pruned_cells(model.network) if c.name not in restored]
    initialize_masks(model.network, model.rng, model.epoch_size, stale)


def _run_settings(args):
    """Seed, overrides and epochs, from the command line or the run being resumed."""
    settings = {"seed": args.seed, "overrides": list(args.overrides), "epochs": args.epochs}
    if args.resume:
        run = RunFolder(args.resume)
        saved = run.run_info()
        if run.file("metrics.csv").exists():  # a missing one is started anew on resume
            run.metrics_fields()  # a damaged one is refused before training
        if args.overrides and args.overrides != saved["overrides"]:
            raise UserError(f"{args.resume}: --set differs from the run's own overrides "
                            f"{saved['overrides']}; resume without --set")
        settings["seed"] = saved["seed"] if args.seed is None else args.seed
        settings["overrides"] = saved["overrides"]
        settings["epochs"] = args.epochs or saved["epochs"]
    settings["seed"] = DEFAULT_SEED if settings["seed"] is None else settings["seed"]
    settings["epochs"] = settings["epochs"] or DEFAULT_EPOCHS
    return settings


def _apply_kernel(model, args):
    if args.kernel:
        set_kernel(model.network, args.kernel.capitalize())


def run_train(args):
    # One process, or the ranks of an MPI job (docs/distributed.rst).
    world = join_world(args.distributed, args.debug)
    if args.iterations:
        if world.size > 1 or args.distributed:
            raise UserError("--iterations runs in one process: start it without mpirun")
        from n2prune.iterative import run_iterative
        return run_iterative(args, DEFAULT_SEED, run_train, format_rows)
    with world.guard():
        return _train(args, world)


def _train(args, world):
    """``run_train``; rank 0 alone reads and writes the run folder (``world.root``)."""
    every = DEFAULT_SNAPSHOT_EVERY if args.snapshot_every is None else args.snapshot_every
    settings = world.root(_run_settings, args)
    cache = Path(args.resume) / STIMULI_DATA if args.resume else None
    model = world.agree(Model, args.model, settings["overrides"], settings["seed"], args.strict,
                        max_memory=args.max_memory, stimuli_cache=cache)
    _apply_kernel(model, args)
    run = world.run_folder(args.resume or world.root(new_run_dir, args.model, args.out))
    sparsity_fields = [f"sparsity_{c.name}" for c in pruned_cells(model.network)]
    trainer = world.agree(world.trainer, model, run, settings["epochs"], args.log_every,
                          settings["seed"], max_steps=args.steps, snapshot_every=every)
    # Every input is checked before the run folder is written to.
    if args.resume:
        world.root(run.prepare)
        trainer.resume(sparsity_fields)
    else:
        if args.weights:
            world.root(load_masked_weights, model, args.weights)
        world.root(run.create, model.ini.dumps(),
                   {"model": str(Path(args.model).resolve()), **settings},
                   sparsity_fields, model.network.metric_target.metric.column)
    world.root(_save_stimuli_data, model, run)
    log.info("run folder %s: %d cells, %d parameters, %.2f MMAC/sample",
             run.path, len(model.network.cells), model.network.nb_params(),
             model.network.macs_per_sample() / 1e6)
    trainer.train()
    return 0


def _save_stimuli_data(model, run):
    with writing(run.file(STIMULI_DATA)):
        model.save_stimuli_data(run.file(STIMULI_DATA))


def _trained_model(args):
    """The model of ``args.model`` with the weights and masks of ``args.weights``."""
    seed = DEFAULT_SEED if args.seed is None else args.seed
    model = Model(args.model, args.overrides, seed, args.strict, max_memory=args.max_memory,
                  stimuli_cache=_stimuli_cache(args.weights))
    _apply_kernel(model, args)
    load_masked_weights(model, args.weights)
    return model


def run_test(args):
    model = _trained_model(args)
    metric = model.network.metric_target.metric
    value = evaluate(model.network, model, "test")
    print(f"test {metric.title} {metric.format(value)} on {model.partition_size('test')} images")
    return 0


def _stimuli_cache(weights):
    """The StimuliData cache of the run folder ``weights`` is (or is in), else None."""
    path = Path(weights)
    folder = (path if path.is_dir() else path.parent) / STIMULI_DATA
    return folder if folder.is_dir() else None


def run_check(args):
    seed = DEFAULT_SEED if args.seed is None else args.seed
    model = Model(args.model, args.overrides, seed, args.strict, need_data=False,
                  max_memory=args.max_memory)
    net = model.network
    rows = cell_costs(net)
    if args.json:
        print(json.dumps({"cells": [{**r, "inputs": net.inputs[r["cell"]],
                                     "output": list(net.cell(r["cell"]).output_shape)}
                                    for r in rows],
                          "total": {**totals(rows), "n2d2_synapses": n2d2_synapses(net)}},
                         indent=2))
        return 0
    table = [("cell", "type", "inputs", "output CxHxW", "params", "MACs", "effective MACs",
              "shrunk MACs")]
    for r in rows:
        shape = "x".join(str(d) for d in net.cell(r["cell"]).output_shape)
        table.append((r["cell"], r["type"], ",".join(net.inputs[r["cell"]]), shape,
                      str(r["params_dense"]), str(r["macs_dense"]), str(r["macs_effective"]),
                      str(r["macs_shrunk"])))
    total = totals(rows)
    table.append(("total", "", "", "", str(total["params_dense"]), str(total["macs_dense"]),
                  f"{total['macs_effective']} ({total['macs_effective_ratio']:.1%})",
                  f"{total['macs_shrunk']} ({total['macs_shrunk_ratio']:.1%})"))
    print(format_rows(table))
    print(f"N2D2 counts {n2d2_synapses(net):,} synapses (the weights and biases of Conv, Deconv "
          "and Fc cells, as its stats.log; BatchNorm parameters are not among them)")
    return 0


def format_rows(rows):
    """Left-aligned columns, two spaces apart."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows)


def run_infer(args):
    from n2prune.infer import run_infer as classify
    return classify(args, _trained_model(args))


def run_sensitivity(args):
    from n2prune.sensitivity import run_sensitivity as measure_and_budget
    return measure_and_budget(args, DEFAULT_SEED, load_weights, format_rows)


def run_shrink(args):
    from n2prune.shrink import shrink_run
    out, notes, difference = shrink_run(args.run, args.out)
    for note in notes:
        print(note)
    print(f"wrote {out / 'model.ini'}, {out / 'weights.npz'} and {out / 'weights'}/ "
          f"(outputs equal the run's to {difference:.1e})")
    return 0


def run_export(args):
    fmt = EXPORT_FORMATS[args.format]
    check_options(args, fmt)
    if fmt.needs:
        function(fmt.needs)()  # a missing package is the first thing to say, before loading
    write = function(fmt.writer)
    network, _weights = load_run(args.run)
    out = Path(args.out) if args.out else Path(args.run) / fmt.default_out
    options = {name: getattr(args, name) for name in fmt.options}
    print(write(network, out, Path(args.run), **options))
    return 0
