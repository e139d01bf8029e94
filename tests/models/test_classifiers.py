import platform
import sys

import numpy as np
import pytest

from tests.conftest import json_from_fresh_process
from vocalab.models.classifiers import build_classifier, decision_scores
from vocalab.models.config import TrainConfig
from vocalab.params import from_mapping


@pytest.mark.parametrize("model", ["svm", "logreg", "random_forest", "hist_gb", "mlp"])
def test_every_classifier_learns_separable_data_and_is_seeded(model):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (40, 5)), rng.normal(4, 1, (10, 5))]) * 100  # unscaled on purpose
    y = np.array(["a"] * 40 + ["b"] * 10)
    config = from_mapping(TrainConfig, {"model": model, "seed": 3}, section="train")
    first = build_classifier(config).fit(X, y)
    second = build_classifier(config).fit(X, y)
    assert (first.predict(X) == y).mean() > 0.95
    np.testing.assert_array_equal(first.predict(X + 1), second.predict(X + 1))
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    assert first.predict_proba(X).shape == (50, 2)
    classifier = first.named_steps["classify"]
    if model != "mlp":  # MLPClassifier has no class weights
        inner = classifier.estimator if model == "svm" else classifier  # svm: inside its calibration
        assert inner.class_weight == "balanced"


def imbalanced(rng, scale=1):
    """Three overlapping classes, 15:2:1: calibrated probabilities favour the frequent one."""
    counts, centres = {"a": 300, "b": 40, "c": 20}, {"a": [0, 0], "b": [1.2, 0], "c": [0, 1.2]}
    X = np.concatenate([rng.normal(centres[c], 1.0, (n * scale, 2)) for c, n in counts.items()])
    return X, np.repeat(list(counts), [n * scale for n in counts.values()])


@pytest.mark.parametrize("model", ["svm", "logreg", "random_forest", "hist_gb", "mlp"])
def test_labels_are_the_classifiers_own_decisions(model):
    rng = np.random.default_rng(0)
    X, y = imbalanced(rng)
    config = from_mapping(TrainConfig, {"model": model}, section="train")
    pipeline = build_classifier(config).set_params(**({"classify__cv": 5} if model == "svm" else {}))
    pipeline.fit(X, y)
    test, _ = imbalanced(rng)
    decided = pipeline.classes_[decision_scores(pipeline, test).argmax(axis=1)]
    if model == "svm":  # the SVM fitted on all training data, not its calibrated probabilities
        own = pipeline[-1].calibrated_classifiers_[0].estimator.predict(pipeline[:-1].transform(test))
    else:
        own = pipeline.predict(test)
    np.testing.assert_array_equal(decided, own)


def test_on_an_imbalanced_set_the_svm_decision_keeps_uar_where_calibrated_argmax_loses_it():
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from vocalab.metrics import uar

    rng = np.random.default_rng(0)
    X, y = imbalanced(rng)
    test, truth = imbalanced(rng)
    pipeline = build_classifier(TrainConfig()).set_params(classify__cv=5).fit(X, y)
    by_decision = uar(truth, pipeline.classes_[decision_scores(pipeline, test).argmax(axis=1)])
    by_probability = uar(truth, pipeline.classes_[pipeline.predict_proba(test).argmax(axis=1)])
    scaler = StandardScaler().fit(X)
    plain = uar(truth, SVC(class_weight="balanced").fit(scaler.transform(X), y).predict(scaler.transform(test)))
    assert by_decision == pytest.approx(plain, abs=0.01)  # plain SVC.predict, up to its vote ties
    assert by_decision > by_probability + 0.1


@pytest.mark.parametrize("model", ["svm", "random_forest", "hist_gb"])
def test_a_saved_model_has_the_same_bytes_each_time_and_loads(model, tmp_path):
    import skops.io

    from vocalab.models.persist import POOLED_FILE, load_fold_model, save_fold_model
    from vocalab.training import FittedModel

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), np.repeat(["a", "b", "c"], 20)
    config = from_mapping(TrainConfig, {"model": model}, section="train")
    fits = [build_classifier(config).fit(X, y) for _ in range(2)]  # two objects: two sets of Python ids
    raw = [skops.io.dumps(f) for f in fits]
    assert raw[0] != raw[1]  # skops alone writes ids and times
    for k, fitted in enumerate(fits):
        save_fold_model(FittedModel(fitted, "pooled"), tmp_path / str(k))
    assert (tmp_path / "0" / POOLED_FILE).read_bytes() == (tmp_path / "1" / POOLED_FILE).read_bytes()
    loaded = load_fold_model(tmp_path / "0", "pooled", None, ["a", "b", "c"])
    np.testing.assert_array_equal(loaded.predict_proba(X), fits[0].predict_proba(X))


