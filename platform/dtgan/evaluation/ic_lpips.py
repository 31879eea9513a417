"""IC-LPIPS (intra-cluster LPIPS, Ojha et al. 2021 as used by DFMGAN, AnomalyDiffusion and SeaS on MVTec AD):
each synthetic image of a product x defect cell joins the cluster of its nearest real image of that cell by
LPIPS; a cluster's score is the mean LPIPS over its pairs of images; the cell's IC-LPIPS is the mean over all
clusters (every real image is one), a cluster with fewer than two images scoring 0, as in DFMGAN's code. Higher
= more diverse; 0 = every image a copy of its neighbours.

LPIPS is the ``lpips`` package's network (its calibrated linear layers ship inside the package); its trunk
(torchvision's ImageNet AlexNet or VGG-16) is read from a local file or the torch hub cache, hash-checked and
with ``weights_only=True``; nothing is downloaded. Offline without that file the value is "not computed", never a
number of a random trunk.

LPIPS is a squared Euclidean distance: with channel-normalised activations f_l (C_l x H_l x W_l) of layer l and
the non-negative linear weights w_l, d(x, y) = sum_l mean_hw sum_c w_lc (f_l(x) - f_l(y))^2 = ||phi(x) - phi(y)||^2
for phi(x) = concat_l sqrt(w_l / (H_l W_l)) * f_l(x). Each image goes through the network once; all distances
come from its embedding phi (tests check it against ``lpips.LPIPS.forward``).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from dtgan.config.evaluation import EvaluationConfig
from dtgan.errors import ConfigError
from dtgan.evaluation.feature_cache import FINGERPRINT_CHARS

log = logging.getLogger(__name__)

# torchvision's ImageNet files the LPIPS linear layers were calibrated on; torch hub names each by the first
# hex digits of its SHA-256, which is checked before anything reads the file.
LPIPS_WEIGHTS_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}
_HASH_PREFIX = re.compile(r"-([0-9a-f]{8,})\.pth$")
# Embeddings of at most this many bytes are held at once (VGG at 256 px: ~32 MB per image).
EMBED_CHUNK_BYTES = 1 << 30

Embed = Callable[[torch.Tensor], torch.Tensor]  # uint8 (N, 1|3, H, W) -> (N, D) float; LPIPS = squared L2


@dataclass(frozen=True)
class LpipsSpec:
    """The LPIPS network a value was computed with."""

    backbone: str  # "alex" | "vgg"
    weights_path: str
    weights_fingerprint: str

    @property
    def label(self) -> str:
        """What the tag ``lpips_backbone`` and every record carry: ``alex/<weights fingerprint>``."""
        return f"{self.backbone}/{self.weights_fingerprint}"


def hub_lpips_weights(backbone: str) -> Path:
    """Where torch hub keeps the trunk's weights ($TORCH_HOME/hub/checkpoints/...)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_WEIGHTS_FILES[backbone]


def lpips_weights_location(cfg: EvaluationConfig) -> Path:
    """The file IC-LPIPS reads its trunk from: the configured path, else the hub cache's."""
    if cfg.lpips_weights_path is not None:
        return Path(os.path.expanduser(cfg.lpips_weights_path))
    return hub_lpips_weights(cfg.lpips_backbone)


def resolve_lpips(cfg: EvaluationConfig) -> LpipsSpec | str:
    """The LPIPS network to use, or the one-line reason IC-LPIPS is not computed.

    A configured path that does not exist is an error (the user asked for it); a missing hub cache file is
    not (offline machines have none): the reason is recorded instead of a number. Bad weights fail here,
    before any image is generated.
    """
    if not cfg.ic_lpips:
        return "not computed: evaluation.ic_lpips=false"
    path = lpips_weights_location(cfg)
    if not path.is_file():
        if cfg.lpips_weights_path is not None:
            raise ConfigError(
                f"evaluation.lpips_weights_path: {path} does not exist; point it at "
                f"{LPIPS_WEIGHTS_FILES[cfg.lpips_backbone]} (torchvision's ImageNet {cfg.lpips_backbone} weights)"
            )
        reason = f"not computed: no LPIPS weights at {path}"
        log.warning(
            "IC-LPIPS %s (copy %s there or set evaluation.lpips_weights_path)",
            reason,
            LPIPS_WEIGHTS_FILES[cfg.lpips_backbone],
        )
        return reason
    state, digest = read_trunk_state_dict(path, cfg.lpips_backbone)
    spec = LpipsSpec(cfg.lpips_backbone, str(path), digest[:FINGERPRINT_CHARS])
    LpipsEmbedder(spec, torch.device("cpu"), state)  # the weights fit the trunk
    return spec


