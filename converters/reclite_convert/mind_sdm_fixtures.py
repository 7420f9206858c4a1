"""MIND and SDM model fixtures for the C++ tests: `/usr/bin/python3 -m reclite_convert.mind_sdm_fixtures --out DIR`.

Fixtures (each with random and with briefly trained weights, 299 catalogue items, K = 4, T = 20):
  mind_deepmatch_v020   over behaviours, right padding, pads -2^32+1 before the softmax, squash eps 1e-8, dynamic K'
                        (inactive interests zeroed), DNN head over [user_id ; gender ; c_k], D 16
  mind_deepmatch_head   over capsules, pads zeroed after the softmax, inactive logits -2^31, p = 100, D 32,
                        head over [user_id ; gender ; activity (dense) ; c_k]
  mind_fun_rec          left padding, over behaviours, behaviour = mean of item and category tables, K' in the
                        routing but no masking at serving, 3-layer head, D 16
  mind_torch_rechub     a torch-rechub-style MIND (its key layout and forward, below) converted through the
                        torch_rechub layout: softmax over behaviours including pads then pads zeroed, all K,
                        h = l2norm([o ; c] U), items l2norm(E), D 32
  mind_reclite          the paper's routing with behaviour = sum of item and category tables, D 16
  sdm_deepmatch         TF1 gate order igfo, forget bias 1.0, 2 shared LSTM layers with residual, 4 heads,
                        LayerNorm eps 1e-9, u 16, short 10, long 20, histories of items and categories
Every fixture's initial routing logits are a frozen random snapshot (zeros would make all K interests equal).

Files: NAME.reclite, NAME.expected.json, manifest.json = {"fixtures": [NAME, ...]}.
NAME.expected.json = {"name", "architecture", "variant", "model_file", "interests", "user_dim", "tolerance": 1e-5,
  "users": [{"request": {field: {"ids": [...]} | {"values": [...]}}, "user_vectors": [[...] per interest],
             "active_interests": K'}],
  "top_k": [{"user", "k": 100, "item_ids": [...], "scores": [...], "interest_of_item": [...]}],
  "label_aware" (MIND only): [{"user", "item_id", "user_vector": [...]}]}
Histories hold external item ids (7000 + 2 * row; row 0 pads and is no item), most recent last; category
histories hold category ids (1..12, 0 pads). MIND history lengths 0, 1, 2, 3, 4, 7, 8, 20, 25; SDM (short, long)
pairs vary both over those lengths. SDM users have one vector (interests 1, active_interests 1).
top_k is the exact multi-interest merge: for each active interest k < K' (K' = K without dynamic_interests) the
inner products (float64 over the float32 vectors) with every catalogue item vector; per item its best score (ties
to the lower interest); items by score, ties to the lower entry; the first 100. Deterministic: fixed seeds, one
torch thread.
"""

import argparse
import json
import math
import os
import tempfile
import time
from typing import Dict, List, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reclite_convert.catalogue import Catalogue
from reclite_convert.layouts import torch_rechub
from reclite_convert.layouts.common import load_weights
from reclite_convert.model_spec import describe_multi_interest
from reclite_convert.modules.mind import MIND, mind_training_batch, synthetic_log, train_sampled_softmax
from reclite_convert.modules.sdm import SDM, sdm_training_batch
from reclite_convert.writer import write_model

ITEM_ROWS = 300       # row 0 = padding
CATEGORIES = 12       # ids 1..12, 0 = padding
USERS = 60
INTERESTS = 4
MAX_LENGTH = 20
SHORT_LENGTH, LONG_LENGTH = 10, 20
TOP_K = 100
TOLERANCE = 1e-5
HISTORY_LENGTHS = (0, 1, 2, 3, 4, 7, 8, MAX_LENGTH, MAX_LENGTH + 5)
SDM_LENGTHS = ((0, 0), (1, 0), (0, 1), (2, 3), (3, 7), (4, 20), (7, 25), (8, 2), (SHORT_LENGTH, 4),
               (SHORT_LENGTH + 5, 8), (5, LONG_LENGTH + 5))
TRAINING_STEPS = 150


def external_id(row):
    return 7000 + 2 * row


