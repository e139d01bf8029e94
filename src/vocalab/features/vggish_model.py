"""The VGGish network in PyTorch, its weights and the AudioSet postprocessing.

Architecture (Hershey et al., ICASSP 2017): four VGG blocks of 3x3 convolutions
(64 | 128 | 256, 256 | 512, 512 channels, each block ending in 2x2 max pooling)
on a 96 x 64 log-mel example, then fully connected 12288 -> 4096 -> 4096 -> 128.
The layers carry the names of the original TensorFlow graph (conv1 ... fc2).

Weights come in the torchvggish format (``vggish-10086976.pth``, keys
``features.N.*`` / ``embeddings.N.*``) or torchaudio's (``features_network.N.*`` /
``embedding_network.N.*``); each key is mapped by an explicit table, and a file
with a missing, unknown or misshapen key is refused. Files are read with
``torch.load(weights_only=True)``, which builds tensors and plain containers but
runs no code from the file; numpy arrays of numbers are allowed as well (the
published PCA file holds them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from vocalab.errors import WeightsError, load_failure
from vocalab.features import winograd

if TYPE_CHECKING:
    import torch

EMBEDDING_SIZE = 128
QUANTIZE_MIN = -2.0
QUANTIZE_MAX = 2.0

#: (name, in_channels, out_channels) of each 3x3 convolution; "pool" = 2x2 max pooling
_CONVS = [("conv1", 1, 64), "pool", ("conv2", 64, 128), "pool", ("conv3_1", 128, 256), ("conv3_2", 256, 256),
          "pool", ("conv4_1", 256, 512), ("conv4_2", 512, 512), "pool"]
_FCS = [("fc1_1", 512 * 6 * 4, 4096), ("fc1_2", 4096, 4096), ("fc2", 4096, EMBEDDING_SIZE)]
#: the convolutions that ``conv: winograd`` runs by Winograd's algorithm on CPU in float32 (conv1, with one
#: input channel, has too little to multiply to gain from it); benchmarks/vggish_conv.py measures the choice
CONV_ALGORITHMS = ("direct", "winograd")
WINOGRAD_CONVS = ("conv2", "conv3_1", "conv3_2", "conv4_1", "conv4_2")

#: checkpoint layer prefix -> our layer, for each known checkpoint format
KEY_MAP: dict[str, dict[str, str]] = {
    "torchvggish": {
        "features.0": "conv1", "features.3": "conv2", "features.6": "conv3_1", "features.8": "conv3_2",
        "features.11": "conv4_1", "features.13": "conv4_2",
        "embeddings.0": "fc1_1", "embeddings.2": "fc1_2", "embeddings.4": "fc2",
    },
    "torchaudio": {
        "features_network.0": "conv1", "features_network.3": "conv2", "features_network.6": "conv3_1",
        "features_network.8": "conv3_2", "features_network.11": "conv4_1", "features_network.13": "conv4_2",
        "embedding_network.0": "fc1_1", "embedding_network.2": "fc1_2", "embedding_network.4": "fc2",
    },
}
#: keys of the PCA parameters, in the PCA file and inside a full torchvggish model state dict
PCA_KEYS = ("pca_eigen_vectors", "pca_means")
_EMBEDDED_PCA_KEYS = ("pproc.pca_matrix", "pproc.pca_means")


def build_vggish(*, post_relu: bool = False, conv: str = "direct") -> torch.nn.Module:
    """VGGish with uninitialised weights: load a checkpoint or call :func:`init_random`.

    ``conv`` is how the 3x3 convolutions run on CPU in float32: ``direct`` (torch's own
    convolution) or ``winograd`` (:mod:`.winograd` for :data:`WINOGRAD_CONVS`).
    """
    if conv not in CONV_ALGORITHMS:
        raise ValueError(f"conv = {conv!r}: choose one of {', '.join(CONV_ALGORITHMS)}")
    import torch
    from torch import nn

    class VGGish(nn.Module):
        """``forward(examples [n, 96, 64]) -> embeddings [n, 128]``."""

        def __init__(self) -> None:
            super().__init__()
            for spec in _CONVS:
                if spec != "pool":
                    name, c_in, c_out = spec
                    self.add_module(name, nn.Conv2d(c_in, c_out, kernel_size=3, padding=1))
            for name, n_in, n_out in _FCS:
                self.add_module(name, nn.Linear(n_in, n_out))
            self.post_relu = post_relu
            self.conv = conv
            self._transformed: dict[str, tuple[tuple[int, int], torch.Tensor]] = {}

        def _winograd(self, name: str, x: torch.Tensor) -> torch.Tensor:
            conv = getattr(self, name)
            key = (conv.weight.data_ptr(), conv.weight._version)  # new weights, new transform
            if self._transformed.get(name, (None,))[0] != key:
                self._transformed[name] = (key, winograd.filter_transform(conv.weight))
            # no more examples per chunk than the batch has: every pass of a run has the same batch size
            # (VGGishExtractor.embed pads the last), so every pass has the same shapes
            chunk = min(winograd.chunk_for(*x.shape[2:], conv.in_channels, conv.out_channels), len(x))
            y = winograd.conv3x3(x.permute(0, 2, 3, 1), self._transformed[name][1], conv.bias, chunk)
            return y.permute(0, 3, 1, 2)  # NCHW in channels-last memory, as the direct convolution returns

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # one input channel; channels-last (NHWC) convolutions run about 1.5x faster on CPU
            x = x[:, None].contiguous(memory_format=torch.channels_last)
            fast = (self.conv == "winograd" and x.device.type == "cpu" and x.dtype == torch.float32
                    and not torch.is_autocast_enabled("cpu"))
            for spec, following in zip(_CONVS, _CONVS[1:] + ["end"]):
                if spec == "pool":
                    # the ReLU of a convolution that pooling follows comes after the pooling: the same
                    # values (both keep the largest), on a quarter of them
                    x = nn.functional.max_pool2d(x, 2).relu_()
                else:
                    name = spec[0]
                    x = self._winograd(name, x) if fast and name in WINOGRAD_CONVS else getattr(self, name)(x)
                    x = x if following == "pool" else x.relu_()
            # flatten as TensorFlow does (height, width, channels), which fc1_1's weights expect
            x = x.permute(0, 2, 3, 1).reshape(len(x), -1)
            x = torch.relu(self.fc1_1(x))
            x = torch.relu(self.fc1_2(x))
            x = self.fc2(x)  # the released embedding is taken before the final ReLU
            return torch.relu(x) if self.post_relu else x

    with torch.device("meta"):  # no time spent on an initialisation that is overwritten
        model = VGGish()
    return model.to_empty(device="cpu").to(memory_format=torch.channels_last).eval()


def init_random(model: torch.nn.Module, seed: int) -> None:
    """He-normal weights (the variance-preserving choice for ReLU nets) and zero biases, seeded."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * np.sqrt(2.0 / fan_in))
                module.bias.zero_()


