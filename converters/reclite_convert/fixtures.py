"""Model fixtures for the C++ tests: `/usr/bin/python3 -m reclite_convert.fixtures --out DIR`.

For each fixture NAME it writes NAME.reclite and NAME.expected.json, deterministically (fixed seeds, one torch
thread), plus manifest.json = {"fixtures": [NAME, ...]}. NAME.expected.json holds:
  {"name", "architecture", "model_file", "tolerance",
   "user_dim", "item_dim",
   "users": [{"request": {field: {"ids": [...]} | {"values": [...]}}, "user_vector": [...]}],   histories are
            external item ids, most recent last; lengths 0, 1, 2, max-1, max, max+7, then random
   "items": [{"item_id": external id, "item_vector": [...]}],
   "top_k": [{"user": index into users, "k": 100, "item_ids": [...], "scores": [...]}]}
top_k is exact: inner products (float64 over the float32 vectors) of the user vector with every catalogue item
vector, ties broken by lower entry number. External ids are 1000 + 7 * row, so id-mapping bugs show.
"""

import argparse
import json
import os
import time
from typing import Callable, Dict, List

import numpy as np
import torch
import torch.nn.functional as F

from reclite_convert.catalogue import Catalogue
from reclite_convert.layouts import torch_rechub
from reclite_convert.layouts.common import state_dict_to_numpy
from reclite_convert.model_spec import describe
from reclite_convert.modules import (DSSM, CategoricalFeature, DenseFeature, FMTwoTower, HistoryFeature,
                                     TowerOptions, YoutubeDNN)
from reclite_convert.rechub_reference import RechubDSSM, RechubYoutubeDNN, randomize
from reclite_convert.requests import random_request, user_vectors
from reclite_convert.writer import write_model

ITEMS = 500          # item vocabulary, row 0 = padding
CATEGORIES = 12
USERS = 40
MAX_LENGTH = 20
TOP_K = 100
TOLERANCE = 1e-5


def external_id(row):
    return 1000 + 7 * row


# --- synthetic world: items have categories, users prefer two of them ------------------------------------------
class World:
    def __init__(self, seed: int = 7):
        rng = np.random.default_rng(seed)
        self.category = rng.integers(0, CATEGORIES, size=ITEMS)
        self.category[0] = 0
        self.gender = rng.integers(0, 3, size=USERS)
        self.age = rng.integers(0, 8, size=USERS)
        self.activity = rng.normal(size=(USERS, 2)).astype(np.float32)
        self.favourite = rng.integers(0, CATEGORIES, size=(USERS, 2))
        by_category = [np.flatnonzero((self.category == c) & (np.arange(ITEMS) > 0)) for c in range(CATEGORIES)]
        self.sequences = []
        for user in range(USERS):
            items = []
            for _ in range(60):
                if rng.random() < 0.8:
                    pool = by_category[self.favourite[user, rng.integers(0, 2)]]
                else:
                    pool = np.arange(1, ITEMS)
                items.append(int(rng.choice(pool)))
            self.sequences.append(items)
        self.rng = rng

    def catalogue(self) -> Catalogue:
        rows = np.arange(1, ITEMS)
        return Catalogue(ITEMS, external_ids=external_id(rows), item_rows=rows, padding_row=0,
                         item_features={"category": self.category})

    def training_batch(self, size: int):
        """(users, history rows [size, MAX_LENGTH] left-padded with 0, target rows)."""
        users = self.rng.integers(0, USERS, size=size)
        histories = np.zeros((size, MAX_LENGTH), dtype=np.int64)
        targets = np.zeros(size, dtype=np.int64)
        for index, user in enumerate(users):
            position = int(self.rng.integers(1, len(self.sequences[user])))
            past = self.sequences[user][max(0, position - MAX_LENGTH):position]
            histories[index, MAX_LENGTH - len(past):] = past
            targets[index] = self.sequences[user][position]
        return users, histories, targets

    def user_batch(self, module, users, histories) -> Dict[str, torch.Tensor]:
        batch = {}
        for field in module.user_fields:
            if field.name == "user_id":
                batch[field.name] = torch.from_numpy(users)
            elif field.name in ("gender", "age"):
                batch[field.name] = torch.from_numpy(getattr(self, field.name)[users])
            elif field.name == "favourite_category":
                batch[field.name] = torch.from_numpy(self.favourite[users, 0])
            elif field.name == "history":
                batch[field.name] = torch.from_numpy(histories)
            elif field.name == "recent_categories":
                # categories shifted by one so 0 stays the padding id
                shifted = np.where(histories > 0, self.category[histories] + 1, 0)
                batch[field.name] = torch.from_numpy(shifted[:, -5:])
            elif field.name == "activity":
                batch[field.name] = torch.from_numpy(self.activity[users])
        return batch

    def item_batch(self, module, rows) -> Dict[str, torch.Tensor]:
        batch = {}
        for field in module.item_fields:
            batch[field.name] = torch.from_numpy(rows if field.name == "item_id" else self.category[rows])
        return batch


