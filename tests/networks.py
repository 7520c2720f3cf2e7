"""INI pieces the small test networks share."""


def mnist_input(batch_size, validation=0.9):
    """``[database]`` (MNIST, ``validation`` of the learn images held out) and a
    28x28 ``[sp]`` of ``batch_size`` images."""
    return f"""
[database]
Type=MNIST_IDX_Database
Validation={validation}

[sp]
SizeX=28
SizeY=28
BatchSize={batch_size}
"""


def softmax_loss(source="fc2", nb_outputs=10):
    """``[softmax]`` with loss on ``source``, and its target."""
    return f"""
[softmax]
Input={source}
Type=Softmax
NbOutputs={nb_outputs}
WithLoss=1

[softmax.Target]
"""


def fc(name, source, nb_outputs, config, keys=""):
    """``[name]``, an Fc of ``nb_outputs`` on ``source`` with ConfigSection
    ``config``, then the lines ``keys``."""
    return f"""
[{name}]
Input={source}
Type=Fc
NbOutputs={nb_outputs}
ConfigSection={config}
{keys}"""


def classifier_tail(source="fc1", nb_outputs=4, config="solver", keys=""):
    """``[fc2]`` (``fc`` of ``nb_outputs`` on ``source``), then ``softmax_loss``."""
    return fc("fc2", source, nb_outputs, config, keys) + softmax_loss("fc2", nb_outputs)


def gradual_iter_nonstruct(start, gamma, threshold, step_size):
    """QWeight keys of N2D2's Gradual pruning by IterNonStruct: the threshold
    goes from ``start`` up by ``gamma`` every ``step_size`` stimuli, to
    ``threshold``."""
    return f"""QWeight.PruningMode=Gradual
QWeight.PruningFiller=IterNonStruct
QWeight.StartThreshold={start}
QWeight.GammaThreshold={gamma}
QWeight.Threshold={threshold}
QWeight.StepSizeThreshold={step_size}
"""


# Two Fc layers with dropout between them, a learning rate that decays every
# epoch; 6,000 learn images (Validation=0.9) make an epoch of 24 steps of 256.
DROPOUT_MLP = mnist_input(256) + fc("fc1", "sp", 32, "common.config", """\
ActivationFunction=Rectifier
WeightsFiller=HeFiller
""") + """
[drop]
Input=fc1
Type=Dropout
NbOutputs=32
""" + classifier_tail("drop", 10, "common.config") + """
[common.config]
Solvers.LearningRate=0.2
Solvers.Momentum=0.9
WeightsSolver.Decay=0.0005
Solvers.LearningRatePolicy=StepDecay
Solvers.LearningRateStepSize=[sp]_EpochSize
Solvers.LearningRateDecay=0.9
"""