def test_models_save_and_load_without_torch_and_trust_only_the_projects_estimators(tmp_path):
    """In a fresh process, as a train or evaluate stage runs: skops trusts the estimator modules the
    project builds from (and so imports neither torch nor dask nor pytest); another module's estimator is refused."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        from pathlib import Path
        from sklearn.dummy import DummyClassifier
        from sklearn.pipeline import Pipeline
        from vocalab.errors import VocalabError
        from vocalab.models.classifiers import build_classifier
        from vocalab.models.config import TrainConfig
        from vocalab.models.persist import load_fold_model, save_fold_model, skops_io
        from vocalab.training import FittedModel

        X, y = np.random.default_rng(0).normal(size=(30, 3)), np.repeat(["a", "b", "c"], 10)
        fitted = build_classifier(TrainConfig()).fit(X, y)
        save_fold_model(FittedModel(fitted, "pooled"), Path({str(tmp_path)!r}) / "ok")
        loaded = load_fold_model(Path({str(tmp_path)!r}) / "ok", "pooled", None, ["a", "b", "c"])
        assert (loaded.predict(X) == fitted.predict(X)).all()
        print("heavy:", sorted(m for m in ("torch", "dask", "pytest") if m in sys.modules))
        foreign = Path({str(tmp_path)!r}) / "foreign"
        foreign.mkdir()
        skops_io().dump(Pipeline([("c", DummyClassifier().fit(X, y))]), foreign / "model.skops")
        try:
            load_fold_model(foreign, "pooled", None, ["a", "b", "c"])
        except VocalabError as err:
            print("refused:", err)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert "heavy: []" in out
    assert "refused:" in out and "sklearn.dummy.DummyClassifier" in out


SVM_UNDER_KERNELS = """
import hashlib, json, sys
from pathlib import Path
import numpy as np
from vocalab.models.classifiers import build_classifier, settle_calibration
from vocalab.models.config import TrainConfig
from vocalab.models.persist import POOLED_FILE, save_fold_model
from vocalab.params import from_mapping
from vocalab.training import FittedModel

rng = np.random.default_rng(0)
X, y = rng.normal(size=(96, 300)), np.repeat([f"c{i}" for i in range(8)], 12)
X[:, :3] += np.arange(96)[:, None] % 8 * 0.3
model = build_classifier(from_mapping(TrainConfig, {"model": sys.argv[2]}, section="train")).fit(X, y)

def digest(name):
    save_fold_model(FittedModel(model, "pooled"), Path(sys.argv[1]) / name)
    return hashlib.sha256((Path(sys.argv[1]) / name / POOLED_FILE).read_bytes()).hexdigest()

raw = digest("raw")
settle_calibration(model)
print(json.dumps({"raw": raw, "settled": digest("settled")}))
"""


@pytest.mark.skipif(sys.platform != "linux" or platform.machine() != "x86_64", reason="needs OpenBLAS's x86-64 kernels")
@pytest.mark.parametrize("model", ["svm", "logreg"])
def test_a_saved_model_has_the_same_bytes_under_other_blas_kernels(tmp_path, model):
    """Platt scaling's and logistic regression's optimisers call BLAS, whose kernels differ by CPU: the saved
    model must not."""
    haswell, sandy_bridge = (json_from_fresh_process(SVM_UNDER_KERNELS, str(tmp_path / kernel), model,
                                                     env={"OPENBLAS_CORETYPE": kernel})
                             for kernel in ("Haswell", "SandyBridge"))
    if haswell["raw"] == sandy_bridge["raw"]:
        pytest.skip("these BLAS kernels fit the same sigmoids here: nothing to settle")
    assert haswell["settled"] == sandy_bridge["settled"]