USER_FIELDS = [{"kind": "categorical", "name": "user_id", "vocabulary_size": USERS, "embedding_dim": 8},
               {"kind": "categorical", "name": "gender", "vocabulary_size": 3, "embedding_dim": 4}]
CATEGORY_HISTORY = {"name": "history_category", "table": "category", "vocabulary_size": CATEGORIES + 1}


class World:
    """Items with categories, users with two or three favourite categories, and their sequences."""

    def __init__(self, seed: int = 17):
        rng = np.random.default_rng(seed)
        self.category = rng.integers(1, CATEGORIES + 1, size=ITEM_ROWS)
        self.category[0] = 0
        self.gender = rng.integers(0, 3, size=USERS)
        self.log = synthetic_log(ITEM_ROWS, self.category, users=USERS, length=40, seed=seed)
        rows = np.arange(1, ITEM_ROWS)
        self.catalogue = Catalogue(ITEM_ROWS, external_ids=external_id(rows), item_rows=rows, padding_row=0)

    def user_values(self, user: int, activity=None) -> Dict[str, Dict[str, list]]:
        values = {"user_id": {"ids": [int(user)]}, "gender": {"ids": [int(self.gender[user])]}}
        if activity is not None:
            values["activity"] = {"values": [float(v) for v in np.asarray(activity, dtype=np.float32)]}
        return values

    def training_user(self, prefix):
        # the log does not know users' ids for a prefix: a stable pseudo-user from the prefix's first item
        user = int(prefix[0]) % USERS
        return self.user_values(user, activity=[len(prefix) / MAX_LENGTH, (user % 5) / 5.0])


# --- torch-rechub-style MIND: its module tree (so its state_dict keys) and forward, written from models.md §2 ---
class RechubStyleMIND(nn.Module):
    """torch-rechub MIND's user tower with bilinear_type 0 and the routing logits given instead of torch.randn."""

    def __init__(self, user_features, item_feature: str, item_rows: int, dim: int, interests: int, seq_len: int):
        super().__init__()
        self.user_features, self.item_feature = list(user_features), item_feature
        self.interest_num, self.seq_len = interests, seq_len
        self.embedding = nn.Module()
        self.embedding.embed_dict = nn.ModuleDict()
        for name, vocabulary, width in self.user_features:
            self.embedding.embed_dict[name] = nn.Embedding(vocabulary, width)
        self.embedding.embed_dict[item_feature] = nn.Embedding(item_rows, dim)
        self.capsule = nn.Module()
        self.capsule.linear = nn.Linear(dim, dim, bias=False)
        self.capsule.relu = nn.Sequential(nn.Linear(dim, dim, bias=False), nn.ReLU())  # relu_layer=False: unused
        user_dims = sum(width for _, _, width in self.user_features) + dim
        self.convert_user_weight = nn.Parameter(torch.rand(user_dims, dim))
        self.routing_logits = None  # [K, T]: torch-rechub draws torch.randn(B, K, T) here on every call

    def capsule_forward(self, item_eb, mask):
        batch = item_eb.shape[0]
        item_eb_hat = self.capsule.linear(item_eb).repeat(1, 1, self.interest_num)
        item_eb_hat = torch.reshape(item_eb_hat, (-1, self.seq_len, self.interest_num, item_eb.shape[-1]))
        item_eb_hat = torch.transpose(item_eb_hat, 1, 2).contiguous()
        item_eb_hat = torch.reshape(item_eb_hat, (-1, self.interest_num, self.seq_len, item_eb.shape[-1]))
        capsule_weight = self.routing_logits.unsqueeze(0).repeat(batch, 1, 1)
        interest_capsule = None
        for i in range(3):
            atten_mask = torch.unsqueeze(mask, 1).repeat(1, self.interest_num, 1)
            paddings = torch.zeros_like(atten_mask, dtype=torch.float)
            capsule_softmax_weight = F.softmax(capsule_weight, dim=-1)
            capsule_softmax_weight = torch.where(torch.eq(atten_mask, 0), paddings, capsule_softmax_weight)
            capsule_softmax_weight = torch.unsqueeze(capsule_softmax_weight, 2)
            interest_capsule = torch.matmul(capsule_softmax_weight, item_eb_hat)
            cap_norm = torch.sum(torch.square(interest_capsule), -1, True)
            scalar_factor = cap_norm / (1 + cap_norm) / torch.sqrt(cap_norm + 1e-9)
            interest_capsule = scalar_factor * interest_capsule
            if i < 2:
                delta_weight = torch.matmul(item_eb_hat, torch.transpose(interest_capsule, 2, 3).contiguous())
                capsule_weight = capsule_weight + torch.reshape(delta_weight, (-1, self.interest_num, self.seq_len))
        return torch.reshape(interest_capsule, (-1, self.interest_num, item_eb.shape[-1]))

    def user_tower(self, x: Dict[str, torch.Tensor]) -> torch.Tensor:
        input_user = torch.cat([self.embedding.embed_dict[name](x[name]) for name, _, _ in self.user_features], -1)
        input_user = input_user.unsqueeze(1).expand(input_user.shape[0], self.interest_num, input_user.shape[-1])
        history = x["hist_" + self.item_feature]
        history_emb = self.embedding.embed_dict[self.item_feature](history)
        mask = (history > 0).float()
        multi_interest_emb = self.capsule_forward(history_emb, mask)
        user_embedding = torch.matmul(torch.cat([input_user, multi_interest_emb], dim=-1), self.convert_user_weight)
        return F.normalize(user_embedding, p=2, dim=-1)

    def batch(self, requests, catalogue) -> Dict[str, torch.Tensor]:
        """torch-rechub's input: left-padded ('pre') and truncated histories of item rows."""
        rows = []
        for request in requests:
            history = catalogue.rows_of(request["hist_" + self.item_feature]["ids"]).tolist()[-self.seq_len:]
            rows.append([0] * (self.seq_len - len(history)) + history)
        x = {"hist_" + self.item_feature: torch.tensor(rows, dtype=torch.long).reshape(len(rows), self.seq_len)}
        for name, _, _ in self.user_features:
            x[name] = torch.tensor([r[name]["ids"][0] for r in requests], dtype=torch.long)
        return x


