"""Where tests find the project's files and ../shared (beside the checkout, as in CI)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS_INI = ROOT / "models_ini"
N2D2_MODELS = ROOT.parent / "shared" / "n2d2_models"
