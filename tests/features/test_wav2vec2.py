"""wav2vec 2.0: loading from every kind of source, exact batching, chunking, layers.

Every model here is a tiny config saved to a temp dir; nothing reaches a hub.
"""

import os

import numpy as np
import pytest
import torch
from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

from tests.conftest import speech_like
from vocalab.errors import AudioError, ParamsError
from vocalab.features.wav2vec2 import Wav2Vec2Extractor, Wav2Vec2ExtractorConfig, first_conv_stats, num_frames
from vocalab.errors import WeightsError
from vocalab.features.wav2vec2_source import BASE_MODEL_ID, ModelSource, load_hf_config, resolve_source
from vocalab.testing.wav2vec2_tiny import save_tiny_wav2vec2
from vocalab.params import from_mapping

SECTION = "embeddings.wav2vec2"


def make(model_dir, **params):
    params = {"model": str(model_dir), "init": "pretrained", **params}
    return Wav2Vec2Extractor(from_mapping(Wav2Vec2ExtractorConfig, params, section=SECTION))


def signals(*lengths_s, seed=0):
    return [speech_like(seed + i, duration_s=d) * (1 + i) for i, d in enumerate(lengths_s)]


def reference(model_dir, samples, layer=None):
    """What the usual notebook code gets: processor + model, one file, no batching."""
    model = Wav2Vec2Model.from_pretrained(model_dir).eval()
    processor = Wav2Vec2FeatureExtractor.from_pretrained(model_dir)
    inputs = processor(samples, sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        out = model(inputs.input_values, output_hidden_states=layer is not None)
    hidden = out.last_hidden_state if layer is None else out.hidden_states[layer]
    return hidden[0].numpy()


# -- loading ----------------------------------------------------------------------------


def test_saved_tiny_model_loads_through_the_stage_loader(tiny_wav2vec2):
    extractor = make(tiny_wav2vec2)
    samples = signals(1.3)[0]
    frames = extractor.extract(samples, 16000)
    assert frames.shape == (num_frames(len(samples), extractor.hf_config), 32) == (64, 32)
    # the default is the middle layer: hidden state 1 of the 2-layer model
    np.testing.assert_allclose(frames, reference(tiny_wav2vec2, samples, layer=1), atol=2e-5)
    meta = extractor.meta()
    assert meta["pretrained"] is True and meta["model"] == str(tiny_wav2vec2)
    assert meta["model_kind"] == "directory" and meta["frames_per_second"] == 50.0
    assert meta["preprocessing"]["do_normalize"] is True
    assert meta["preprocessing"]["source"].endswith("preprocessor_config.json")


def test_the_positional_convolution_weight_is_computed_once_with_the_same_numbers(tiny_wav2vec2):
    extractor = make(tiny_wav2vec2)
    conv = extractor._model.encoder.pos_conv_embed.conv
    assert not hasattr(conv, "parametrizations") and not hasattr(conv, "weight_g")
    # the network as transformers builds it, weight normalisation recomputed on every pass
    model = Wav2Vec2Model.from_pretrained(tiny_wav2vec2).eval()
    assert hasattr(model.encoder.pos_conv_embed.conv, "parametrizations")
    with torch.inference_mode():
        assert torch.equal(conv.weight, model.encoder.pos_conv_embed.conv.weight)
        hidden = torch.randn(2, 40, model.config.hidden_size, generator=torch.Generator().manual_seed(0))
        assert torch.equal(extractor._model.encoder.pos_conv_embed(hidden), model.encoder.pos_conv_embed(hidden))


def test_other_sampling_rates_are_resampled_to_16k(tiny_wav2vec2):
    extractor = make(tiny_wav2vec2)
    frames = extractor.extract(speech_like(3, sampling_rate=44100, duration_s=1.0), 44100)
    assert frames.shape[0] == num_frames(16000, extractor.hf_config)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_a_weights_file_with_its_config_beside_it(tiny_wav2vec2, tmp_path, suffix):
    model = Wav2Vec2Model.from_pretrained(tiny_wav2vec2)
    # checkpoints of task models carry the base model under a "wav2vec2." prefix
    state = {f"wav2vec2.{k}": v.contiguous() for k, v in model.state_dict().items()}
    state["lm_head.weight"] = torch.zeros(4, 32)
    weights = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, weights)
    else:
        torch.save(state, weights)
    (tmp_path / "config.json").write_text((tiny_wav2vec2 / "config.json").read_text())
    samples = signals(1.0)[0]
    np.testing.assert_allclose(make(weights).extract(samples, 16000), make(tiny_wav2vec2).extract(samples, 16000),
                               atol=1e-6)
    assert make(weights).meta()["model_kind"] == "file"


