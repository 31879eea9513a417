"""Identity SSIM and transfer/paint locality of every checkpoint of a run: the disentanglement part of
``dtgan evaluate RUN --all-checkpoints`` (the same images and seeds, ``evaluation.protocol``), without the FID
and classifier parts, so that a run's curve takes seconds. Prints JSON {step: {metric: value}}.

    python benchmarks/identity_ssim_curve.py runs/demo_g -c experiments/presets/demo.yaml
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from dtgan import keys
from dtgan.config.loader import load_config
from dtgan.evaluation.inputs import load_evaluation_data
from dtgan.evaluation.protocol import disentanglement_scores
from dtgan.training.checkpoint import load_inference_nets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder (its checkpoints/step_*.pt)")
    parser.add_argument("-c", "--config", required=True, help="the preset whose evaluation section to use")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, []).evaluation
    data, curve = None, {}
    for checkpoint in sorted((args.run / "checkpoints").glob("step_*.pt")):
        nets = load_inference_nets(checkpoint)
        if data is None:
            data = load_evaluation_data(nets.config.data.path, nets.vocab, cfg, nets.config.model.img_size)
        scores = disentanglement_scores(nets, data, cfg)
        transfer = scores["transfer"]
        curve[nets.step] = {
            keys.EVAL_IDENTITY_SSIM: round(scores["identity"][keys.EVAL_IDENTITY_SSIM], 4),
            **{k: round(v, 4) for k, v in transfer.items() if k.startswith("eval/")},
        }
    print(json.dumps(curve, indent=1))


if __name__ == "__main__":
    main()
