"""3x3 convolutions with fewer multiplications: Winograd's minimal filtering F(2x2, 3x3).

VGGish's wide 3x3 layers already run at the CPU's peak multiply-add rate as direct
convolutions (about 210 GFLOP/s on 2 AVX2 cores), so the only way to run them faster
is to do fewer multiplications. Winograd's algorithm (Lavin and Gray, "Fast Algorithms
for Convolutional Neural Networks", CVPR 2016) computes each 2x2 block of outputs from
the 4x4 block of inputs around it with 16 products per pair of channels instead of 36:
the input blocks are transformed with additions only, the filters once, the 16
transformed positions are multiplied channel against channel as 16 matrix products,
and the products are transformed back with additions.

In float32 the result differs from a direct convolution by about 2e-6 of the output's
largest magnitude (the direct one is no closer to the exact result). Examples are
transformed in chunks of :data:`CHUNK` that stay in the CPU's cache; the last chunk is
padded, so that every matrix product has the same shape and an example's output does
not depend on the examples that share its batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: examples transformed and multiplied together (measured: 4 to 8 keep the transforms in cache)
CHUNK = 8

# F(2x2, 3x3): filter transform G (4x3); the input transform B^T and the output transform A^T
# are sums and differences, written out in conv3x3
_G = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))


def filter_transform(weight: torch.Tensor) -> torch.Tensor:
    """``G g G^T`` of each filter, in float64 then rounded: ``(out, in, 3, 3) -> (16, in, out)``."""
    import torch

    if weight.shape[2:] != (3, 3):
        raise ValueError(f"Winograd F(2x2, 3x3) needs 3x3 filters, got {tuple(weight.shape[2:])}")
    g = torch.tensor(_G, dtype=torch.float64)
    u = torch.einsum("ak,oikl,bl->abio", g, weight.detach().to("cpu", torch.float64), g)
    return u.reshape(16, weight.shape[1], weight.shape[0]).to(torch.float32).contiguous()


def _rows(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor, out: torch.Tensor) -> None:
    """B^T applied along one axis: the rows (a, b, c, d) of each 4-block into out[0..3]."""
    import torch

    torch.sub(a, c, out=out[0])
    torch.add(b, c, out=out[1])
    torch.sub(c, b, out=out[2])
    torch.sub(b, d, out=out[3])


def conv3x3(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A stride-1, padding-1 3x3 convolution of ``x`` (n, h, w, in), channels last, float32.

    ``u`` is :func:`filter_transform` of the weights. Returns (n, h, w, out), contiguous.
    """
    import torch
    import torch.nn.functional as F

    n, h, w, c = x.shape
    if u.shape[:2] != (16, c):
        raise ValueError(f"transformed filters {tuple(u.shape)} do not take {c} input channels")
    c_out = u.shape[2]
    th, tw = (h + 1) // 2, (w + 1) // 2  # 2x2 output blocks; odd sizes get one padded row/column
    n_pad = -n % CHUNK
    # one zero row/column of padding on each side, one more where the size is odd, zero examples to a whole chunk
    xp = F.pad(x, (0, 0, 1, 1 + w % 2, 1, 1 + h % 2, 0, n_pad))
    out = torch.empty(n + n_pad, th, 2, tw, 2, c_out, dtype=x.dtype)
    rows = torch.empty(4, CHUNK, th, 2 * tw + 2, c, dtype=x.dtype)
    v = torch.empty(4, 4, CHUNK, th, tw, c, dtype=x.dtype)
    m = torch.empty(16, CHUNK * th * tw, c_out, dtype=x.dtype)
    s = torch.empty(2, 4, CHUNK, th, tw, c_out, dtype=x.dtype)
    for first in range(0, n + n_pad, CHUNK):
        block = xp[first:first + CHUNK]
        _rows(*(block[:, k:k + 2 * th:2] for k in range(4)), out=rows)
        for a in range(4):
            _rows(*(rows[a][:, :, k:k + 2 * tw:2] for k in range(4)), out=v[a])
        torch.bmm(v.view(16, -1, c), u, out=m)
        mv = m.view(4, 4, CHUNK, th, tw, c_out)
        # A^T = [[1, 1, 1, 0], [0, 1, -1, -1]], along rows, then along columns
        torch.add(mv[0], mv[1], out=s[0]).add_(mv[2])
        torch.sub(mv[1], mv[2], out=s[1]).sub_(mv[3])
        o = out[first:first + CHUNK]
        for i in range(2):
            o[:, :, i, :, 0].copy_(s[i, 0]).add_(s[i, 1]).add_(s[i, 2])
            o[:, :, i, :, 1].copy_(s[i, 1]).sub_(s[i, 2]).sub_(s[i, 3])
    y = out.view(n + n_pad, 2 * th, 2 * tw, c_out)[:n, :h, :w].contiguous()  # a copy only where cropped
    return y if bias is None else y.add_(bias)