def test_random_init_is_seeded_and_recorded(tiny_wav2vec2):
    samples = signals(1.0)[0]
    first = make(tiny_wav2vec2, init="random", seed=3)
    again = make(tiny_wav2vec2, init="random", seed=3)
    other = make(tiny_wav2vec2, init="random", seed=4)
    np.testing.assert_array_equal(first.extract(samples, 16000), again.extract(samples, 16000))
    assert not np.allclose(first.extract(samples, 16000), other.extract(samples, 16000))
    assert not np.allclose(first.extract(samples, 16000), make(tiny_wav2vec2).extract(samples, 16000))
    assert first.meta()["pretrained"] is False


def test_random_init_of_the_base_id_needs_no_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    config, origin = load_hf_config(resolve_source(BASE_MODEL_ID), init="random")
    assert (config.hidden_size, config.num_hidden_layers, config.feat_extract_norm) == (768, 12, "group")
    assert "defaults" in origin


def test_pretrained_without_reachable_weights_says_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    with pytest.raises(WeightsError, match=r"hub id 'facebook/wav2vec2-base'.*HF_HUB_OFFLINE.*hf download.*"
                                           r"local directory.*init: random"):
        make(BASE_MODEL_ID)
    with pytest.raises(WeightsError, match=r"hub id 'someone/emotion-w2v'.*HF_HUB_OFFLINE"):
        make("someone/emotion-w2v", init="random")


def test_broken_sources_are_clear_errors(tiny_wav2vec2, tmp_path):
    with pytest.raises(WeightsError, match=r"looks like a path but nothing exists there"):
        make(tmp_path / "missing" / "model")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeightsError, match=r"local directory .* has no config\.json.*save_pretrained"):
        make(empty)
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((tiny_wav2vec2 / "config.json").read_text())
    with pytest.raises(WeightsError, match=r"init: pretrained, but the weights of local directory .* could not "
                                           r"be loaded.*Provide weights"):
        make(no_weights)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_text((tiny_wav2vec2 / "config.json").read_text())
    (corrupt / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(WeightsError, match=r"could not be loaded"):
        make(corrupt)
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text((tiny_wav2vec2 / "config.json").read_text())
    state = Wav2Vec2Model.from_pretrained(tiny_wav2vec2).state_dict()
    torch.save({k: v for k, v in state.items() if "encoder.layers.1." not in k}, partial / "w.pt")
    with pytest.raises(WeightsError, match=r"lacks \d+ weight\(s\), e\.g\. \['encoder\.layers\.1\."):
        make(partial / "w.pt")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(WeightsError, match=r"is a file but not a weights file"):
        make(tmp_path / "notes.txt")


def test_a_model_that_is_not_wav2vec2_is_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "hubert", "hidden_size": 32}')
    with pytest.raises(WeightsError, match=r"is a 'hubert' model, not wav2vec2"):
        make(tmp_path)


def test_sources_resolve_by_what_exists(tiny_wav2vec2):
    assert resolve_source(str(tiny_wav2vec2)) == ModelSource("directory", str(tiny_wav2vec2))
    assert resolve_source("facebook/wav2vec2-large-xlsr-53") == ModelSource("hub", "facebook/wav2vec2-large-xlsr-53")


