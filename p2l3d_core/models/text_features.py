"""Sentence features of a frozen text encoder, kept in a run's folder and shared by its models.

Why: the frozen text encoder (MiniLM, ~14 ms a caption on one CPU thread) embedded every caption
phrasing again in each of a run's 15 models, about a minute of every model's first epochs. Its
features of a sentence never change, so the first model to meet a sentence stores it and the
later ones read it. Files live under ``FOLDER/<fingerprint>/``, one per worker and training;
the fingerprint covers the backbone's weights and tokenizer settings, so features are only
ever read by an encoder that would compute the same numbers (to float rounding: a sentence
padded in another batch).
"""

from __future__ import annotations

import hashlib
import json
import uuid
import warnings

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from p2l3d_core import storage
from p2l3d_core.models.encoders import TextEncoder


def fingerprint(encoder: TextEncoder) -> str:
    """A digest of what a sentence's features depend on: backbone weights, tokenizer, length."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"tokenizer": type(encoder.tokenizer).__name__,
                              "vocab": len(encoder.tokenizer),
                              "max_length": encoder.max_length}, sort_keys=True).encode())
    for name, tensor in sorted(encoder.backbone.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class SharedSentences:
    """One frozen encoder's sentence cache and its files under ``FOLDER/<fingerprint>/``: what it
    read or stored there (``known``), so each store writes only what the files lack. The
    fingerprint hashes the backbone's weights once, here, not on every load and store."""

    def __init__(self, encoder: TextEncoder, folder: str):
        self.encoder = encoder
        # A backbone that trains has no fixed features to share.
        self.path = storage.join(folder, fingerprint(encoder)) if encoder.frozen else None
        self.known: set[str] = set()

    def load(self) -> set[str]:
        """Fill the encoder's cache from the files; returns the sentences read."""
        if self.path is None:
            return set()
        read: set[str] = set()
        for uri in storage.list_files(self.path):
            if not uri.endswith(".safetensors"):
                continue  # a file still being written
            try:
                tensors = load_safetensors(storage.read_bytes(uri))
                sentences = json.loads(tensors["sentences_utf8"].numpy().tobytes().decode("utf-8"))
                if len(sentences) != len(tensors["features"]):
                    raise ValueError(f"{len(sentences)} sentences, {len(tensors['features'])} rows")
            except (SafetensorError, KeyError, ValueError) as err:  # a cache: a damaged file costs
                # recomputing its sentences, nothing more
                warnings.warn(f"{uri}: unreadable sentence features ({err}); they are recomputed")
                continue
            self.encoder.sentence_cache.update(zip(sentences, tensors["features"]))
            read.update(sentences)
        self.known |= read
        return read

    def save_new(self) -> int:
        """Store the sentences the encoder holds beyond ``known`` as one new file; returns how
        many."""
        if self.path is None:
            return 0
        cache = self.encoder.sentence_cache
        new = [s for s in cache if s not in self.known]
        if not new:
            return 0
        data = save_safetensors({
            "features": torch.stack([cache[s] for s in new]).float().contiguous(),
            "sentences_utf8": torch.tensor(list(json.dumps(new).encode("utf-8")),
                                           dtype=torch.uint8),
        })
        storage.write_bytes(storage.join(self.path, f"{uuid.uuid4().hex}.safetensors"), data)
        self.known.update(new)
        return len(new)


def stores_of(encoders: list[TextEncoder], folder: str) -> list[SharedSentences]:
    """One :class:`SharedSentences` per distinct sentence cache among ``encoders``: a distilled
    student's text encoder shares its teacher's cache (``Student.adopt_language``), and two
    stores of one cache would each read every file and write the same sentences twice."""
    distinct = {id(e.sentence_cache): e for e in encoders}.values()
    return [SharedSentences(e, folder) for e in distinct]
