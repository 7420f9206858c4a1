"""Multi-interest recall over an hnsw index, for the C++ tests:
`/usr/bin/python3 -m reclite_convert.multi_interest_index_fixtures --out DIR`.

The fixtures of mind_sdm_fixtures.py have 299 items, where an hnsw search is exact. Here one MIND and one SDM
model, briefly trained, have a catalogue of ITEMS items, large enough that the graph search at its tuned ef
visits a small part of it, so the C++ test can measure how much of the exact multi-interest merge the hnsw path
recovers.

World    ITEMS items in CATEGORIES categories of uneven size; popularity is Zipf-like within a category.
         Users have 2-4 interests (categories, weighted) and sequences of 30-60 distinct items: mostly their
         interests' items by popularity, sometimes more of the previous item's category, rarely anything
         popular. LOG_USERS sequences train the models; the tuning and test users are other sequences of the
         same process (held out).
Models   mind_deepmatch_head (paper routing, dynamic K', K 4, T 20, D 32, DNN head over user id, gender,
         activity and the capsule; raw, unnormalised item vectors) and sdm_deepmatch (DeepMatch semantics, u 32,
         short 10, long 20, items and user vectors L2-normalised). Weights start from
         mind_sdm_fixtures.randomize and are trained TRAINING_STEPS steps of sampled softmax
         (modules.mind.train_sampled_softmax: target plus NEGATIVES shared uniform negatives, so every item row
         is updated a few times, popular ones far more): trained structure in the item table, not isotropic
         noise, in a few seconds.
Index    index_builder.build_index over the model's catalogue item vectors (the file's catalogue.item_vectors,
         in entry order, with its external ids), M 16, ef_construction 200, default ef tuned for recall@10
         >= RECALL_TARGET on the active interests (MIND) or user vectors (SDM) of TUNING_USERS held-out users:
         the queries the index will serve, not item vectors.
Users    TEST_USERS other held-out users with histories of 2-40 items (MIND: K' = 1..4), their requests, the
         float32 user vectors PyTorch computes, and the exact merge.

Files, for NAME in mind_deepmatch_head, sdm_deepmatch:
  NAME.reclite                 the model (self-test samples included)
  NAME.rlindex, NAME.rlindex.hnsw   the item index
  NAME.expected.json = {"name", "architecture", "model_file", "index_file", "interests", "user_dim", "tolerance",
    "index": {"m", "ef_construction", "default_ef", "recall_target", "measured_recall", "recall_queries"},
    "users": [{"request", "excluded_item_ids", "user_vectors": [[...] per interest], "active_interests"}],
    "top_k": [{"user", "k": 100, "item_ids", "scores", "interest_of_item"}]}
  manifest.json = {"fixtures": [NAME, ...]}
top_k is mind_sdm_fixtures.merged_top_k (float64 inner products of the float32 vectors, each item's best
interest, ties to the lower interest, then to the lower entry) with the user's history items excluded, as
serving excludes what a user has seen. Deterministic: fixed seeds, one torch thread, one hnswlib thread.
"""

import argparse
import json
import os
import time
from types import SimpleNamespace
from typing import Dict, List

import numpy as np
import torch

from reclite_convert.catalogue import Catalogue
from reclite_convert.index_builder import build_index
from reclite_convert.index_fixtures import external_ids_for
from reclite_convert.mind_sdm_fixtures import USER_FIELDS, USERS, merged_top_k, randomize
from reclite_convert.model_spec import describe_multi_interest
from reclite_convert.modules.mind import MIND, mind_training_batch, train_sampled_softmax
from reclite_convert.modules.sdm import SDM, sdm_training_batch
from reclite_convert.writer import write_model

ITEMS = 20000         # catalogue entries: item rows 1..ITEMS, row 0 pads
CATEGORIES = 50       # ids 1..50, 0 pads
DIM = 32
INTERESTS = 4
MAX_LENGTH = 20
SHORT_LENGTH, LONG_LENGTH = 10, 20
LOG_USERS = 2000
TUNING_USERS = 400
TEST_USERS = 100
TRAINING_STEPS = 200
NEGATIVES = 2048
TOP_K = 100
TOLERANCE = 1e-5
M, EF_CONSTRUCTION, RECALL_TARGET = 16, 200, 0.98
ZIPF_EXPONENT = 1.0
EMBEDDING_INIT_STD = 1e-4


