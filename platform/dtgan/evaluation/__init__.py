"""Evaluation: synthesis sets (latent/reference/mix), FID/KID through torch-fidelity, disentanglement metrics, grids."""