def train(module, world: World, steps: int = 300, batch_size: int = 64) -> None:
    """A few hundred steps: in-batch sampled softmax for the towers, BPR on the full FM score for FM."""
    optimizer = torch.optim.Adam(module.parameters(), lr=0.01)
    module.train()
    for _ in range(steps):
        users, histories, targets = world.training_batch(batch_size)
        user_batch = world.user_batch(module, users, histories)
        if isinstance(module, FMTwoTower):
            negatives = world.rng.integers(1, ITEMS, size=batch_size)
            positive = module.score(user_batch, world.item_batch(module, targets))
            negative = module.score(user_batch, world.item_batch(module, negatives))
            loss = -F.logsigmoid(positive - negative).mean()
        else:
            logits = module.user_vector(user_batch) @ module.item_vector(world.item_batch(module, targets)).T
            if isinstance(module, DSSM):
                logits = logits / 0.1  # training temperature only; serving vectors stay unscaled
            loss = F.cross_entropy(logits, torch.arange(batch_size))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    module.eval()


def randomize_batch_norm(module, generator: torch.Generator) -> None:
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, torch.nn.BatchNorm1d):
                sub.weight.uniform_(0.5, 1.5, generator=generator)
                sub.bias.normal_(0.0, 0.2, generator=generator)
                sub.running_mean.normal_(0.0, 0.3, generator=generator)
                sub.running_var.uniform_(0.3, 2.0, generator=generator)


# --- model specs ---------------------------------------------------------------------------------------------
def make_dssm():
    return DSSM([CategoricalFeature("user_id", USERS, 16), CategoricalFeature("gender", 3, 8),
                 HistoryFeature("history", MAX_LENGTH, "item_id", pooling="mean"), DenseFeature("activity", 2)],
                [CategoricalFeature("item_id", ITEMS, 24, ids="item"), CategoricalFeature("category", CATEGORIES, 8)],
                TowerOptions([64, 32], activation="relu", batch_norm=True),
                TowerOptions([64, 32], activation="tanh"), l2_normalize=True)


def make_youtube_dnn():
    return YoutubeDNN([CategoricalFeature("user_id", USERS, 16), CategoricalFeature("age", 8, 8),
                       CategoricalFeature("favourite_category", CATEGORIES + 1, 8),
                       HistoryFeature("history", MAX_LENGTH, "item_id", pooling="mean", mean_epsilon=1e-8),
                       HistoryFeature("recent_categories", 5, "favourite_category", pooling="sum",
                                      ids="vocabulary")],
                      CategoricalFeature("item_id", ITEMS, 32, ids="item"),
                      TowerOptions([64, 32], activation="relu", last_activation="none"),
                      l2_normalize=True, temperature=0.2, normalize_items=True)


def make_fm():
    dim = 16
    return FMTwoTower([CategoricalFeature("user_id", USERS, dim), CategoricalFeature("gender", 3, dim),
                       CategoricalFeature("age", 8, dim)],
                      [CategoricalFeature("item_id", ITEMS, dim, ids="item"),
                       CategoricalFeature("category", CATEGORIES, dim)], dim)


