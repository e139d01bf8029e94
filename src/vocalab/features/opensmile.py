"""openSMILE feature sets: eGeMAPS and ComParE 2016, with audEERING's ``opensmile`` package.

Two feature sets from one pass over the audio:

- ``egemaps``: the extended Geneva Minimalistic Acoustic Parameter Set (Eyben et
  al., IEEE TAC 2016), 88 functionals and 25 low-level descriptors (LLDs) per 10 ms;
- ``compare``: the INTERSPEECH ComParE 2016 set, 6,373 functionals and 65 LLDs.

The functionals are each set's pooled features (``pooled: functionals`` in the
store): openSMILE's own statistics over voiced and unvoiced segments, not a mean
and std of the LLDs. The LLDs are the frames, for the sequence heads.

One openSMILE run per set and file yields both levels at once, through the
package's two-sink configuration (the ``Smile`` class runs the whole analysis
again for each level): the numbers are those of ``Smile.process_signal`` for
either level, as the tests check, at half the cost.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from vocalab.audio import mono_signal, resample
from vocalab.features.store import Output
from vocalab.features.base import Extractor, read_lengths
from vocalab.features.registry import register_extractor
from vocalab.params import bounded, to_dict

SECTION = "opensmile"
FRAMES_PER_SECOND = 100.0  # every LLD of both sets is computed every 10 ms

# the sets vocalab writes, and the openSMILE configurations each may use
SETS = ("egemaps", "compare")


@dataclass(frozen=True)
class OpenSmileConfig:
    """``opensmile``: the openSMILE feature sets.

    sample_rate : int > 0     rate audio is resampled to first (Hz), so corpora of mixed rates
                              give comparable features
    window_s : float > 0      a recording longer than this is analysed in equal windows no longer
                              than it, so memory does not grow with its length: its LLDs are the
                              windows' LLDs in order, its functionals the windows' functionals
                              averaged, weighted by their length (openSMILE holds a whole run's
                              LLDs to compute functionals: about 35 MB per minute for both sets)
    egemaps : str             the openSMILE configuration of the egemaps set
    compare : str             the openSMILE configuration of the compare set
    """

    sample_rate: int = bounded(16000, ge=8000, le=48000)
    window_s: float = bounded(300.0, ge=10.0)
    egemaps: Literal["eGeMAPSv02", "eGeMAPSv01b", "GeMAPSv01b"] = "eGeMAPSv02"
    compare: Literal["ComParE_2016"] = "ComParE_2016"


class _SmileSet:
    """One openSMILE configuration: its file, its feature names at both levels, and a run of it."""

    def __init__(self, config_name: str) -> None:
        import opensmile

        self.config_name = config_name
        levels = {}
        for level in (opensmile.FeatureLevel.LowLevelDescriptors, opensmile.FeatureLevel.Functionals):
            smile = opensmile.Smile(feature_set=opensmile.FeatureSet[config_name], feature_level=level)
            levels[level] = list(smile.feature_names)
        self.lld_names = levels[opensmile.FeatureLevel.LowLevelDescriptors]
        self.functional_names = levels[opensmile.FeatureLevel.Functionals]
        self.config_path = smile.config_path
        self.config_root = smile.default_config_root

    def run(self, samples: np.ndarray, sampling_rate: int) -> tuple[np.ndarray, np.ndarray]:
        """``(llds [shape=(t, n_lld)], functionals [shape=(n_func,)])`` of one mono signal.

        ``t`` is 0, and the functionals empty, when the signal is too short for
        openSMILE to analyse.
        """
        from opensmile.core.config import config as smile_config
        from opensmile.core.lib import OpenSMILE

        root = self.config_root
        options = {
            "source": os.path.join(root, smile_config.EXTERNAL_INPUT_CONFIG),
            "sink": os.path.join(root, smile_config.EXTERNAL_OUTPUT_MULTI_CONFIG),
            "sinkLevelLLD": "lld", "sinkLevelFunc": "func",
            "sampleRate": sampling_rate, "nBits": 16,
            "bufferModeRbConf": os.path.join(root, "shared/BufferModeRb.conf.inc"),
            "frameModeFunctionalsConf": os.path.join(root, "shared/FrameModeFunctionals.conf.inc"),
        }
        llds: list[np.ndarray] = []
        functionals: list[np.ndarray] = []
        # 16-bit PCM truncated as the package converts it (but clipped, not wrapped, at full scale)
        pcm = np.clip(samples * np.float32(32768.0), -32768, 32767).astype("<i2")
        smile = OpenSMILE()
        smile.initialize(config_file=self.config_path, options=options, loglevel=0)
        try:
            smile.external_sink_set_callback_ex("extsinklld", lambda data, meta: llds.append(data.copy()))
            smile.external_sink_set_callback_ex("extsinkfunc", lambda data, meta: functionals.append(data.copy()))
            smile.external_audio_source_write_data("extsource", pcm.tobytes())
            smile.external_audio_source_set_eoi("extsource")
            smile.run()
        finally:
            smile.free()
        lld = np.vstack(llds).astype(np.float32) if llds else np.zeros((0, len(self.lld_names)), np.float32)
        if not functionals:
            return np.zeros((0, len(self.lld_names)), np.float32), np.zeros(0, np.float32)
        return lld, np.asarray(functionals[-1], dtype=np.float64).reshape(-1)


@register_extractor(section=SECTION, config=OpenSmileConfig, outputs=SETS)
class OpenSmileExtractor(Extractor):
    """``extract(samples, sampling_rate) -> {set: (llds, functionals)}`` for ``egemaps`` and ``compare``.

    Picklable: workers receive the configuration names and rebuild nothing but the
    per-file openSMILE instance.
    """

    name = "opensmile"
    frames_dtype = "float32"
    # silence before and after speech only dilutes the functionals: trimmed, ComParE and eGeMAPS alone gained
    # 0.9 and 2.9 points of UAR on EmoDB, whose 2 s clips are 98 % speech (README: Accuracy on real speech)
    reads_speech_region: ClassVar[bool] = True

    def __init__(self, config: OpenSmileConfig) -> None:
        import opensmile

        self.config = config
        self.sampling_rate = config.sample_rate
        self.version = opensmile.__version__
        self.sets = {"egemaps": _SmileSet(config.egemaps), "compare": _SmileSet(config.compare)}

    def describe(self, manifest: Any) -> str:
        return ", ".join(f"{name}: {s.config_name} ({len(s.functional_names)} functionals, "
                         f"{len(s.lld_names)} LLDs)" for name, s in self.sets.items()) + f", opensmile {self.version}"

    def _meta(self, name: str) -> dict[str, Any]:
        smile_set = self.sets[name]
        return {
            "feature_set": name,
            # this set's own params only, so changing the other set's leaves this store byte-identical
            "params": {k: v for k, v in to_dict(self.config).items() if k not in set(SETS) - {name}},
            "feature_names": smile_set.lld_names,
            "pooled": "functionals",
            "pooled_names": smile_set.functional_names,
            "frames_per_second": FRAMES_PER_SECOND,
            "sampling_rate": self.sampling_rate,
            "pretrained": False,
            "model": None,
            "definition": f"openSMILE {smile_set.config_name}: functionals (pooled) and LLDs (frames), "
                          f"opensmile {self.version}",
        }

    def outputs(self) -> list[Output]:
        return [Output(name, len(self.sets[name].lld_names), self.frames_dtype, self._meta(name)) for name in SETS]

    def extract(self, samples: np.ndarray, sampling_rate: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Both sets for one signal (mixed to mono and resampled to ``sample_rate`` first).

        Returns, per set, ``(llds [shape=(t, n_lld), float32], functionals [shape=(n_func,)])``;
        ``t == 0`` for a signal too short to analyse (the utterance is then left out of
        the store and counted, never given a row of zeros).
        """
        y = resample(mono_signal(samples), orig_sr=sampling_rate, target_sr=self.sampling_rate)
        bounds = window_bounds(len(y), int(self.config.window_s * self.sampling_rate))
        if len(bounds) == 2:
            return {name: smile_set.run(y, self.sampling_rate) for name, smile_set in self.sets.items()}
        out = {}
        for name, smile_set in self.sets.items():
            runs = [smile_set.run(y[begin:end], self.sampling_rate) for begin, end in zip(bounds[:-1], bounds[1:])]
            weights = np.array([end - begin for begin, end, (_, f) in zip(bounds[:-1], bounds[1:], runs) if f.size])
            functionals = [f for _, f in runs if f.size]
            pooled = (np.average(np.stack(functionals), axis=0, weights=weights) if functionals
                      else np.zeros(0, np.float64))
            out[name] = (np.concatenate([lld for lld, _ in runs]), pooled)
        return out

    def store_meta(self, manifest: Any) -> dict[str, dict[str, Any]]:
        """The utterances analysed in windows (longer than ``window_s``)."""
        long = [u for u, d in zip(manifest["utt_id"].astype(str), read_lengths(manifest)) if d > self.config.window_s]
        entry = {"windowed_utterances": {"window_s": self.config.window_s, "policy": "LLDs of equal windows in "
                                         "order; functionals averaged, weighted by window length", "utt_ids": long}}
        return {name: entry for name in SETS}


def window_bounds(n_samples: int, window: int) -> list[int]:
    """Sample bounds of the fewest equal windows no longer than ``window`` that cover ``n_samples``."""
    count = max(1, -(-n_samples // window))
    return [n_samples * i // count for i in range(count + 1)]
