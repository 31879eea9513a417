"""The layer widths of every network, derived from the model config by rules that give Tables 9-11 at 128 px.

Rules (paper values at img_size 128, stem 128, max_conv_dim 512, content_dim 64 in brackets):

* Bottleneck side ``B = 16`` at every size (StarGAN v2's rule: ``L = log2(img_size) - 4`` scale levels, at
  least 1, so B = 8 at 16 px): G's encoder and E/D's shared trunk downsample L times [3 at 128 px, 1 at 32 px,
  2 at 64 px]; the decoders upsample L times. A reduced CPU variant therefore keeps the paper's 16 x 16
  bottleneck, not its number of levels (at 32 px three levels left a 4 x 4 bottleneck through which a
  texture cannot pass, and the trained generator ignored its input).
* Encoder widths double from the stem and are capped at ``max_conv_dim`` [128 -> 256 -> 512 -> 512]; G's two
  bottleneck blocks end at ``max_conv_dim`` [512]. E/D's trunk uses the same 3 widths.
* E/D's style/adversarial branch keeps downsampling (widths still doubling, capped) until the side is 4
  [512@8, 512@4], then a valid conv of the remaining side (4, or B when B < 4) gives 1 x 1.
* BG channels ``bg = max_conv_dim - content_dim`` [448]; FG channels ``content_dim`` [64].
* The unified AdaIN decoder mirrors the encoder, as StarGAN's does [512, 512, up 512, up 256, up 128].
* The BG decoder is that mirror with a ``bg -> bg`` block in front, input ``bg`` and output ``bg``
  [448->448, 448->512, 512->512, up 512->512, up 512->256, up 256->448] (Table 9b).
* The FG decoder is ``content_dim`` times (1, 4, 4, 4, 2, 1), capped at ``max_conv_dim``
  [64->64, 64->256, 256->256, up 256->256, up 256->128, up 128->64] (Table 9c).
* M's content branch has ``log2(B)`` upsampling blocks from 1 x 1; counted from the last one their widths
  are ``max_conv_dim / 4``, ``max_conv_dim / 2`` and ``max_conv_dim`` for all earlier ones
  [512@2, 512@4, 256@8, 128@16], then a 1 x 1 conv to ``content_dim`` [64@16] (Table 10c).
"""

from __future__ import annotations

from dataclasses import dataclass

from dtgan.config.model import ModelConfig

BOTTLENECK_SIDE = 16  # G's bottleneck (and E/D's trunk output) at every image size >= 32, as in StarGAN v2
ADV_BRANCH_SIDE = 4  # E/D's style/adversarial branch downsamples to 4 x 4 before its valid conv
FG_DECODER_MULTIPLES = (1, 4, 4, 4, 2, 1)  # Table 9c in units of content_dim


@dataclass(frozen=True)
class Block:
    """One residual block: input and output widths and whether it resamples (up or down by 2)."""

    dim_in: int
    dim_out: int
    resample: bool = False


@dataclass(frozen=True)
class Widths:
    """Every width the networks need; see the module docstring for the rules."""

    bottleneck_side: int
    stem: int
    max_conv: int
    bg: int
    content: int
    encoder: tuple[Block, ...]  # G's encoder after the stem: 3 down blocks, 2 bottleneck blocks
    unified_decoder: tuple[Block, ...]  # StarGAN's AdaIN decoder (input max_conv, or max_conv + C for concat)
    bg_decoder: tuple[Block, ...]
    fg_decoder: tuple[Block, ...]
    trunk: tuple[Block, ...]  # E/D's shared trunk after the stem: 3 down blocks to B
    adv_branch: tuple[Block, ...]  # E/D's further down blocks to 4 x 4
    adv_kernel: int  # side of the valid conv that ends the branch at 1 x 1
    mapping_content: tuple[Block, ...]  # M's content upsampling blocks, from mapping_hidden_dim at 1 x 1

    @property
    def trunk_dim(self) -> int:
        return self.trunk[-1].dim_out

    @property
    def adv_dim(self) -> int:
        return self.adv_branch[-1].dim_out if self.adv_branch else self.trunk_dim


def _log2(n: int) -> int:
    return n.bit_length() - 1


def scale_levels(img_size: int) -> int:
    """Down (and up) levels of G and of E/D's trunk: log2(img_size / 16), at least 1 [3 at 128 px]."""
    return max(1, _log2(img_size) - _log2(BOTTLENECK_SIDE))


def _down_chain(start: int, cap: int, count: int) -> list[Block]:
    """``count`` downsampling blocks whose widths double from ``start``, capped at ``cap``."""
    blocks, dim = [], start
    for _ in range(count):
        nxt = min(dim * 2, cap)
        blocks.append(Block(dim, nxt, True))
        dim = nxt
    return blocks


def concat_injection(cfg: ModelConfig) -> bool:
    """docs/model.md#a7 alternative: c is concatenated to all of h (only with content and the unified decoder)."""
    toggles = cfg.toggles
    return cfg.content_injection == "concat" and toggles.style_content and not toggles.separate_decoders


def layer_widths(cfg: ModelConfig) -> Widths:
    """Derive all widths of G, M, E and D from ``cfg``."""
    levels = scale_levels(cfg.img_size)
    side = cfg.img_size // 2**levels
    stem, cap, c = cfg.resolved_stem_dim, cfg.max_conv_dim, cfg.content_dim
    bg = cap - c

    down = _down_chain(stem, cap, levels)  # e.g. 128->256, 256->512, 512->512
    w3 = down[-1].dim_out
    encoder = (*down, Block(w3, cap), Block(cap, cap))
    # StarGAN's decoder mirrors the encoder block by block, in reverse with in/out swapped.
    mirror = [Block(b.dim_out, b.dim_in, b.resample) for b in reversed(encoder)]
    if concat_injection(cfg):
        mirror[0] = Block(mirror[0].dim_in + c, mirror[0].dim_out)
    ups = mirror[-levels:]  # e.g. up 512->512, up 512->256, up 256->128
    bg_decoder = (
        Block(bg, bg),
        Block(bg, cap),
        Block(cap, w3),
        *ups[:-1],
        Block(ups[-1].dim_in, bg, True),
    )
    fg = [min(m * c, cap) for m in FG_DECODER_MULTIPLES]
    fg_decoder = tuple(Block(fg[i - 1] if i else c, fg[i], i >= len(fg) - levels) for i in range(len(fg)))

    trunk = tuple(_down_chain(stem, cap, levels))
    n_adv = max(_log2(side) - _log2(ADV_BRANCH_SIDE), 0)
    adv_branch = tuple(_down_chain(trunk[-1].dim_out, cap, n_adv))

    n_up = _log2(side)
    m_out = [cap // 2 ** max(0, 2 - j) for j in reversed(range(n_up))]  # e.g. 512, 512, 256, 128
    m_in = [cfg.mapping_hidden_dim, *m_out[:-1]]
    mapping_content = tuple(Block(i, o, True) for i, o in zip(m_in, m_out))

    return Widths(
        bottleneck_side=side,
        stem=stem,
        max_conv=cap,
        bg=bg,
        content=c,
        encoder=encoder,
        unified_decoder=tuple(mirror),
        bg_decoder=bg_decoder,
        fg_decoder=fg_decoder,
        trunk=trunk,
        adv_branch=adv_branch,
        adv_kernel=min(side, ADV_BRANCH_SIDE),
        mapping_content=mapping_content,
    )