def read_checkpoint(path: Any, key: str) -> dict[str, Any]:
    """A dict from a ``torch.save`` file, read without running code from it."""
    import torch

    try:
        from numpy._core.multiarray import _reconstruct  # type: ignore[attr-defined]
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct

    safe = [_reconstruct, (_reconstruct, "numpy.core.multiarray._reconstruct"), np.ndarray, np.dtype,
            type(np.dtype(np.float32)), type(np.dtype(np.float64))]
    try:
        with torch.serialization.safe_globals(safe):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any failure to read it (unsafe, truncated, not a torch file) means the same
        raise WeightsError(
            f"'{key}': {path} is not a PyTorch weights file that loads safely ({load_failure(err)}). "
            f"Give a torchvggish-format .pth file."
        ) from None
    if hasattr(state, "state_dict") and not isinstance(state, dict):
        raise WeightsError(f"'{key}': {path} holds a whole model object; save its state_dict() instead.")
    if not isinstance(state, dict):
        raise WeightsError(f"'{key}': {path} holds a {type(state).__name__}, not a state dict.")
    return dict(state)


def _as_array(value: Any, key: str, name: str, shape: tuple[int, ...]) -> np.ndarray:
    array = value.detach().cpu().double().numpy() if hasattr(value, "detach") else np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise WeightsError(f"'{key}': '{name}' holds {array.dtype} values, expected numbers.")
    array = array.astype(np.float64).reshape(-1) if len(shape) == 1 else array.astype(np.float64)
    if array.shape != shape:
        raise WeightsError(f"'{key}': '{name}' has shape {array.shape}, expected {shape}.")
    return array


