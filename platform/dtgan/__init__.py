"""dtgan: an experiment platform for DT-GAN (Defect Transfer GAN) and its StarGAN v2 baseline."""

__version__ = "0.1.0"