# -- params -----------------------------------------------------------------------------


@pytest.mark.parametrize("params, message", [
    ({"layers": "first"}, r"'embeddings\.wav2vec2\.layers' = 'first' has the wrong type"),
    ({"layers": []}, r"'embeddings\.wav2vec2\.layers' is an empty list"),
    ({"layers": [1, 1]}, r"distinct layer indices"),
    ({"device": "gpu"}, r"'embeddings\.wav2vec2\.device' = 'gpu' is not allowed"),
    ({"init": "pretrain"}, r"Did you mean 'pretrained'"),
    ({"chunk_s": 4.0, "chunk_overlap_s": 1.0}, r"chunk_overlap_s' = 1\.0 is too large"),
    ({"batch_s": 0}, r"'embeddings\.wav2vec2\.batch_s' = 0\.0 is out of range"),
])
def test_bad_params_name_the_key(params, message):
    with pytest.raises(ParamsError, match=message):
        from_mapping(Wav2Vec2ExtractorConfig, params, section=SECTION)


def test_layers_beyond_the_model_and_cuda_without_a_gpu(tiny_wav2vec2):
    with pytest.raises(ParamsError, match=r"names layer\(s\) \[5\].*has 2 transformer layers \(valid: 0\.\.2\)"):
        make(tiny_wav2vec2, layers=[5])
    if not torch.cuda.is_available():
        with pytest.raises(ParamsError, match=r"device' = 'cuda', but torch sees no CUDA device"):
            make(tiny_wav2vec2, device="cuda")
    with pytest.raises(ParamsError, match=r"float16 is not supported on CPU"):
        make(tiny_wav2vec2, device="cpu", dtype="float16")


# -- layers -----------------------------------------------------------------------------


def test_layer_choice(tiny_wav2vec2):
    samples = signals(1.0)[0]
    every = make(tiny_wav2vec2, layers="all")
    assert every.layers == [0, 1, 2] and every.dim == 96 and every.feature_names[32] == "l1_0"
    frames = every.extract(samples, 16000)
    for layer in range(3):
        np.testing.assert_allclose(frames[:, 32 * layer:32 * (layer + 1)],
                                   reference(tiny_wav2vec2, samples, layer=layer), atol=2e-5)
    first = make(tiny_wav2vec2, layers=[1])
    assert len(first._model.encoder.layers) == 1  # layer 2 is never run
    np.testing.assert_allclose(first.extract(samples, 16000), frames[:, 32:64], atol=2e-6)
    last = make(tiny_wav2vec2, layers="last").extract(samples, 16000)
    np.testing.assert_allclose(last, frames[:, 64:], atol=2e-6)


def test_middle_layer_is_the_default_and_follows_the_depth(tiny_wav2vec2, tmp_path):
    """The default is the middle layer (emotion peaks there in pretrained models), whatever the depth."""
    middle = make(tiny_wav2vec2)
    assert middle.layers == [1] and middle.feature_names[0] == "l1_0" and middle.meta()["layers"] == [1]
    assert len(middle._model.encoder.layers) == 1
    deeper = make(save_tiny_wav2vec2(tmp_path / "six", num_hidden_layers=6))
    assert deeper.layers == [3] and len(deeper._model.encoder.layers) == 3


# -- exact batching ---------------------------------------------------------------------