def rechub_state_dict(module: MIND) -> Dict[str, torch.Tensor]:
    """Our torch_rechub-variant MIND's weights in torch-rechub's key layout (plus the unused relu layer)."""
    state = {f"embedding.embed_dict.{f.name}.weight": module.embeddings[f.name].weight.detach().clone()
             for f in module.user_fields}
    state[f"embedding.embed_dict.{module.item_table_name}.weight"] = \
        module.embeddings[module.item_table_name].weight.detach().clone()
    state["capsule.linear.weight"] = module.bilinear.weight.detach().clone()
    state["capsule.relu.0.weight"] = torch.randn(module.hidden_size, module.hidden_size,
                                                 generator=torch.Generator().manual_seed(3))
    state["convert_user_weight"] = module.head[0].weight.detach().T.contiguous()
    return state


# --- building the modules ---------------------------------------------------------------------------------------
def randomize(module: nn.Module, generator: torch.Generator) -> None:
    """Modest random weights (every parameter matters; squash neither saturates nor vanishes)."""
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if name.endswith("bias"):
                parameter.normal_(0.0, 0.1, generator=generator)
            elif parameter.dim() == 1:
                parameter.uniform_(0.6, 1.4, generator=generator)
            elif name.startswith("embeddings."):
                parameter.normal_(0.0, 0.4, generator=generator)
            else:
                parameter.normal_(0.0, 1.0 / math.sqrt(parameter.shape[1]), generator=generator)
    module.eval()


def make_mind(variant: str, seed: int) -> MIND:
    torch.manual_seed(seed)
    common = dict(interests=INTERESTS, max_length=MAX_LENGTH, initial_logits_seed=seed)
    if variant == "deepmatch_v020":
        return MIND(ITEM_ROWS, 16, variant=variant, user_fields=USER_FIELDS, head_widths=[32, 16], **common)
    if variant == "deepmatch_head":
        return MIND(ITEM_ROWS, 32, variant=variant, user_fields=USER_FIELDS + [
            {"kind": "dense", "name": "activity", "width": 2}], head_widths=[64, 32], **common)
    if variant == "fun_rec":
        return MIND(ITEM_ROWS, 16, variant=variant, side_histories=[CATEGORY_HISTORY], user_fields=USER_FIELDS[:1],
                    head_widths=[32, 24, 16], **common)
    if variant == "torch_rechub":
        return MIND(ITEM_ROWS, 32, variant=variant, user_fields=USER_FIELDS, head_widths=[32],
                    head_activation="none", head_bias=False, history_field="hist_movie_id", item_table="movie_id",
                    **common)
    return MIND(ITEM_ROWS, 16, variant=variant, side_histories=[CATEGORY_HISTORY], user_fields=USER_FIELDS,
                head_widths=[32, 16], behaviour_combine="sum", **common)


