"""The ``QWeight.*`` keys of ``QWeight=Prune``: one table, beside ``PruneCell``.

INI names and meanings are N2D2's (``PruneQuantizerCellGenerator``) for the
first nine; the others are n2prune's (docs/pruning*.rst). No default is
written here: each comes from the one signature that takes the keyword
(``PruneCell`` for N2D2's keys, ``PruneOptions`` for the pattern, criterion,
schedule and scope, ``PatternParams`` for the pattern's sizes).
"""

from n2prune.prune.criteria import CRITERIA
from n2prune.prune.mask_methods import PRUNING_FILLERS
from n2prune.prune.options import GROUP_REDUCTIONS, SCOPES, PruneOptions
from n2prune.prune.pattern_base import PATTERNS, PatternParams
from n2prune.prune.prune_cell import KERNELS, PRUNING_MODES, PruneCell
from n2prune.prune.schedules import SCHEDULES
from n2prune.registry import BOOL, FLOAT, UINT, Key, KeyTable, choice

PRUNE_KEYS = KeyTable([
    Key("PruningMode", "prune_mode", choice(PRUNING_MODES),
        "when masks change: once at initialisation (Identity, Static) or by a schedule (Gradual)"),
    Key("PruningFiller", "prune_filler", choice(PRUNING_FILLERS),
        "N2D2's rule turning the target fraction into a mask (without a Pattern)"),
    Key("Threshold", "threshold", FLOAT, "final fraction of pruned weights, in [0, 1]"),
    Key("Delta", "delta", FLOAT, "IterNonStruct's magnitude step (absolute), >= 0"),
    Key("StartThreshold", "start", FLOAT, "Gradual: the pruned fraction at initialisation"),
    Key("StepSizeThreshold", "stepsize", UINT,
        "Gradual: stimuli between fires; 0 = one epoch"),
    Key("GammaThreshold", "gamma", FLOAT, "Gradual (Gamma schedule): fraction each fire adds"),
    Key("HardZero", "hard_zero", BOOL, "n2prune only: set masked weights to 0 after each update"),
    Key("Kernel", "kernel", choice(KERNELS),
        "n2prune only: GEMMs of the cell: dense BLAS, skip kernels, or chosen by sparsity"),
    Key("Pattern", "pattern", choice(PATTERNS), "the shape of the masks (pruning-patterns)"),
    Key("N", "n", UINT, "kept weights per group (NM, NMFlat)"),
    Key("M", "m", UINT, "group size (NM, NMFlat)"),
    Key("BankSize", "bank_size", UINT, "inputs per bank; must divide the input axis (Bank)"),
    Key("BankInterleave", "bank_interleave", UINT, "interleaved sub-banks per block (Bank)"),
    Key("BlockOutputs", "block_outputs", UINT, "block height along the outputs (Block)"),
    Key("BlockInputs", "block_inputs", UINT, "block width along the inputs (Block)"),
    Key("Criterion", "criterion", choice(CRITERIA),
        "how weights are scored before a Pattern keeps the best (pruning-criteria)"),
    Key("Schedule", "schedule", choice(SCHEDULES),
        "the fraction pruned at each fire (pruning-schedules)"),
    Key("ScheduleDelay", "schedule_delay", UINT, "stimuli before the first fire"),
    Key("ScheduleLength", "schedule_length", UINT,
        "stimuli of the ramp: K = length / StepSizeThreshold fires"),
    Key("RestoreSparsity", "restore_sparsity", BOOL,
        "start from the zero fraction of the loaded weights"),
    Key("FixSparsity", "fix_sparsity", BOOL,
        "masks = the loaded weights' non-zeros, never updated"),
    Key("Scope", "scope", choice(SCOPES), "Layer or Global: one target across cells "
                                          "(pruning-scope)"),
    Key("MinSparsity", "min_sparsity", FLOAT, "lower cap of a global-scope cell"),
    Key("MaxSparsity", "max_sparsity", FLOAT, "upper cap of a global-scope cell"),
    Key("GammaPenalty", "gamma_penalty", FLOAT,
        "λ of the slimming penalty on the next BatchNorm's γ"),
    Key("GroupReduction", "group_reduction", choice(GROUP_REDUCTIONS),
        "Pattern=Channel: how the channel scores of cells that share channels add up"),
    Key("RoundTo", "round_to", UINT,
        "Pattern=Channel: kept channels of a group are a multiple of this (hardware lanes)"),
], sources=(PruneCell, PruneOptions, PatternParams))
