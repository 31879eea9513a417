"""Generated images/s and feature-extraction images/s of the evaluation protocol (paper Appendix C).

Generation runs ``dtgan.evaluation.synthesis.synthesize`` (the EMA networks in inference mode, latent and
reference guidance) on networks of the configured size with random weights: speed does not depend on the
weights. Features run torch-fidelity's Inception-v3 (2048-d, 299 px input; weights randomly initialised
offline, again irrelevant to speed) and the offline DefectCNN extractor. The protocol time is projected as
48k synthetic images generated + their features; the real features are computed once and cached by
``dtgan.evaluation.fidelity.fid_kid`` (``input2_cache_name``), so they are not part of a repeat evaluation.

    python benchmarks/evaluate.py --preset tiny --images 64            # CPU
    python benchmarks/evaluate.py --preset paper --images 2048         # CUDA
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from common import (
    NOT_MEASURED_ON_CPU,
    base_parser,
    describe_device,
    emit,
    peak_rss_mib,
    pick_device,
    time_calls,
)
from torch import nn

PROTOCOL_SYNTHETIC_IMAGES = 48_000
PROTOCOL_MINUTES_TARGET = 5.0
DEFECTS = ("normal", "scratch", "spot")
PRODUCTS = ("brushed", "cast", "woven")


def inference_nets(preset: str, device: torch.device):
    """InferenceNets of the preset's model with random (He) weights, as a checkpoint would give them."""
    from dtgan.config.loader import load_config
    from dtgan.data.vocab import Vocab
    from dtgan.models import build_nets
    from dtgan.training.checkpoint import InferenceNets

    config = load_config(preset)
    nets = build_nets(config.model, num_domains=len(DEFECTS), num_products=len(PRODUCTS))
    ema = {name: nets[name].to(device).eval() for name in ("generator", "mapping_network", "style_encoder")}
    return InferenceNets(config=config, vocab=Vocab(products=PRODUCTS, defects=DEFECTS), step=0, **ema)


def random_inception(weights_dir: Path, device: torch.device) -> nn.Module:
    """torch-fidelity's Inception-v3 feature extractor with random weights (nothing downloads)."""
    from torch_fidelity import feature_extractor_inceptionv3 as tf_inception

    original = (
        tf_inception.load_state_dict_from_url,
        tf_inception.FeatureExtractorInceptionV3.load_state_dict,
    )
    tf_inception.load_state_dict_from_url = lambda *a, **k: {}
    tf_inception.FeatureExtractorInceptionV3.load_state_dict = lambda self, sd: None
    try:
        net = tf_inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    finally:
        tf_inception.load_state_dict_from_url, tf_inception.FeatureExtractorInceptionV3.load_state_dict = (
            original
        )
    path = weights_dir / "random-inception.pth"
    torch.save(net.state_dict(), path)  # then load it the way the platform does: from a local file
    net = tf_inception.FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path)
    )
    return net.to(device).eval()


def defect_cnn(device: torch.device) -> nn.Module:
    from dtgan.config.evaluation import EvaluationConfig
    from dtgan.evaluation.defect_cnn import DefectCNN

    cfg = EvaluationConfig().defect_cnn
    return DefectCNN(len(DEFECTS) * len(PRODUCTS), cfg.feature_dim, cfg.input_size_px).to(device).eval()


def images_per_s(fn, n: int, device: torch.device, repeats: int) -> dict:
    timing = time_calls(fn, device, warmup=1, repeats=repeats)
    return {
        "images": n,
        **timing.as_dict(per="pass"),
        "images_per_s": round(n / timing.median_wall_s, 2),
        "images_per_cpu_s": round(n / timing.median_cpu_s, 2),
    }


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument(
        "--images", type=int, default=None, help="images per timed pass (default 64 CPU, 2048 CUDA)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="generation/feature batch (default 64; 256 CUDA)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    cuda = device.type == "cuda"
    n = args.images or (2048 if cuda else 64)
    batch = args.batch_size or (256 if cuda else 64)
    nets = inference_nets(args.preset, device)
    side = nets.config.model.img_size
    g = torch.Generator().manual_seed(0)
    sources = torch.randint(0, 256, (n, 3, side, side), dtype=torch.uint8, generator=g)
    y_trg = torch.randint(0, len(DEFECTS), (n,), generator=g)
    from dtgan.evaluation.synthesis import synthesize

    generation = {
        guidance: images_per_s(
            lambda guidance=guidance: synthesize(
                nets,
                sources,
                y_trg,
                guidance,
                references=sources if guidance == "reference" else None,
                y_ref=y_trg if guidance == "reference" else None,
                batch_size=batch,
            ),
            n,
            device,
            args.repeats,
        )
        for guidance in ("latent", "reference")
    }
    features = {}
    with tempfile.TemporaryDirectory() as tmp:
        extractors = {
            "inception-v3-compat": random_inception(Path(tmp), device),
            "dtgan-defect-cnn": defect_cnn(device),
        }
        for name, net in extractors.items():
            count = (
                n if name != "inception-v3-compat" or cuda else min(n, 32)
            )  # Inception: ~10 img/s on a CPU

            @torch.inference_mode()
            def extract(net=net, count=count):
                for start in range(0, count, batch):
                    net(sources[start : min(start + batch, count)].to(device))

            features[name] = images_per_s(extract, count, device, args.repeats)

    gen_rate = min(v["images_per_s"] for v in generation.values())
    projection = {
        name: round(
            (PROTOCOL_SYNTHETIC_IMAGES / gen_rate + PROTOCOL_SYNTHETIC_IMAGES / f["images_per_s"]) / 60, 1
        )
        for name, f in features.items()
    }
    if cuda and args.preset == "paper":
        minutes = projection["inception-v3-compat"]
        target = {
            "value_minutes": minutes,
            "target_minutes": PROTOCOL_MINUTES_TARGET,
            "met": minutes <= PROTOCOL_MINUTES_TARGET,
        }
    else:
        target = (
            NOT_MEASURED_ON_CPU
            if not cuda
            else "not measured here: the target is for the paper preset (128 px)"
        )
    result = {
        "benchmark": "evaluate",
        "preset": args.preset,
        "img_size": side,
        "batch_size": batch,
        "environment": describe_device(device),
        "generation": generation,
        "features": features,
        "protocol_minutes_projected": projection,
        "targets": {"protocol_48k_minutes": target},
        "real_features": "computed once per (data set, extractor) and cached by fid_kid; not in the projection",
    }
    if cuda:
        result["peak_memory_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    else:
        result["peak_rss_mib_process"] = peak_rss_mib()
    emit(result, args.out)


if __name__ == "__main__":
    main()
