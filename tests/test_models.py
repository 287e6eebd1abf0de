import socket
from pathlib import Path

import pytest
import torch

from xencoder_lab.models import ModelNotFoundError, get_device, load_encoder, model_fingerprint, resolve_model


def test_default_model_is_the_installed_wheel(monkeypatch):
    monkeypatch.delenv("XLAB_BASE_MODEL", raising=False)
    path = Path(resolve_model())
    assert (path / "config.json").exists() and (path / "model.safetensors").exists()
    assert resolve_model("all-MiniLM-L6-v2") == str(path)


def test_env_variable_and_local_folder(tmp_path, monkeypatch):
    tokenizer, model = load_encoder()
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 6
    model.save_pretrained(tmp_path / "saved")
    monkeypatch.setenv("XLAB_BASE_MODEL", str(tmp_path / "saved"))
    assert resolve_model() == str(tmp_path / "saved")
    _, again = load_encoder()
    assert model_fingerprint(again) == model_fingerprint(model)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails, and is recorded."""
    attempts = []

    def refuse(sock, address):
        attempts.append(address)
        raise OSError(f"the network is blocked in this test (tried {address})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


def test_the_default_model_loads_with_the_network_blocked(no_network):
    tokenizer, model = load_encoder()
    assert model.config.hidden_size == 384 and tokenizer("a test")["input_ids"][0] == tokenizer.cls_token_id
    assert no_network == []  # no hub, not even a failed look-up


def test_unknown_names_give_clear_errors(tmp_path, no_network):
    with pytest.raises(ModelNotFoundError, match="could not find model 'no-such-org/no-such-model'"):
        resolve_model("no-such-org/no-such-model")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model(str(tmp_path / "missing-folder"))
    (tmp_path / "not-a-model").mkdir()
    with pytest.raises(ModelNotFoundError, match="has no config.json"):
        resolve_model(str(tmp_path / "not-a-model"))


def test_device_helper(monkeypatch):
    monkeypatch.delenv("XLAB_DEVICE", raising=False)
    assert get_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else None
    if expected is None and torch.backends.mps.is_available():
        expected = "mps"
    assert get_device().type == (expected or "cpu")
    monkeypatch.setenv("XLAB_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")


def test_fingerprint_sees_any_weight_change():
    a = torch.nn.Linear(3, 2)
    before = model_fingerprint(a)
    with torch.no_grad():
        a.weight[0, 0] += 1e-6
    assert model_fingerprint(a) != before
    assert model_fingerprint(a.to(torch.bfloat16)) != model_fingerprint(a.float())