RECHUB_DIM = 16
RECHUB_DSSM_SPEC = {
    "user_fields": [{"kind": "categorical", "name": "user_id", "vocabulary_size": USERS, "embedding_dim": RECHUB_DIM},
                    {"kind": "dense", "name": "activity", "width": 1},
                    {"kind": "categorical", "name": "gender", "vocabulary_size": 3, "embedding_dim": RECHUB_DIM},
                    {"kind": "history", "name": "history", "max_length": MAX_LENGTH, "embedding_name": "item_id"}],
    "item_fields": [{"kind": "categorical", "name": "item_id", "vocabulary_size": ITEMS,
                     "embedding_dim": RECHUB_DIM, "ids": "item"},
                    {"kind": "categorical", "name": "category", "vocabulary_size": CATEGORIES,
                     "embedding_dim": RECHUB_DIM}],
    "user_tower": {"widths": [64, 32]}, "item_tower": {"widths": [64, 32]},
}
RECHUB_YOUTUBE_SPEC = {
    "user_fields": [{"kind": "categorical", "name": "user_id", "vocabulary_size": USERS, "embedding_dim": RECHUB_DIM},
                    {"kind": "categorical", "name": "age", "vocabulary_size": 8, "embedding_dim": RECHUB_DIM},
                    {"kind": "history", "name": "history", "max_length": MAX_LENGTH, "embedding_name": "item_id"}],
    "item_field": {"kind": "categorical", "name": "item_id", "vocabulary_size": ITEMS, "embedding_dim": RECHUB_DIM,
                   "ids": "item"},
    "user_tower": {"widths": [64, RECHUB_DIM]},
}


def rechub_batch(fields, requests, catalogue: Catalogue) -> Dict[str, torch.Tensor]:
    """torch-rechub's inputs: histories as rows, truncated and left-padded with 0 to max_length."""
    batch = {}
    for field in fields:
        values = [request[field["name"]] for request in requests]
        if field["kind"] == "categorical":
            batch[field["name"]] = torch.tensor([v["ids"][0] for v in values])
        elif field["kind"] == "history":
            padded = []
            for v in values:
                rows = catalogue.rows_of(v["ids"]).tolist()[-field["max_length"]:]
                padded.append([0] * (field["max_length"] - len(rows)) + rows)
            batch[field["name"]] = torch.tensor(padded, dtype=torch.long)
        else:
            batch[field["name"]] = torch.tensor([v["values"] for v in values], dtype=torch.float32)
    return batch


# --- writing -------------------------------------------------------------------------------------------------
def sample_requests(module, catalogue: Catalogue, seed: int, count: int = 20) -> List[Dict]:
    rng = np.random.default_rng(seed)
    has_history = any(isinstance(f, HistoryFeature) for f in module.user_fields)
    lengths = [0, 1, 2, MAX_LENGTH - 1, MAX_LENGTH, MAX_LENGTH + 7] if has_history else []
    lengths += [None] * (count - len(lengths))
    return [random_request(module, catalogue, rng, length) for length in lengths]


def write_fixture(directory: str, name: str, module, catalogue: Catalogue, seed: int,
                  user_vector_of: Callable = None, item_vectors_of: Callable = None,
                  metadata: Dict[str, str] = None) -> None:
    """NAME.reclite from module; expected vectors from module, or from the given reference functions."""
    module.eval()
    description = describe(module, catalogue, dict(metadata or {}, fixture=name))
    write_model(description, os.path.join(directory, f"{name}.reclite"))
    requests = sample_requests(module, catalogue, seed)
    with torch.inference_mode():
        users = user_vectors(module, requests, catalogue) if user_vector_of is None else \
            user_vector_of(requests).float().numpy()
        all_items = next(t.array for t in description.tensors if t.name == "catalogue.item_vectors")
        if item_vectors_of is not None:
            reference = item_vectors_of(catalogue).float().numpy()
            worst = float(np.abs(reference - all_items).max())
            if worst > 1e-6:
                raise AssertionError(f"{name}: converted item vectors differ from the reference by {worst}")
            all_items = reference
    if user_vector_of is not None:
        ours = user_vectors(module, requests, catalogue)
        worst = float(np.abs(ours - users).max())
        if worst > 1e-6:
            raise AssertionError(f"{name}: converted module differs from the reference by {worst}")
    rng = np.random.default_rng(seed + 1)
    item_entries = np.sort(rng.choice(len(catalogue), size=20, replace=False))
    scores = users[:5].astype(np.float64) @ all_items.astype(np.float64).T
    top = []
    for user in range(5):
        order = np.lexsort((np.arange(len(catalogue)), -scores[user]))[:TOP_K]
        top.append({"user": user, "k": TOP_K, "item_ids": [int(catalogue.external_ids[e]) for e in order],
                    "scores": [float(scores[user, e]) for e in order]})
    expected = {
        "name": name, "architecture": module.architecture, "model_file": f"{name}.reclite", "tolerance": TOLERANCE,
        "user_dim": int(users.shape[1]), "item_dim": int(all_items.shape[1]),
        "users": [{"request": request, "user_vector": [float(v) for v in vector]}
                  for request, vector in zip(requests, users)],
        "items": [{"item_id": int(catalogue.external_ids[e]), "item_vector": [float(v) for v in all_items[e]]}
                  for e in item_entries],
        "top_k": top,
    }
    with open(os.path.join(directory, f"{name}.expected.json"), "w", encoding="utf-8") as file:
        json.dump(expected, file, indent=1)
        file.write("\n")