class World:
    """Categories, Zipf popularity within them, and multi-interest users' sequences (see the module comment)."""

    def __init__(self, seed: int = 41):
        rng = np.random.default_rng(seed)
        shares = np.exp(rng.normal(0.0, 0.7, size=CATEGORIES))
        self.category = np.concatenate([[0], rng.choice(np.arange(1, CATEGORIES + 1), size=ITEMS,
                                                        p=shares / shares.sum())])
        self.rows_of_category, self.cumulative = {}, {}
        for c in range(1, CATEGORIES + 1):
            rows = np.flatnonzero(self.category == c)
            weights = 1.0 / (rng.permutation(len(rows)) + 1.0) ** ZIPF_EXPONENT  # the hit of a category is random
            self.rows_of_category[c], self.cumulative[c] = rows, np.cumsum(weights) / weights.sum()
        self.category_share = np.array([len(self.rows_of_category[c]) for c in range(1, CATEGORIES + 1)], float)
        self.category_share /= self.category_share.sum()
        self.category_cumulative = np.cumsum(self.category_share)
        self.rng = rng
        self.log = [self.sequence()[0] for _ in range(LOG_USERS)]
        self.catalogue = Catalogue(ITEMS + 1, external_ids=external_ids_for(ITEMS, seed), padding_row=0)

    def draw(self, c: int) -> int:
        at = int(np.searchsorted(self.cumulative[c], self.rng.random(), side="right"))
        return int(self.rows_of_category[c][min(at, len(self.rows_of_category[c]) - 1)])

    def sequence(self, length: int = 0):
        """(distinct item rows oldest first, user id): 30-60 items unless `length` is given."""
        rng = self.rng
        count = int(rng.integers(2, 5))
        interests = rng.choice(np.arange(1, CATEGORIES + 1), size=count, replace=False, p=self.category_share)
        weights = np.cumsum(rng.dirichlet(np.full(count, 2.0)))
        length = length or int(rng.integers(30, 61))
        rows, seen = [], set()
        while len(rows) < length:
            draw = rng.random()
            if rows and draw < 0.25:
                category = int(self.category[rows[-1]])  # binge: more of the same category
            elif draw < 0.32:
                category = 1 + min(int(np.searchsorted(self.category_cumulative, rng.random(), side="right")),
                                   CATEGORIES - 1)
            else:
                category = int(interests[min(int(np.searchsorted(weights, rng.random(), side="right")), count - 1)])
            row = self.draw(category)
            if row not in seen:  # a user consumes an item once (serving excludes seen items)
                seen.add(row)
                rows.append(row)
        return rows, int(rng.integers(0, USERS))

    def user_values(self, user: int, activity) -> Dict[str, Dict[str, list]]:
        return {"user_id": {"ids": [user]}, "gender": {"ids": [user % 3]},
                "activity": {"values": [float(v) for v in np.asarray(activity, dtype=np.float32)]}}

    def training_user(self, prefix):
        user = int(prefix[0]) % USERS  # a stable pseudo-user from the prefix's first item
        return self.user_values(user, [len(prefix) / MAX_LENGTH, (user % 5) / 5.0])


def make_module(architecture: str, seed: int):
    torch.manual_seed(seed)
    if architecture == "mind":
        return MIND(ITEMS + 1, DIM, variant="deepmatch_head", interests=INTERESTS, max_length=MAX_LENGTH,
                    initial_logits_seed=seed, user_fields=USER_FIELDS + [
                        {"kind": "dense", "name": "activity", "width": 2}], head_widths=[64, DIM])
    return SDM(ITEMS + 1, DIM, short_length=SHORT_LENGTH, long_length=LONG_LENGTH, variant="deepmatch",
               side_histories=[{"name": "category", "vocabulary_size": CATEGORIES + 1, "embedding_dim": 8}],
               user_fields=USER_FIELDS)


def request_for(module, world: World, rows: List[int], user: int, rng: np.random.Generator) -> Dict:
    ids = [int(world.catalogue.external_ids[r - 1]) for r in rows]  # entry e holds item row e + 1
    values = world.user_values(user, rng.normal(size=2))
    request = {f.name: values[f.name] for f in module.user_fields}
    if module.architecture == "mind":
        request[module.history_field] = {"ids": ids}
        return request
    cut = max(0, len(rows) - max(1, int(round(len(rows) * 0.3))))  # the last 30% are the session
    for kind, fields, part in (("short", module.short_fields, slice(cut, None)),
                               ("long", module.long_fields, slice(0, cut))):
        for index, field in enumerate(fields):
            request[field.name] = {"ids": ids[part] if index == 0 else
                                   [int(world.category[r]) for r in rows[part]]}
    return request


def user_vectors(module, request: Dict, catalogue: Catalogue):
    """(float32 [interests, D], active interests) as the C++ Session::encode_user returns them."""
    if module.architecture == "mind":
        interests, active = module.encode([request], catalogue)
        return interests[0].numpy(), int(active[0])
    return module.user_vectors(request, catalogue)[None, :], 1


