"""Where tests find the project's files and N2D2's own model files.

N2D2's files are read in place, never copied into the project: from
``$N2PRUNE_SHARED_MODELS`` if set, else ``../shared/n2d2_models`` beside the checkout
(as in CI). Fashion-MNIST comes from Debian's ``dataset-fashion-mnist``
(or ``$N2D2_DATA``). Tests that read such files carry the ``n2d2_models`` or
``fashion_mnist`` mark; conftest.py skips them when the files are missing,
and fails them instead when ``N2PRUNE_REQUIRE_EXTERNAL`` is set (``.ci/run``
sets it, and installs Fashion-MNIST).
"""

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS_INI = ROOT / "models_ini"
SHARED_N2D2_MODELS = ROOT.parent / "shared" / "n2d2_models"
# Not $N2D2_MODELS: that names N2D2's whole models/ folder (the templates' include path).
N2D2_MODELS = Path(os.environ.get("N2PRUNE_SHARED_MODELS") or SHARED_N2D2_MODELS)
# The files of ../shared/n2d2_models that the tests expect to find there.
N2D2_MODEL_FILES = (
    "GTSRB29_32c4s1_32mp2_48c5s1_48mp3_200_43.ini", "LeNet.ini", "LeNet_Spike.ini",
    "LeNet_quant.ini", "mnist24_16c4s2_24c5s2_150_10.ini",
    "tests_mnist_model_LeNet-bn-SAT.ini", "tests_mnist_model_model.ini",
    "tests_mnist_model_model_wo_softmax.ini",
)


def fashion_mnist_missing():
    """None when Fashion-MNIST can be read, else the one-line reason to skip."""
    from n2prune.data.mnist import default_data_path
    from n2prune.errors import DataError
    try:
        default_data_path(fashion=True)
    except DataError as missing:
        return str(missing)
    return None


def n2d2_models_missing():
    """None when the N2D2 files are there, else the one-line reason to skip."""
    if N2D2_MODELS.is_dir():
        return None
    return (f"N2D2's model files not found: set $N2PRUNE_SHARED_MODELS or place them at "
            f"{SHARED_N2D2_MODELS}")


def n2d2_checkout():
    """``(path, None)`` of the N2D2 checkout ``$N2D2_CHECKOUT``, or ``(None, reason)``."""
    checkout = os.environ.get("N2D2_CHECKOUT")
    if checkout and (Path(checkout) / "models").is_dir():
        return Path(checkout), None
    return None, "set N2D2_CHECKOUT to a checkout of CEA-LIST/N2D2 (its models/ folder)"


def c_compiler():
    """The system C compiler's path (cc, gcc or clang), or None."""
    return shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def c_compiler_missing():
    return None if c_compiler() else "no C compiler (cc, gcc or clang) on PATH"
