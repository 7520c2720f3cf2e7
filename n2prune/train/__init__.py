"""Training runs: the loaded model, the loop, progress, the run folder."""