def load_weights(model: torch.nn.Module, state: dict[str, Any], *, key: str, source: str) -> str:
    """Copy a checkpoint's weights into ``model`` by the explicit key table; returns the format name.

    PCA entries of a full torchvggish model (``pproc.*``) are ignored here (see
    :func:`embedded_pca`); any other key that is not in the table is an error.
    """
    import torch

    weights = {k: v for k, v in state.items() if k not in _EMBEDDED_PCA_KEYS}
    layers = {name.rsplit(".", 1)[0] for name in weights}
    fmt = next((f for f, table in KEY_MAP.items() if layers & set(table)), None)
    if fmt is None:
        raise WeightsError(
            f"'{key}': {source} has none of the layer names of a VGGish checkpoint "
            f"(first keys: {sorted(weights)[:3]}). Give torchvggish's vggish-10086976.pth or a file in its format."
        )
    table = KEY_MAP[fmt]
    target = model.state_dict()
    mapped, unknown = {}, []
    for name, value in weights.items():
        layer, _, param = name.rpartition(".")
        if layer not in table or f"{table[layer]}.{param}" not in target:
            unknown.append(name)
            continue
        ours = f"{table[layer]}.{param}"
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(target[ours].shape):
            shape = tuple(value.shape) if hasattr(value, "shape") else type(value).__name__
            raise WeightsError(f"'{key}': {source} has '{name}' of shape {shape}, but VGGish's {ours} is "
                               f"{tuple(target[ours].shape)}. This is not a VGGish checkpoint.")
        mapped[ours] = value
    missing = sorted(set(target) - set(mapped))
    if unknown or missing:
        raise WeightsError(
            f"'{key}': {source} does not match VGGish ({fmt} format): "
            f"{f'missing {missing}' if missing else ''}{'; ' if missing and unknown else ''}"
            f"{f'unexpected {sorted(unknown)}' if unknown else ''}. Weights left unloaded would stay random, "
            f"so the file is refused."
        )
    model.load_state_dict({k: v.float() for k, v in mapped.items()})
    return fmt


def embedded_pca(state: dict[str, Any], *, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    """PCA parameters stored inside a full torchvggish model state dict, if any."""
    if not all(k in state for k in _EMBEDDED_PCA_KEYS):
        return None
    matrix, means = (state[k] for k in _EMBEDDED_PCA_KEYS)
    return (_as_array(matrix, key, _EMBEDDED_PCA_KEYS[0], (EMBEDDING_SIZE, EMBEDDING_SIZE)),
            _as_array(means, key, _EMBEDDED_PCA_KEYS[1], (EMBEDDING_SIZE,)))


def read_pca(state: dict[str, Any], *, key: str, source: str) -> tuple[np.ndarray, np.ndarray]:
    """``(eigen_vectors [128, 128], means [128])`` from a PCA parameters file."""
    missing = [k for k in PCA_KEYS if k not in state]
    if missing:
        raise WeightsError(f"'{key}': {source} lacks {missing}; give torchvggish's vggish_pca_params-970ea276.pth "
                           f"or a file with the keys {list(PCA_KEYS)}.")
    return (_as_array(state[PCA_KEYS[0]], key, PCA_KEYS[0], (EMBEDDING_SIZE, EMBEDDING_SIZE)),
            _as_array(state[PCA_KEYS[1]], key, PCA_KEYS[1], (EMBEDDING_SIZE,)))


def postprocess(embeddings: np.ndarray, eigen_vectors: np.ndarray, means: np.ndarray) -> np.ndarray:
    """PCA with whitening, clipping to [-2, 2] and 8-bit quantisation, as the AudioSet release.

    Returns
    -------
    np.ndarray [shape=(n, 128), dtype=float32]
        Integers 0..255 (the released embeddings' uint8 values).
    """
    projected = (np.asarray(embeddings, dtype=np.float64) - means) @ eigen_vectors.T
    clipped = np.clip(projected, QUANTIZE_MIN, QUANTIZE_MAX)
    return np.round((clipped - QUANTIZE_MIN) * (255.0 / (QUANTIZE_MAX - QUANTIZE_MIN))).astype(np.float32)