def make_sdm(seed: int) -> SDM:
    torch.manual_seed(seed)
    return SDM(ITEM_ROWS, 16, short_length=SHORT_LENGTH, long_length=LONG_LENGTH, variant="deepmatch",
               side_histories=[{"name": "category", "vocabulary_size": CATEGORIES + 1, "embedding_dim": 8}],
               user_fields=USER_FIELDS)


def train(module, world: World, seed: int) -> None:
    if module.architecture == "mind":
        make_batch = mind_training_batch(world.category, world.training_user)
    else:
        make_batch = sdm_training_batch(world.category, world.training_user)
    train_sampled_softmax(module, world.log, make_batch, steps=TRAINING_STEPS, batch_size=48, negatives=64,
                          learning_rate=0.01, seed=seed)


# --- requests and expectations ----------------------------------------------------------------------------------
def history_from_log(world: World, rng: np.random.Generator, length: int) -> List[int]:
    sequence = world.log[int(rng.integers(0, len(world.log)))]
    start = int(rng.integers(0, len(sequence) - length + 1)) if length <= len(sequence) else 0
    rows = list(sequence[start:start + length])
    return rows + [int(r) for r in rng.integers(1, ITEM_ROWS, size=length - len(rows))]


def mind_requests(module: MIND, world: World, rng: np.random.Generator) -> List[Dict]:
    requests = []
    for length in HISTORY_LENGTHS:
        rows = history_from_log(world, rng, length)
        request = {module.history_field: {"ids": [int(external_id(r)) for r in rows]}}
        for field in module.history_fields[1:]:
            request[field.name] = {"ids": [int(world.category[r]) for r in rows]}
        user = int(rng.integers(0, USERS))
        values = world.user_values(user, activity=rng.normal(size=2))
        request.update({f.name: values[f.name] for f in module.user_fields})
        requests.append(request)
    return requests


def sdm_requests(module: SDM, world: World, rng: np.random.Generator) -> List[Dict]:
    requests = []
    for short, long in SDM_LENGTHS:
        rows = history_from_log(world, rng, short + long)
        parts = {"short": rows[long:], "long": rows[:long]}
        request = {}
        for kind, fields in (("short", module.short_fields), ("long", module.long_fields)):
            for index, field in enumerate(fields):
                request[field.name] = {"ids": [int(external_id(r)) if index == 0 else int(world.category[r])
                                               for r in parts[kind]]}
        values = world.user_values(int(rng.integers(0, USERS)))
        request.update({f.name: values[f.name] for f in module.user_fields})
        requests.append(request)
    return requests


def merged_top_k(vectors: np.ndarray, active: int, items: np.ndarray, catalogue: Catalogue, user: int) -> Dict:
    """The exact multi-interest merge over interests 0..active-1 (float64 scores of the float32 vectors)."""
    scores = vectors[:active].astype(np.float64) @ items.astype(np.float64).T      # [active, entries]
    best_interest = np.argmax(scores, axis=0)                                       # first maximum: lower interest
    best = scores[best_interest, np.arange(scores.shape[1])]
    order = np.lexsort((np.arange(len(best)), -best))[:TOP_K]
    return {"user": user, "k": TOP_K, "item_ids": [int(catalogue.external_ids[e]) for e in order],
            "scores": [float(best[e]) for e in order], "interest_of_item": [int(best_interest[e]) for e in order]}


