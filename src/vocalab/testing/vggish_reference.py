"""torchvggish's own layout of VGGish: the reference vocalab's network is checked and timed against.

torchvggish builds VGGish as two ``nn.Sequential``: ``features`` (NCHW 3x3 convolutions,
each followed by a ReLU, and 2x2 max pooling) and ``embeddings`` (three dense layers, a
ReLU after each), flattening between them in TensorFlow's (height, width, channels)
order. Its state dict has the layer names of ``KEY_MAP["torchvggish"]``
(:mod:`vocalab.features.vggish_model`). The tests save checkpoints in this format and
compare vocalab's embeddings with it; ``benchmarks/extraction.py`` runs it as the
notebook's per-file loop. The extraction stages do not use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: torchvggish's ``make_layers`` configuration: output channels of each convolution, "M" = max pooling
_FEATURES = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M")


def torchvggish_layout() -> torch.nn.Module:
    """VGGish as torchvggish lays it out, with uninitialised weights.

    ``forward(x)`` takes examples ``[n, 1, 96, 64]`` and returns the embeddings after
    torchvggish's final ReLU; ``embed(x, final_relu=False)`` gives the released (pre-ReLU)
    embedding.
    """
    import torch
    from torch import nn

    class VGG(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            channels = 1
            for width in _FEATURES:
                if width == "M":
                    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                else:
                    layers += [nn.Conv2d(channels, int(width), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                    channels = int(width)
            self.features = nn.Sequential(*layers)
            self.embeddings = nn.Sequential(nn.Linear(512 * 4 * 6, 4096), nn.ReLU(inplace=True),
                                            nn.Linear(4096, 4096), nn.ReLU(inplace=True),
                                            nn.Linear(4096, 128), nn.ReLU(inplace=True))

        def embed(self, x: torch.Tensor, *, final_relu: bool) -> torch.Tensor:
            x = self.features(x)
            x = torch.transpose(torch.transpose(x, 1, 3), 1, 2).contiguous()  # (height, width, channels)
            head = self.embeddings if final_relu else self.embeddings[:-1]
            return head(x.view(x.size(0), -1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.embed(x, final_relu=True)

    return VGG().eval()