def read_trunk_state_dict(path: str | Path, backbone: str) -> tuple[dict[str, torch.Tensor], str]:
    """The trunk's torchvision state dict and its SHA-256, once the bytes hash to the published prefix
    (``alexnet-owt-7be5be79.pth``: ``7be5be79``), read with ``weights_only=True`` from those same bytes."""
    expected = _HASH_PREFIX.search(LPIPS_WEIGHTS_FILES[backbone]).group(1)
    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if not digest.startswith(expected):
        raise ConfigError(
            f"{path}: SHA-256 {digest[:FINGERPRINT_CHARS]}... is not that of torchvision's "
            f"{LPIPS_WEIGHTS_FILES[backbone]} ({expected}...); nothing was read from it. Use that file for "
            f"evaluation.lpips_backbone={backbone}"
        )
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # foreign bytes raise many types
        raise ConfigError(f"{path}: not a tensors-only weights file ({type(exc).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{path}: not a state dict of tensors; use {LPIPS_WEIGHTS_FILES[backbone]}")
    return state, digest


def _lpips_network(backbone: str):
    """``lpips.LPIPS`` with its packaged linear layers and an untrained trunk (``pnet_rand``: no download)."""
    import lpips

    with warnings.catch_warnings():  # torchvision's deprecation of lpips' ``pretrained=`` argument
        warnings.simplefilter("ignore")
        return lpips.LPIPS(net=backbone, pretrained=True, pnet_rand=True, verbose=False)


def _trunk_state(network, torchvision_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision's ``features.<i>.<param>`` keys as lpips' ``slice<k>.<i>.<param>``."""
    out = {}
    for key in network.net.state_dict():
        _, index, param = key.split(".", 2)
        out[key] = torchvision_state.get(f"features.{index}.{param}")
    missing = sorted(k for k, v in out.items() if v is None)
    if missing:
        raise ConfigError(f"the LPIPS trunk weights lack {len(missing)} tensors (e.g. {missing[0]})")
    return out


class LpipsEmbedder:
    """uint8 images -> the LPIPS embedding phi (see the module docstring), on ``device``.

    ``state`` is the trunk's torchvision state dict; None leaves the trunk untrained (tests of the formula only:
    such distances are never reported).
    """

    def __init__(
        self, spec: LpipsSpec | None, device: torch.device, state: dict[str, torch.Tensor] | None = None
    ) -> None:
        backbone = spec.backbone if spec is not None else "alex"
        self.network = _lpips_network(backbone)
        if spec is not None:
            state = state if state is not None else read_trunk_state_dict(spec.weights_path, backbone)[0]
        if state is not None:
            try:
                self.network.net.load_state_dict(_trunk_state(self.network, state))
            except RuntimeError as exc:  # wrong shapes
                raise ConfigError(
                    f"the LPIPS trunk weights do not fit {backbone} ({str(exc).splitlines()[0]})"
                ) from None
        self.network.requires_grad_(False).eval().to(device)
        self.device = device
        self.scales = []
        for lin in self.network.lins:
            weight = lin.model[-1].weight.detach()  # (1, C, 1, 1), non-negative as published
            if bool((weight < 0).any()):
                raise ConfigError("the packaged LPIPS linear layers have negative weights; reinstall lpips")
            self.scales.append(weight.sqrt().view(1, -1, 1, 1).to(device))

    @torch.inference_mode()
    def __call__(self, images_uint8: torch.Tensor) -> torch.Tensor:
        import lpips

        x = images_uint8.to(self.device).float() / 127.5 - 1.0
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        outs = self.network.net(self.network.scaling_layer(x))
        parts = []
        for out, scale in zip(outs, self.scales, strict=True):
            f = lpips.normalize_tensor(out) * scale / (out.shape[2] * out.shape[3]) ** 0.5
            parts.append(f.flatten(1))
        return torch.cat(parts, dim=1).float()


class _Embedded:
    """The embeddings of a set of images: all at once when they fit in EMBED_CHUNK_BYTES, else per request."""

    def __init__(self, images: torch.Tensor, embed: Embed, batch_size: int, chunk: int) -> None:
        self.images, self.embed, self.batch_size = images, embed, batch_size
        self.all = self._compute(torch.arange(len(images))) if len(images) <= chunk else None

    def _compute(self, rows: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.embed(self.images[rows[i : i + self.batch_size]])
                for i in range(0, len(rows), self.batch_size)
            ]
        )

    def __getitem__(self, rows: torch.Tensor) -> torch.Tensor:
        return self.all[rows.to(self.all.device)] if self.all is not None else self._compute(rows)


def _sq_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(Na, Nb) float64 squared Euclidean distances, computed without the ||a||^2 + ||b||^2 - 2ab shortcut
    (exact 0 for identical rows); float32 inputs, so a chunk is never copied at twice its size."""
    return torch.cdist(a.float(), b.float(), compute_mode="donot_use_mm_for_euclid_dist").double().pow(2)


