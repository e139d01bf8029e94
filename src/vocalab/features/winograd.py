"""3x3 convolutions with fewer multiplications: Winograd's minimal filtering F(4x4, 3x3).

VGGish's wide 3x3 layers run close to the CPU's peak multiply-add rate as direct
convolutions, so the only way to run them faster is to do fewer multiplications. This is
an opt-in kernel (``embeddings.vggish.conv: winograd``): whether it pays depends on the
CPU and on what else runs on it, as ``benchmarks/vggish_conv.py`` measures.

Winograd's algorithm (Lavin and Gray, "Fast Algorithms for Convolutional Neural
Networks", CVPR 2016) computes each 4x4 block of outputs from the 6x6 block of inputs
around it with 36 products per pair of channels instead of 144: the input blocks are
transformed with additions and small integer multiples, the filters once, the 36
transformed positions are multiplied channel against channel as 36 matrix products, and
the products are transformed back the same way.

In float32 the result stays within 1e-5 of the output's largest magnitude of the exact
convolution (tested on VGGish's layer sizes against a float64 convolution). Examples are
transformed in chunks sized so that each matrix product has enough rows to run at full
speed and the transformed blocks stay in the CPU's cache (:func:`chunk_for`). The last
chunk is padded, so every matrix product of a call has the same shape and an example's
output does not depend on the examples that share its batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    import torch

#: output block side: each block of 4x4 outputs is computed from a 6x6 block of inputs
TILE = 4
#: most rows of each matrix product (blocks of a chunk of examples): fewer leave the products short
ROWS = 768
#: most floats per block position in a chunk's transformed inputs and products, rows x (in + out):
#: larger chunks spill from the CPU's cache (how these were tuned: benchmarks/vggish_conv.py)
FLOATS = 2 ** 19

# F(4x4, 3x3) with interpolation points 0, 1, -1, 2, -2 and infinity: the filter transform G (6x3);
# the input transform B^T and the output transform A^T are written out in _input and _output
_G = ((1 / 4, 0.0, 0.0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
      (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0.0, 0.0, 1.0))


def filter_transform(weight: torch.Tensor) -> torch.Tensor:
    """``G g G^T`` of each filter, in float64 then rounded: ``(out, in, 3, 3) -> (36, in, out)``."""
    import torch

    if weight.shape[2:] != (3, 3):
        raise ValueError(f"Winograd F(4x4, 3x3) needs 3x3 filters, got {tuple(weight.shape[2:])}")
    g = torch.tensor(_G, dtype=torch.float64)
    u = torch.einsum("ak,oikl,bl->abio", g, weight.detach().to("cpu", torch.float64), g)
    return u.reshape(36, weight.shape[1], weight.shape[0]).to(torch.float32).contiguous()


def chunk_for(h: int, w: int, c_in: int, c_out: int) -> int:
    """Examples per chunk for an h x w x c_in input and c_out outputs: the largest power of two
    within :data:`ROWS` and :data:`FLOATS` (powers of two divide the usual batch sizes)."""
    blocks = -(-h // TILE) * -(-w // TILE)
    most = max(1, min(ROWS // blocks, FLOATS // (blocks * (c_in + c_out))))
    return 1 << (most.bit_length() - 1)


def _input(d: Sequence[torch.Tensor], out: torch.Tensor, tmp: torch.Tensor) -> None:
    """B^T along one axis: the six rows ``d`` of each 6-block into out[0..5].

    B^T = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
           [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
    """
    import torch

    torch.sub(d[4], d[2], alpha=4, out=tmp[0])
    torch.sub(d[3], d[1], alpha=4, out=tmp[1])
    torch.add(tmp[0], tmp[1], out=out[1])
    torch.sub(tmp[0], tmp[1], out=out[2])
    torch.sub(d[4], d[2], out=tmp[0])
    torch.sub(d[3], d[1], out=tmp[1])
    torch.add(tmp[0], tmp[1], alpha=2, out=out[3])
    torch.sub(tmp[0], tmp[1], alpha=2, out=out[4])
    torch.sub(d[4], d[2], alpha=5, out=out[0]).add_(d[0], alpha=4)
    torch.sub(d[5], d[3], alpha=5, out=out[5]).add_(d[1], alpha=4)


def _output(m: Sequence[torch.Tensor], out: Sequence[torch.Tensor], tmp: torch.Tensor) -> None:
    """A^T along one axis: the six products ``m`` of each block into its four outputs.

    A^T = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]
    """
    import torch

    torch.add(m[1], m[2], out=tmp[0])
    torch.sub(m[1], m[2], out=tmp[1])
    torch.add(m[3], m[4], out=tmp[2])
    torch.sub(m[3], m[4], out=tmp[3])
    torch.add(m[0], tmp[0], out=out[0]).add_(tmp[2])
    torch.add(tmp[1], tmp[3], alpha=2, out=out[1])
    torch.add(tmp[0], tmp[2], alpha=4, out=out[2])
    torch.add(tmp[1], tmp[3], alpha=8, out=out[3]).add_(m[5])


def conv3x3(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None, chunk: int | None = None) -> torch.Tensor:
    """A stride-1, padding-1 3x3 convolution of ``x`` (n, h, w, in), channels last, float32.

    ``u`` is :func:`filter_transform` of the weights; ``chunk`` the examples transformed together
    (default :func:`chunk_for`; the examples are padded to a whole number of chunks). Returns
    (n, h, w, out), contiguous.
    """
    import torch
    import torch.nn.functional as F

    n, h, w, c = x.shape
    if u.shape[:2] != (36, c):
        raise ValueError(f"transformed filters {tuple(u.shape)} do not take {c} input channels")
    c_out = u.shape[2]
    th, tw = -(-h // TILE), -(-w // TILE)  # output blocks; a partial one is computed whole, then cropped
    chunk = chunk or chunk_for(h, w, c, c_out)
    n_pad = -n % chunk
    # one zero row/column of padding before, enough after for whole blocks, zero examples to a whole chunk
    xp = F.pad(x, (0, 0, 1, TILE * tw + 1 - w, 1, TILE * th + 1 - h, 0, n_pad))
    out = torch.empty(n + n_pad, th, TILE, tw, TILE, c_out, dtype=x.dtype)
    rows = torch.empty(6, chunk, th, TILE * tw + 2, c, dtype=x.dtype)
    v = torch.empty(6, 6, chunk, th, tw, c, dtype=x.dtype)
    m = torch.empty(36, chunk * th * tw, c_out, dtype=x.dtype)
    s = torch.empty(TILE, 6, chunk, th, tw, c_out, dtype=x.dtype)
    tmp_rows = torch.empty(2, *rows.shape[1:], dtype=x.dtype)
    tmp_v = torch.empty(2, *v.shape[2:], dtype=x.dtype)
    tmp_s = torch.empty(4, *s.shape[1:], dtype=x.dtype)
    tmp_out = torch.empty(4, *s.shape[2:], dtype=x.dtype)
    for first in range(0, n + n_pad, chunk):
        block = xp[first:first + chunk]
        _input([block[:, k:k + TILE * th:TILE] for k in range(6)], rows, tmp_rows)
        for a in range(6):
            _input([rows[a][:, :, k:k + TILE * tw:TILE] for k in range(6)], v[a], tmp_v)
        torch.bmm(v.view(36, -1, c), u, out=m)
        mv = m.view(6, 6, chunk, th, tw, c_out)
        _output(mv, s, tmp_s)
        o = out[first:first + chunk]
        for i in range(TILE):
            _output(s[i], [o[:, :, i, :, j] for j in range(TILE)], tmp_out)
    y = out.view(n + n_pad, TILE * th, TILE * tw, c_out)[:n, :h, :w].contiguous()  # a copy only where cropped
    return y if bias is None else y.add_(bias)
