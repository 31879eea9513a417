"""Config of the evaluation: synthesis set sizes, FID/KID/IS feature extractor and cache, IC-LPIPS, disentanglement,
grids."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from dtgan.config.base import Section

SPLITS = ("gan_train", "gan_holdout", "val", "test")
Split = Literal["gan_train", "gan_holdout", "val", "test"]
# weights-inception-2015-12-05-6726825d.pth (95,628,359 bytes), torch-fidelity v0.2.0 = pytorch-fid's pt_inception;
# torch hub names files by the first 8 hex digits of this hash.
INCEPTION_WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
LpipsBackbone = Literal["alex", "vgg"]


class DefectCNNConfig(Section):
    """The offline FID feature extractor ``dtgan-defect-cnn``: a small CNN trained once per data set to
    recognise product x defect; its penultimate layer is the feature (needs no download)."""

    input_size_px: int = Field(32, ge=16, le=128, description="side the images are resized to before the CNN")
    feature_dim: int = Field(128, ge=8, le=2048, description="width of the feature (penultimate) layer")
    epochs: int = Field(8, ge=1, le=200, description="training epochs over the gan_train split")
    min_steps: int = Field(
        300, ge=0, description="at least this many optimiser steps (more epochs on small data sets)"
    )
    batch_size: int = Field(32, ge=1, description="training batch size")
    lr: float = Field(1e-3, gt=0.0, description="Adam learning rate")
    seed: int = Field(0, ge=0, description="seed of the initialisation and the batch order")


class PretrainedCNNConfig(Section):
    """The default offline FID feature extractor ``dtgan-pretrained-cnn``: the ``dtgan-defect-cnn`` architecture
    pre-trained once on a procedural corpus of background x defect classes that the embedded generator renders
    (never the images being judged), cached under a key of the corpus, the recipe and the code."""

    weights_path: str | None = Field(
        None,
        description="weights of dtgan-pretrained-cnn to use instead of the cached/pretrained ones (a local file; "
        "nothing is ever downloaded)",
    )
    cache_dir: str = Field(
        "~/.cache/dtgan",
        description="folder of the pretrained weights: they depend on no data set, so every evaluation on this "
        "machine shares them",
    )
    images_per_class: int = Field(
        360,
        ge=4,
        description="corpus images per background x defect class (14 backgrounds x 6 defect classes)",
    )
    input_size_px: int = Field(32, ge=16, le=128, description="side of the corpus and of the network's input")
    render_sides: list[int] = Field(
        [32, 64, 128],
        min_length=1,
        description="native sides the corpus is rendered at (a random one per chunk), then downsampled",
    )
    min_boldness: float = Field(1.0, gt=0.0, le=8.0, description="weakest defect boldness in the corpus")
    max_boldness: float = Field(3.0, gt=0.0, le=8.0, description="boldest defect boldness in the corpus")
    corpus_seed: int = Field(0, ge=0, description="seed of the corpus")
    widths: list[int] = Field(
        [32, 64, 128], min_length=3, max_length=3, description="channels of the three conv stages"
    )
    feature_dim: int = Field(128, ge=8, le=2048, description="width of the feature (penultimate) layer")
    epochs: int = Field(4, ge=1, le=200, description="training epochs over the corpus")
    batch_size: int = Field(64, ge=1, description="training batch size")
    lr: float = Field(2e-3, gt=0.0, description="Adam learning rate (cosine decay to 0 over the run)")
    defect_weight: float = Field(
        2.0,
        ge=0.0,
        description="weight of the defect-type loss (the class logits summed over backgrounds) beside the "
        "background x defect loss",
    )
    pool: Literal["flatten", "avgmax"] = Field(
        "avgmax",
        description="how the last conv stage reaches the feature layer: its 4 x 4 cells in place (flatten), or "
        "their mean and maximum (avgmax: the same wherever a defect sits; a small defect's response is kept)",
    )
    local_weight: float = Field(
        1.0,
        ge=0.0,
        description="weight of the local head's loss (every cell of the last stage's 4 x 4 map classified as "
        "normal or a defect type, labelled from the corpus' defect masks); > 0 also appends the defect evidence "
        "to the FID feature; 0: no local head, the FID feature is the feature layer alone",
    )
    seed: int = Field(0, ge=0, description="seed of the initialisation and the batch order")
    fine_tune: bool = Field(
        False,
        description="fine-tune the pretrained network on the data set's reference split (a new head of its "
        "product x defect classes, every weight trained; cached per data set under evaluation.cache_dir)",
    )
    fine_tune_steps: int = Field(300, ge=1, description="fine-tuning: Adam steps")
    fine_tune_lr: float = Field(3e-4, gt=0.0, description="fine-tuning: Adam learning rate")

    @model_validator(mode="after")
    def _boldness_ordered(self) -> PretrainedCNNConfig:
        if self.min_boldness > self.max_boldness:
            raise ValueError(
                f"min_boldness ({self.min_boldness}) must not exceed max_boldness ({self.max_boldness})"
            )
        return self


class EvaluationConfig(Section):
    """The protocol of docs/model.md#evaluation-protocol (paper Appendix C) with docs/model.md#a14/docs/model.md#a15 and the platform's extra metrics."""

    images_per_product_per_defect: int = Field(
        4000, ge=1, description="synthetic images per product per defect domain per guidance (paper: 4000)"
    )
    source_split: Split = Field(
        "gan_holdout",
        description="split whose normal images are the sources of synthesis (never seen by the GAN)",
    )
    reference_split: Split = Field(
        "gan_train", description="split of the real defect images: FID/KID reference set and style references"
    )
    per_defect: bool = Field(
        False,
        description="docs/model.md#a14: also score each defect type separately (the default pools the defect types)",
    )
    synthetic_cells: Literal["all", "with_real_defects"] = Field(
        "all",
        description=(
            "which product x defect cells are synthesised and scored: all (the paper's protocol: every product gets every "
            "defect domain, unseen cells included) or with_real_defects (only cells with real defect images in "
            "reference_split: the field's per-category protocol, e.g. MVTec, where most types belong to one category)"
        ),
    )
    feature_extractor: Literal["auto", "inception-v3-compat", "dtgan-pretrained-cnn", "dtgan-defect-cnn"] = (
        Field(
            "auto",
            description="FID/KID features: auto = Inception when its weights are found locally, else "
            "dtgan-pretrained-cnn (pre-trained on the procedural corpus); dtgan-defect-cnn = the network trained on "
            "the data set's own reference split",
        )
    )
    inception_weights_path: str | None = Field(
        None,
        description="Inception weights file; null = $TORCH_HOME/hub/checkpoints/weights-inception-2015-12-05-6726825d.pth",
    )
    inception_weights_sha256: str = Field(
        INCEPTION_WEIGHTS_SHA256,
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 the Inception weights file must have before anything reads it (default: the published "
        "torch-fidelity/pytorch-fid file); change it only for weights of your own, whose FIDs are not the paper's",
    )
    defect_cnn_weights_path: str | None = Field(
        None,
        description="weights of dtgan-defect-cnn to use instead of training it on the data; a study sets it to the "
        "network its driver trained, so that every trial on every node scores with the same one",
    )
    cache_dir: str = Field(
        "~/.cache/dtgan/evaluation",
        description="folder of cached real-image features and of the trained offline extractor",
    )
    save_features: bool = Field(
        True,
        description="write the FID/KID features (float32 (N, D) .npy, <out>/features/) for the report's bootstrap "
        "CIs; Inception at paper scale: ~200 MB per guidance for all products, as much again per product",
    )
    kid_subset_size_max: int = Field(
        1000,
        ge=2,
        description="docs/model.md#a15: KID subset size = min(this, real set size, synthetic set size)",
    )
    kid_subset_size_min: int = Field(
        20, ge=2, description="smallest acceptable KID subset; fewer real images is an error naming the set"
    )
    kid_subsets: int = Field(100, ge=1, description="docs/model.md#a15: number of KID subsets")
    is_splits: int = Field(
        10,
        ge=1,
        description="Inception Score splits (torch-fidelity's default 10); fewer on small sets, at least 10 "
        "images per split",
    )
    ic_lpips: bool = Field(
        True, description="score IC-LPIPS (DFMGAN's intra-cluster LPIPS) per product x defect and averaged"
    )
    lpips_backbone: LpipsBackbone = Field(
        "alex",
        description="LPIPS trunk: alex (DFMGAN, AnomalyDiffusion) or vgg (SeaS); recorded with every value",
    )
    lpips_weights_path: str | None = Field(
        None,
        description="torchvision ImageNet weights of the LPIPS trunk; null = $TORCH_HOME/hub/checkpoints/"
        "alexnet-owt-7be5be79.pth (alex) or vgg16-397923af.pth (vgg); nothing is downloaded",
    )
    ic_lpips_max_images: int = Field(
        1000,
        ge=2,
        description="IC-LPIPS: at most this many synthetic images per product x defect (field: 1000)",
    )
    ic_lpips_max_per_cluster: int = Field(
        200, ge=2, description="IC-LPIPS: images kept per cluster, first assigned first (DFMGAN's code: 200)"
    )
    batch_size: int = Field(64, ge=1, description="images per batch for generation and feature extraction")
    seed: int = Field(0, ge=0, description="seed of sources, latent codes, references and the mix draw")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = cuda when available")
    disentanglement_num_images: int = Field(
        200, ge=1, description="images per disentanglement metric (identity, removal, transfer), at most"
    )
    removal_split: Split = Field(
        "val", description="split whose defect images with a stored clean background are used for removal"
    )
    locality_top_fraction: float = Field(
        0.1,
        gt=0.0,
        lt=1.0,
        description="transfer locality: share of the change inside this most-changed fraction",
    )
    grid_num_sources: int = Field(6, ge=1, le=64, description="source rows of the sample grids")
    grid_num_styles: int = Field(
        4, ge=1, le=32, description="latent samples (columns) per defect in the grids"
    )
    grid_num_references: int = Field(4, ge=1, le=32, description="reference columns per defect in the grids")
    defect_cnn: DefectCNNConfig = Field(default_factory=DefectCNNConfig)
    pretrained_cnn: PretrainedCNNConfig = Field(default_factory=PretrainedCNNConfig)
    holdout_split: Split = Field(
        "val",
        description="split of held-out real images (every label): the defect classifier's per-class accuracy "
        "and the ceiling/floor of defect recall; never the split the classifier trains on",
    )
    defect_recall: bool = Field(
        True,
        description="score defect recall: the share of each cell's synthetic images the defect classifier "
        "(dtgan-defect-cnn, trained on reference_split) assigns to the intended defect type",
    )
    ladder: bool = Field(
        True,
        description="run the validity ladder (floor, Crop&Paste, blurred, noised, paints-nothing sets built from "
        "the real data) to check that FID/KID can tell a painted defect from none on this data",
    )
    ladder_min_images: int = Field(
        8, ge=2, description="validity ladder: a scope with fewer real defect images per half is untested"
    )
    ladder_max_images: int = Field(
        200, ge=2, description="validity ladder: at most this many images per rung per product x defect cell"
    )
    ladder_splits: int = Field(
        5,
        ge=1,
        le=50,
        description="validity ladder: seeded half-splits of each cell's real defects; every rung is scored against "
        "the reference half of each split and the ladder judges the mean (one split of a dozen images is mostly "
        "sampling noise)",
    )
    ladder_min_separation: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="validity ladder: 'paints nothing' must sit above the real-defect rungs by at least this "
        "share of its distance to the floor: (nothing - max(floor, crop_paste)) / (nothing - floor)",
    )
    ladder_floor_tolerance: float = Field(
        0.25,
        ge=0.0,
        lt=1.0,
        description="validity ladder: the floor counts as the best rung while no rung beats it by more than this "
        "share of the span from the floor to 'paints nothing' (sampling noise of small halves: on the tiny test data "
        "a working extractor put lightly noised real defects 0.105 of the span below the floor with 2 threads)",
    )
    ladder_blur_sigma_fraction: float = Field(
        0.04,
        gt=0.0,
        le=0.5,
        description="validity ladder: Gaussian blur sigma as a fraction of the image side",
    )
    ladder_noise_std: float = Field(
        0.1,
        gt=0.0,
        le=1.0,
        description="validity ladder: Gaussian noise std as a fraction of the 0..255 range",
    )

    @model_validator(mode="after")
    def _kid_bounds_ordered(self) -> EvaluationConfig:
        if self.kid_subset_size_min > self.kid_subset_size_max:
            raise ValueError(
                f"kid_subset_size_min ({self.kid_subset_size_min}) must not exceed "
                f"kid_subset_size_max ({self.kid_subset_size_max})"
            )
        return self