def write_fixture(directory: str, scratch: str, world: World, architecture: str, variant: str, trained: bool,
                  seed: int) -> str:
    name = f"{architecture}_{variant}_{'trained' if trained else 'random'}"
    module = make_mind(variant, seed) if architecture == "mind" else make_sdm(seed)
    randomize(module, torch.Generator().manual_seed(seed))
    if trained:
        train(module, world, seed)
    module.eval()
    catalogue = world.catalogue
    rng = np.random.default_rng(seed + 1)
    requests = mind_requests(module, world, rng) if architecture == "mind" else sdm_requests(module, world, rng)
    layout = "reclite"
    if variant == "torch_rechub":
        layout = "torch_rechub"
        library = RechubStyleMIND([(f["name"], f["vocabulary_size"], f["embedding_dim"]) for f in USER_FIELDS],
                                  "movie_id", ITEM_ROWS, module.hidden_size, INTERESTS, MAX_LENGTH)
        path = os.path.join(scratch, f"{name}.pt")
        torch.save(rechub_state_dict(module), path)
        library.load_state_dict(torch.load(path))
        library.routing_logits = module.initial_logits.clone()
        library.eval()
        module = torch_rechub.build_mind(load_weights(path), {
            "max_length": MAX_LENGTH, "interests": INTERESTS,
            "initial_logits": module.initial_logits.numpy().copy()}, path)
        with torch.inference_mode():
            want = library.user_tower(library.batch(requests, catalogue)).numpy()
        got = np.stack([module.user_vectors(r, catalogue) for r in requests])
        worst = float(np.abs(want - got).max())
        if worst > 2e-6:
            raise AssertionError(f"{name}: the converted module differs from the torch-rechub-style one by {worst}")
    description = describe_multi_interest(module, catalogue, {"fixture": name, "layout": layout,
                                                              "source": "reclite_convert.mind_sdm_fixtures"})
    write_model(description, os.path.join(directory, f"{name}.reclite"))
    items = next(t.array for t in description.tensors if t.name == "catalogue.item_vectors")
    users, top, label_aware = [], [], []
    for index, request in enumerate(requests):
        if architecture == "mind":
            interests, active = module.encode([request], catalogue)
            vectors, active = interests[0].numpy(), int(active[0])
            target = int(catalogue.item_rows[(7 * index) % len(catalogue)])
            label_aware.append({"user": index, "item_id": int(external_id(target)),
                                "user_vector": [float(v) for v in module.label_aware_vector(request, target,
                                                                                             catalogue)]})
        else:
            vectors, active = module.user_vectors(request, catalogue)[None, :], 1
        users.append({"request": request, "user_vectors": [[float(v) for v in row] for row in vectors],
                      "active_interests": active})
        top.append(merged_top_k(vectors, active, items, catalogue, index))
    document = {"name": name, "architecture": architecture, "variant": variant, "model_file": f"{name}.reclite",
                "interests": INTERESTS if architecture == "mind" else 1,
                "user_dim": int(items.shape[1]), "tolerance": TOLERANCE, "users": users, "top_k": top}
    if label_aware:
        document["label_aware"] = label_aware
    with open(os.path.join(directory, f"{name}.expected.json"), "w", encoding="utf-8") as file:
        json.dump(document, file, indent=1)
        file.write("\n")
    return name


FIXTURES = [("mind", "deepmatch_v020"), ("mind", "deepmatch_head"), ("mind", "fun_rec"), ("mind", "torch_rechub"),
            ("mind", "reclite"), ("sdm", "deepmatch")]


def generate(directory: str, fixtures: Sequence = FIXTURES) -> List[str]:
    os.makedirs(directory, exist_ok=True)
    torch.set_num_threads(1)  # the same float reductions on every machine
    world = World()
    names = []
    with tempfile.TemporaryDirectory() as scratch:
        for index, (architecture, variant) in enumerate(fixtures):
            for trained in (False, True):
                names.append(write_fixture(directory, scratch, world, architecture, variant, trained,
                                           900 + 10 * index + int(trained)))
    with open(os.path.join(directory, "manifest.json"), "w", encoding="utf-8") as file:
        json.dump({"fixtures": names}, file, indent=1)
        file.write("\n")
    return names


def main() -> int:
    parser = argparse.ArgumentParser(prog="reclite_convert.mind_sdm_fixtures", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory to create and fill")
    args = parser.parse_args()
    start = time.time()
    names = generate(args.out)
    print(f"{args.out}: {len(names)} MIND/SDM fixtures in {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