def rechub_fixture(directory: str, name: str, architecture: str, spec: Dict, world: World, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if architecture == "dssm":
        reference = RechubDSSM(spec["user_fields"], spec["item_fields"], spec["user_tower"]["widths"],
                               spec["item_tower"]["widths"])
    else:
        reference = RechubYoutubeDNN(spec["user_fields"], spec["item_field"], spec["user_tower"]["widths"])
    randomize(reference, generator)
    weights = state_dict_to_numpy(reference.state_dict())
    module = torch_rechub.build_module(architecture, spec, weights, f"{name} state_dict")
    catalogue = world.catalogue()
    item_fields = spec.get("item_fields") or [spec["item_field"]]
    user_fields = spec["user_fields"]

    def user_vector_of(requests):
        return reference.user_tower(rechub_batch(user_fields, requests, catalogue))

    def item_vectors_of(catalogue_):
        batch = {}
        for field in item_fields:
            rows = torch.from_numpy(catalogue_.item_rows)
            batch[field["name"]] = rows if field.get("ids") == "item" else torch.from_numpy(
                world.category[catalogue_.item_rows])
        return reference.item_tower(batch)

    write_fixture(directory, name, module, catalogue, seed, user_vector_of, item_vectors_of,
                  {"source": "torch-rechub style state_dict built in reclite_convert.fixtures",
                   "layout": "torch_rechub"})


def generate(directory: str) -> List[str]:
    os.makedirs(directory, exist_ok=True)
    torch.set_num_threads(1)  # the same float reductions on every machine
    names = []
    world = World()
    builders = [("dssm", make_dssm), ("youtube_dnn", make_youtube_dnn), ("fm", make_fm)]
    for index, (prefix, make) in enumerate(builders):
        for trained in (False, True):
            seed = 100 * index + int(trained)
            torch.manual_seed(seed)
            module = make()
            randomize_batch_norm(module, torch.Generator().manual_seed(seed))
            if trained:
                train(module, World())  # the same items and users as the catalogue below
            name = f"{prefix}_{'trained' if trained else 'random'}"
            write_fixture(directory, name, module, world.catalogue(), seed,
                          metadata={"source": "reclite_convert.fixtures", "layout": "reclite"})
            names.append(name)
    rechub_fixture(directory, "dssm_rechub", "dssm", RECHUB_DSSM_SPEC, world, 900)
    rechub_fixture(directory, "youtube_dnn_rechub", "youtube_dnn", RECHUB_YOUTUBE_SPEC, world, 901)
    names += ["dssm_rechub", "youtube_dnn_rechub"]
    with open(os.path.join(directory, "manifest.json"), "w", encoding="utf-8") as file:
        json.dump({"fixtures": names}, file, indent=1)
        file.write("\n")
    return names


def main() -> int:
    parser = argparse.ArgumentParser(prog="reclite_convert.fixtures", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory to create and fill")
    args = parser.parse_args()
    start = time.time()
    names = generate(args.out)
    print(f"{args.out}: {len(names)} fixtures ({', '.join(names)}) in {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