def write_fixture(out: str, world: World, architecture: str, seed: int) -> str:
    name = "mind_deepmatch_head" if architecture == "mind" else "sdm_deepmatch"
    module = make_module(architecture, seed)
    generator = torch.Generator().manual_seed(seed)
    randomize(module, generator)
    # Embedding tables start as DeepCTR's SparseFeat does (RandomNormal(0, 1e-4); both variants are DeepMatch's,
    # built on DeepCTR): the item vectors are then what training put there. randomize's N(0, 0.4) rows would
    # stay mostly isotropic noise after a brief training, which is neither realistic nor what an index serves.
    with torch.no_grad():
        for parameter_name, parameter in module.named_parameters():
            if parameter_name.startswith("embeddings."):
                parameter.normal_(0.0, EMBEDDING_INIT_STD, generator=generator)
    make_batch = (mind_training_batch if architecture == "mind" else sdm_training_batch)(world.category,
                                                                                         world.training_user)
    train_sampled_softmax(module, world.log, make_batch, steps=TRAINING_STEPS, batch_size=64, negatives=NEGATIVES,
                          learning_rate=0.01, seed=seed)
    module.eval()
    catalogue = world.catalogue
    description = describe_multi_interest(module, catalogue, {"fixture": name, "layout": "reclite",
                                                              "source": "reclite_convert.multi_interest_index_fixtures"})
    write_model(description, os.path.join(out, f"{name}.reclite"))
    items = next(t.array for t in description.tensors if t.name == "catalogue.item_vectors")

    rng = np.random.default_rng(seed + 1)
    tuning = []
    for _ in range(TUNING_USERS):
        rows, user = world.sequence(int(rng.integers(2, 41)))
        vectors, active = user_vectors(module, request_for(module, world, rows, user, rng), catalogue)
        tuning.append(vectors[:active])
    summary = build_index(items, catalogue.external_ids, os.path.join(out, f"{name}.rlindex"), m=M,
                          ef_construction=EF_CONSTRUCTION, recall_target=RECALL_TARGET,
                          queries=np.concatenate(tuning).astype(np.float32), seed=seed, link_by="angle",
                          serve_k=TOP_K)

    users, top = [], []
    for index in range(TEST_USERS):
        rows, user = world.sequence(int(rng.integers(2, 41)))
        request = request_for(module, world, rows, user, rng)
        vectors, active = user_vectors(module, request, catalogue)
        seen = np.asarray(rows, dtype=np.int64) - 1
        kept = np.ones(ITEMS, dtype=bool)
        kept[seen] = False
        # merged_top_k reads only external_ids; the kept entries stay in entry order, so ties break as in C++.
        merged = merged_top_k(vectors, active, items[kept], SimpleNamespace(external_ids=catalogue.external_ids[kept]),
                              index)
        users.append({"request": request, "excluded_item_ids": [int(catalogue.external_ids[e]) for e in seen],
                      "user_vectors": [[float(v) for v in row] for row in vectors], "active_interests": active})
        top.append(merged)
    document = {"name": name, "architecture": architecture, "model_file": f"{name}.reclite",
                "index_file": f"{name}.rlindex", "interests": INTERESTS if architecture == "mind" else 1,
                "user_dim": DIM, "tolerance": TOLERANCE,
                "index": {"m": M, "ef_construction": EF_CONSTRUCTION, "link_by": "angle", "serve_k": TOP_K,
                          "default_ef": summary.default_ef, "recall_target": summary.recall_target,
                          "measured_recall": summary.measured_recall, "serve_recall": summary.serve_recall,
                          "recall_queries": summary.recall_queries},
                "users": users, "top_k": top}
    with open(os.path.join(out, f"{name}.expected.json"), "w", encoding="utf-8") as file:
        json.dump(document, file, indent=1)
        file.write("\n")
    print(f"{name}: {ITEMS} items, default ef {summary.default_ef}, recall@10 {summary.measured_recall:.4f}, "
          f"recall@{TOP_K} {summary.serve_recall:.4f} on {summary.recall_queries} held-out user vectors"
          f"{'' if summary.target_met else ' (target missed)'}")
    return name


def generate(out: str) -> List[str]:
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)  # the same float reductions on every machine
    world = World()
    names = [write_fixture(out, world, "mind", 1300), write_fixture(out, world, "sdm", 1310)]
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as file:
        json.dump({"fixtures": names}, file, indent=1)
        file.write("\n")
    return names


def main() -> int:
    parser = argparse.ArgumentParser(prog="reclite_convert.multi_interest_index_fixtures",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory to create and fill")
    args = parser.parse_args()
    start = time.time()
    names = generate(args.out)
    print(f"{args.out}: {len(names)} multi-interest index fixtures in {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
