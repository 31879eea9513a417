"""Config of Crop&Paste, the cheapest defect synthesis: a real defect cut out by its mask and pasted onto a normal."""

from __future__ import annotations

from pydantic import Field

from dtgan.config.base import Section


class CropPasteConfig(Section):
    """How a masked defect is pasted: its feathered edge and the random flips; placement is uniform."""

    feather_sigma_fraction: float = Field(
        0.01,
        ge=0.0,
        le=0.1,
        description="Gaussian sigma of the feathered edge (alpha = the blurred mask) as a fraction of the image "
        "side (0.01 = 1.28 px at 128 px); 0 = a hard edge",
    )
    hflip_prob: float = Field(0.5, ge=0.0, le=1.0, description="probability of flipping a cut-out left-right")
    vflip_prob: float = Field(
        0.5, ge=0.0, le=1.0, description="probability of flipping a cut-out upside down"
    )
