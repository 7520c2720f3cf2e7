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


# The first cells of the export tests' networks: a Padding, and a Conv with a
# leaky, clipped ReLU.
EXPORT_NET_HEAD = """
[database]
Type=MNIST_IDX_Database

[sp]
SizeX=11
SizeY=12
BatchSize=4

[pad]
Input=sp
Type=Padding
NbOutputs=1
TopPadding=1
BottomPadding=-1
LeftPadding=2

[c1]
Input=pad
Type=Conv
KernelDims=3 1
PaddingDims=1 0
NbOutputs=4
ActivationFunction=Rectifier
ActivationFunction.LeakSlope=0.1
ActivationFunction.Clipping=0.5

"""

# Every cell type and activation the C export maps, on a small network: the C and
# the ONNX export tests run it.
EVERY_C_CELL = EXPORT_NET_HEAD + """[c2]
Input=pad
Type=Conv
KernelDims=3 3
PaddingDims=2 2
DilationDims=2 2
NbOutputs=4
ActivationFunction=Tanh
ActivationFunction.Alpha=0.7

[c3]
Input=c1,c2
Type=Conv
KernelDims=3 3
StrideDims=2 2
PaddingDims=1 1
NbOutputs=6
Mapping(c1)=\\
1 0 0 1 1 0 \\
0 1 0 0 1 1 \\
0 0 1 1 0 1 \\
1 1 1 0 0 0
ActivationFunction=Logistic

[bn]
Input=c3
Type=BatchNorm
NbOutputs=6
ActivationFunction=TanhLeCun

[sum]
Input=bn,c3
Type=ElemWise
NbOutputs=6
Operation=Sum
Weights=0.5 -2
Shifts=0.25
ActivationFunction=Swish

[csum]
Input=bn,sum
Type=ElemWise
NbOutputs=6
Operation=Sum
CoeffMode=PerChannel
Weights=1 2 3 -1 -2 0.5
Shifts=0 0.1 0.2 0.3 0.4 0.5

[max]
Input=bn,csum
Type=ElemWise
NbOutputs=6
Operation=Max

[prod]
Input=sum,max
Type=ElemWise
NbOutputs=6
Operation=Prod

[drop]
Input=prod
Type=Dropout
NbOutputs=6

[pool]
Input=drop
Type=Pool
PoolDims=3 2
StrideDims=2 2
PaddingDims=1 1
Pooling=Average
NbOutputs=4
Mapping(drop)=\\
1 0 0 1 \\
1 1 0 0 \\
0 1 0 1 \\
0 0 0 1 \\
1 1 0 0 \\
0 0 0 1

[sat]
Input=pool,pool
Type=Activation
NbOutputs=8
ActivationFunction=Saturation
ActivationFunction.Threshold=0.3

[mpool]
Input=sat,pool
Type=Pool
PoolDims=2 2
StrideDims=1 1
PaddingDims=1 1
Pooling=Max
NbOutputs=5

[gmax]
Input=sat
Type=Pool
PoolDims=4 4
Pooling=Max
NbOutputs=8
Mapping.Size=1

[fc]
Input=mpool,gmax
Type=Fc
NbOutputs=10
ActivationFunction=Linear
ActivationFunction.Clipping=2

[softmax]
Input=fc
Type=Softmax
NbOutputs=10
GroupSize=5
WithLoss=1

[softmax.Target]
"""
