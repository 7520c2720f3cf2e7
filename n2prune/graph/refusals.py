"""What N2D2's INI files may name that n2prune declines, each with the feature it belongs to.

A name a user copied from an N2D2 model is not a typo: "unknown Type=RP;
did you mean ...?" would send them looking for a spelling. These names are
filed in their registries as refused (``Registry.refuse``), so the one
line says which feature is missing instead.
"""

from n2prune.cells import CELL_TYPES
from n2prune.data import DATABASES
from n2prune.graph.targets import TARGETS

_USE_N2D2 = "are not supported by n2prune (run this model in N2D2)"

CELL_TYPES.refuse(("Anchor", "RP", "ROIPooling", "Proposal", "ObjectDet"),
                  f"detection cells (Anchor, RP, ROIPooling, Proposal, ObjectDet) {_USE_N2D2}")
CELL_TYPES.refuse(("LSTM",), f"recurrent cells (LSTM) {_USE_N2D2}")
CELL_TYPES.refuse(("FMP", "LRN", "Distance", "Reshape", "Resize", "Scaling", "Threshold",
                   "Transformation", "Transpose", "Unpool"),
                  f"N2D2's FMP, LRN, Distance, Reshape, Resize, Scaling, Threshold, "
                  f"Transformation, Transpose and Unpool cells {_USE_N2D2}")
TARGETS.refuse(("TargetROIs", "TargetRP", "TargetBBox", "TargetCompare", "TargetMatching"),
               f"detection and matching targets (TargetROIs, TargetRP, TargetBBox, "
               f"TargetCompare, TargetMatching) {_USE_N2D2}")
DATABASES.refuse(("IMDBWIKI_Database", "KITTI_Road_Database", "KITTI_Database",
                  "N_MNIST_Database", "CelebA_Database", "Cityscapes_Database"),
                 f"detection, segmentation and event-camera databases {_USE_N2D2}")

# QWeight= and QAct= name N2D2's quantizers; only Prune is n2prune's.
REFUSED_QUANTIZERS = {
    "SAT": "SAT quantization-aware training (QWeight=SAT) is not supported; n2prune's "
           "quantizer is QWeight=Prune",
    "LSQ": "LSQ quantization (QWeight=LSQ) is not supported; n2prune's quantizer is "
           "QWeight=Prune",
}
