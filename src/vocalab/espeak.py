"""A minimal ctypes binding to libespeak-ng, as shipped by the ``espeakng-loader`` wheel.

Only what the synthetic corpus needs: pick a voice, set prosody, synthesise a
sentence into memory. No system package is required.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass

import numpy as np

from vocalab.errors import VocalabError

# espeak_AUDIO_OUTPUT
_AUDIO_OUTPUT_SYNCHRONOUS = 2
# espeak_PARAMETER
_RATE, _VOLUME, _PITCH, _RANGE, _WORDGAP = 1, 2, 3, 4, 7
# espeak_POSITION_TYPE / synth flags
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_SSML = 0x10

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


@dataclass(frozen=True)
class Prosody:
    """espeak-ng prosody settings, in espeak's own units.

    rate_wpm : int in [80, 450]        speaking rate, words per minute
    pitch : int in [0, 100]            base pitch (50 is the voice's default)
    pitch_range : int in [0, 100]      pitch excursion (0 is monotone)
    volume : int in [0, 200]           amplitude (100 is normal)
    word_gap_10ms : int >= 0           extra pause between words, in 10 ms units
    """

    rate_wpm: int = 175
    pitch: int = 50
    pitch_range: int = 50
    volume: int = 100
    word_gap_10ms: int = 0

    def clipped(self) -> "Prosody":
        return Prosody(
            rate_wpm=int(np.clip(self.rate_wpm, 80, 450)),
            pitch=int(np.clip(self.pitch, 0, 100)),
            pitch_range=int(np.clip(self.pitch_range, 0, 100)),
            volume=int(np.clip(self.volume, 0, 200)),
            word_gap_10ms=int(max(self.word_gap_10ms, 0)),
        )


class Espeak:
    """The process-wide espeak-ng engine (the C library keeps global state)."""

    _lock = threading.Lock()
    _instance: "Espeak | None" = None

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as err:  # pragma: no cover - a declared dependency
            raise VocalabError(
                "espeak-ng is not available: install the 'espeakng-loader' wheel "
                "(pip install espeakng-loader)."
            ) from err
        library_path = espeakng_loader.get_library_path()
        try:
            lib = ctypes.CDLL(library_path)
        except OSError as err:
            raise VocalabError(
                f"cannot load libespeak-ng from '{library_path}' ({err}). "
                f"Reinstall it with: pip install --force-reinstall espeakng-loader"
            ) from err
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        sample_rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0
        )
        if sample_rate <= 0:
            raise VocalabError(
                "espeak-ng failed to initialise (its voice data was not found). "
                "Reinstall it with: pip install --force-reinstall espeakng-loader"
            )
        self.sample_rate = int(sample_rate)
        self._lib = lib
        self._chunks: list[np.ndarray] = []
        # keep a reference: the C side holds only a raw pointer to it
        self._callback = _CALLBACK(self._collect)
        lib.espeak_SetSynthCallback(self._callback)

    @classmethod
    def get(cls) -> "Espeak":
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _collect(self, wav, num_samples, _events) -> int:  # noqa: ANN001 - ctypes callback
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        return 0

    def synthesize(
        self, text: str, *, voice: str, prosody: Prosody, ssml: bool = False, noise_seed: int = 0
    ) -> np.ndarray:
        """Speak ``text`` with ``voice`` (e.g. ``"en-us+f3"``).

        ``noise_seed`` seeds espeak's own noise source (breath, roughness), which it
        otherwise seeds from the clock.

        Returns
        -------
        np.ndarray [shape=(n,), dtype=int16] at :attr:`sample_rate`.
        """
        prosody = prosody.clipped()
        with self._lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise VocalabError(
                    f"espeak-ng has no voice '{voice}'. Use a language such as 'en-us' "
                    f"optionally followed by '+variant' (e.g. 'en-us+m3')."
                )
            for parameter, value in (
                (_RATE, prosody.rate_wpm),
                (_VOLUME, prosody.volume),
                (_PITCH, prosody.pitch),
                (_RANGE, prosody.pitch_range),
                (_WORDGAP, prosody.word_gap_10ms),
            ):
                self._lib.espeak_SetParameter(parameter, value, 0)
            self._lib.espeak_ng_SetRandSeed(noise_seed)
            self._chunks = []
            data = text.encode("utf-8")
            flags = _CHARS_UTF8 | (_SSML if ssml else 0)
            status = self._lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, flags, None, None)
            self._lib.espeak_Synchronize()
            if status != 0 or not self._chunks:
                raise VocalabError(f"espeak-ng failed to synthesise {text!r} with voice '{voice}'.")
            return np.concatenate(self._chunks)