def _blocks(n: int, size: int) -> list[torch.Tensor]:
    return [torch.arange(i, min(i + size, n)) for i in range(0, n, size)]


@dataclass(frozen=True)
class ClusterResult:
    """One cell's IC-LPIPS and how it came about."""

    ic_lpips: float  # mean over every cluster, singletons and empty clusters scoring 0 (DFMGAN's value)
    ic_lpips_nonzero: float | None  # mean over the clusters with a pair (DFMGAN's "rz" variant)
    n_fake: int
    n_real: int  # clusters
    clusters_with_pairs: int
    cluster_sizes: list[int]

    def as_dict(self) -> dict:
        return asdict(self)


def ic_lpips(
    fake_uint8: torch.Tensor,
    real_uint8: torch.Tensor,
    embed: Embed,
    batch_size: int = 64,
    max_per_cluster: int = 200,
    chunk_bytes: int = EMBED_CHUNK_BYTES,
) -> ClusterResult:
    """IC-LPIPS of synthetic images against their real cluster centres; ``embed`` maps images to the space in
    which LPIPS is the squared Euclidean distance (``LpipsEmbedder`` in production)."""
    if len(real_uint8) == 0 or len(fake_uint8) == 0:
        raise ValueError(f"IC-LPIPS needs images: {len(fake_uint8)} synthetic, {len(real_uint8)} real")
    dim = embed(fake_uint8[:1]).shape[1]
    chunk = max(2, chunk_bytes // (4 * dim))
    fake = _Embedded(fake_uint8, embed, batch_size, chunk)
    real = _Embedded(real_uint8, embed, batch_size, chunk)
    # Nearest real image of every synthetic one (the first on ties).
    nearest = torch.empty(len(fake_uint8), dtype=torch.long)
    for rows in _blocks(len(fake_uint8), chunk):
        f = fake[rows]
        best = torch.full((len(rows),), float("inf"), dtype=torch.float64)
        for cols in _blocks(len(real_uint8), chunk):
            d = _sq_distances(f, real[cols])
            value, index = d.min(dim=1)
            better = value.cpu() < best
            best[better] = value.cpu()[better]
            nearest[rows[better]] = cols[index.cpu()[better]]
    scores, sizes = [], []
    for c in range(len(real_uint8)):
        members = torch.nonzero(nearest == c).flatten()[:max_per_cluster]  # in generation order, as DFMGAN
        sizes.append(len(members))
        scores.append(_mean_pairwise(fake, members, chunk) if len(members) >= 2 else 0.0)
    with_pairs = [s for s, n in zip(scores, sizes, strict=True) if n >= 2]
    return ClusterResult(
        ic_lpips=float(sum(scores) / len(scores)),
        ic_lpips_nonzero=float(sum(with_pairs) / len(with_pairs)) if with_pairs else None,
        n_fake=len(fake_uint8),
        n_real=len(real_uint8),
        clusters_with_pairs=len(with_pairs),
        cluster_sizes=sizes,
    )


def _mean_pairwise(embedded: _Embedded, members: torch.Tensor, chunk: int) -> float:
    """Mean distance over the unordered pairs of ``members``."""
    total, blocks = 0.0, _blocks(len(members), chunk)
    for i, a in enumerate(blocks):
        ea = embedded[members[a]]
        total += float(torch.triu(_sq_distances(ea, ea), diagonal=1).sum())
        for b in blocks[i + 1 :]:
            total += float(_sq_distances(ea, embedded[members[b]]).sum())
    n = len(members)
    return total / (n * (n - 1) / 2)