def test_first_conv_stats_match_group_norm_statistics():
    rng = np.random.default_rng(0)
    samples = rng.standard_normal(4001)
    conv = torch.nn.Conv1d(1, 8, kernel_size=10, stride=5, bias=True).double()
    with torch.no_grad():
        out = conv(torch.from_numpy(samples)[None, None])[0].numpy()
    mean, var = first_conv_stats(samples, conv.weight.detach().numpy()[:, 0], conv.bias.detach().numpy(), 5)
    np.testing.assert_allclose(mean, out.mean(axis=1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(var, out.var(axis=1), rtol=1e-10)


def test_padded_batches_equal_one_by_one_for_a_group_norm_model(tiny_wav2vec2):
    clips = signals(1.0, 2.7, 0.4, 1.0, 3.3)
    extractor = make(tiny_wav2vec2, layers="all", batch_s=100.0)
    one_by_one = [extractor.extract_batch([x])[0] for x in clips]
    batched = extractor.extract_batch(clips)
    for alone, together in zip(one_by_one, batched):
        assert alone.shape == together.shape
        np.testing.assert_allclose(together, alone, atol=2e-5)
    # the check has teeth: plain zero padding (the usual batching) changes the short clip's output
    model = Wav2Vec2Model.from_pretrained(tiny_wav2vec2).eval()
    short, long = extractor.model_input(clips[2]), extractor.model_input(clips[1])
    padded = np.zeros((2, len(long)), dtype=np.float32)
    padded[0, :len(short)], padded[1] = short, long
    with torch.no_grad():
        naive = model(torch.from_numpy(padded)).last_hidden_state[0, :len(one_by_one[2])].numpy()
    assert np.abs(naive - one_by_one[2][:, 64:]).max() > 1e-2


def test_padded_batches_equal_one_by_one_for_a_layer_norm_model(tmp_path):
    model_dir = save_tiny_wav2vec2(tmp_path / "lv", feat_extract_norm="layer", do_stable_layer_norm=True,
                                   conv_bias=True)
    extractor = make(model_dir, layers="last", batch_s=100.0)
    assert extractor._norm is None
    clips = signals(0.6, 2.1, 1.4)
    for alone, together in zip([extractor.extract_batch([x])[0] for x in clips], extractor.extract_batch(clips)):
        np.testing.assert_allclose(together, alone, atol=2e-5)
    np.testing.assert_allclose(extractor.extract(clips[0], 16000), reference(model_dir, clips[0]), atol=2e-5)


def test_batches_respect_the_padded_seconds_budget(tiny_wav2vec2, monkeypatch):
    extractor = make(tiny_wav2vec2, batch_s=3.0)
    sizes = []
    forward = extractor._forward
    monkeypatch.setattr(extractor, "_forward", lambda batch, *a: sizes.append(
        len(batch) * max(w.stop - w.start for w in batch)) or forward(batch, *a))
    out = extractor.extract_batch(signals(1.0, 1.0, 1.0, 0.5, 2.0))
    assert len(out) == 5 and max(sizes) <= 3 * 16000 and len(sizes) >= 2


def test_a_clip_shorter_than_one_frame_gives_one_frame(tiny_wav2vec2):
    extractor = make(tiny_wav2vec2)
    assert extractor.extract(np.full(160, 0.1, dtype=np.float32), 16000).shape == (1, 32)
    with pytest.raises(AudioError, match=r"empty signal"):
        extractor.extract(np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match=r"expected a mono signal"):
        extractor.extract(np.zeros((2, 1600), dtype=np.float32), 16000)


# -- chunking ---------------------------------------------------------------------------


def test_chunked_long_file_matches_the_whole_away_from_chunk_edges(tiny_wav2vec2):
    rng = np.random.default_rng(1)
    # 42 s whose loudness changes every 0.1 s: per-chunk normalisation would show
    envelope = np.repeat(rng.uniform(0.1, 2.0, 420), 1600)
    long = (np.concatenate([speech_like(s, duration_s=1.0) for s in range(42)]) * envelope).astype(np.float32)
    whole = make(tiny_wav2vec2, layers="all", chunk_s=600.0).extract(long, 16000)
    chunked_extractor = make(tiny_wav2vec2, layers="all", chunk_s=10.0, chunk_overlap_s=2.0)
    # 2099 frames; a 10 s window holds 499 = 100 context + 299 kept + 100 context
    assert len(chunked_extractor._windows(0, len(long))) == 8
    chunked = chunked_extractor.extract(long, 16000)
    assert chunked.shape == whole.shape == (num_frames(len(long), chunked_extractor.hf_config), 96)
    # convolutional encoder + positional convolution: exact, chunk edges included
    np.testing.assert_allclose(chunked[:, :32], whole[:, :32], atol=1e-5)
    # transformer layers see 10 s of context instead of 42 s
    scale = np.abs(whole[:, 32:]).max()
    assert np.abs(chunked[:, 32:] - whole[:, 32:]).max() < 1e-2 * scale


def test_reduced_precision_keeps_the_first_norm_in_float32(tiny_wav2vec2):
    # the CUDA path's autocast, exercised with bfloat16 on CPU
    full = make(tiny_wav2vec2, batch_s=100.0)
    half = make(tiny_wav2vec2, batch_s=100.0, dtype="bfloat16")
    assert half.meta()["compute_dtype"] == "bfloat16"
    seen = []
    half._norm.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    clips = signals(0.7, 1.6)
    for a, b in zip(full.extract_batch(clips), half.extract_batch(clips)):
        assert np.abs(a - b).max() < 0.1 * np.abs(a).max()  # bfloat16 keeps ~3 significant digits
    assert seen and all(dtype == torch.float32 for dtype in seen)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_a_weights_file_that_would_run_code_or_is_corrupt_is_refused_in_one_line(tiny_wav2vec2, tmp_path, suffix):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("this must not run",))

    weights = tmp_path / f"weights{suffix}"
    weights.write_bytes(pickle.dumps({"encoder.weight": Evil()}) if suffix == ".pt" else b"not safetensors")
    (tmp_path / "config.json").write_text((tiny_wav2vec2 / "config.json").read_text())
    with pytest.raises(WeightsError) as caught:
        make(weights)
    message = str(caught.value)
    assert str(weights) in message and "weights_only=False" not in message and "\n" not in message


def test_dtype_auto_takes_bfloat16_only_on_a_cpu_that_computes_it(tiny_wav2vec2, monkeypatch):
    from vocalab.features import torch_runtime

    monkeypatch.setattr(torch_runtime, "cpu_has_native_bfloat16", lambda: False)
    monkeypatch.setattr("vocalab.features.wav2vec2.cpu_has_native_bfloat16", lambda: False)
    assert make(tiny_wav2vec2, dtype="auto", device="cpu").meta()["compute_dtype"] == "float32"
    monkeypatch.setattr("vocalab.features.wav2vec2.cpu_has_native_bfloat16", lambda: True)
    assert make(tiny_wav2vec2, dtype="auto", device="cpu").meta()["compute_dtype"] == "bfloat16"
    # the detection asks torch about this CPU (AVX-512 BF16 or AMX), it does not guess from a name
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    if "avx512_bf16" not in flags and "amx_bf16" not in flags:
        assert torch_runtime.cpu_has_native_bfloat16() is False


def test_trimming_silent_ends_is_opt_in_and_keeps_the_speech(tiny_wav2vec2):
    from vocalab.audio import trim_silent_ends

    speech = speech_like(3, duration_s=1.0)
    padded = np.concatenate([np.zeros(8000, np.float32), speech, 1e-5 * np.ones(4800, np.float32)])
    trimmed = trim_silent_ends(padded, top_db=40.0)
    assert 15000 <= len(trimmed) <= 16000 + 160  # the second of speech, to a 10 ms frame
    assert len(trim_silent_ends(np.zeros(1600, np.float32), top_db=40.0)) == 1600  # nothing loud: kept
    plain, trim = make(tiny_wav2vec2), make(tiny_wav2vec2, trim_db=40.0)
    assert len(trim.extract(padded, 16000)) < len(plain.extract(padded, 16000))
    assert trim.meta()["params"]["trim_db"] == 40.0
