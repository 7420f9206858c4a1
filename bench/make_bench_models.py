"""Writes the benchmark models of docs/performance.md: `/usr/bin/python3 bench/make_bench_models.py --out DIR`.

Three models with fixed-seed weights (random; the DSSM and YouTubeDNN then briefly trained, see World) over one 100k-item catalogue (item rows 1..100000, row 0 = padding,
external id = item row, so catalogue entry e is item row e + 1):
  dssm         user tower: 8 categorical fields (vocabulary 1000, width 16) + mean of a 50-item history
               (width 64) = 192 -> 256 -> 128 -> 64 (ReLU, last linear), L2; item tower: item id (64) +
               category (16) -> 128 -> 64, L2
  youtube_dnn  the same user side; item vectors = the item table [100001, 64], L2-normalised
  fm           FM two-tower, D = 32: the same 8 user fields; item id, category and brand on the item side
For each NAME it writes
  NAME.reclite         the converter's model file (self-test samples included)
  NAME.pt              the PyTorch state_dict
  NAME.user.ts         torch.jit.trace of the user side, batch 1: (categorical [1, 8] int64, history [1, 50] int64
                       item rows) -> [1, dim]; fm takes (categorical) only
  NAME.items.npy       item vectors [100000, dim] float32, row = catalogue entry
and also
  fm.score.ts          FM user vector + scores of 1000 candidates: (categorical [1, 8], candidate entries [1000])
                       -> [1000]
  dssm.rlindex (+ .hnsw), youtube_dnn.rlindex (+ .hnsw)   index_builder.build_index, M 16, ef_construction 200,
                       recall@10 target 0.98 -> default ef
  NAME.queries.npy     the user vectors PyTorch computes for the sample requests [1000, 64] (dssm, youtube_dnn)
  NAME.truth.npy       their exact top-100 catalogue entries [1000, 100] int64, ties to the lower entry
  requests.bin         1000 sample requests, read identically by every benchmark program (layout below)
  manifest.json        sizes, default ef, the ef reaching recall@100 >= 0.95 and the recall@100 measured at each

SASRec (issue 4), on the same catalogue (item rows 1..100000, external id = item row), 2 blocks, hidden 64, 2 heads,
window 50, briefly trained (SASREC_TRAIN_STEPS steps of next-item softmax on World sequences):
  sasrec            RecBole variant (inner 256, right padding: the incremental append path)
  sasrec_v3         pmixer V3 (inner 64, left padding: every append re-encodes), for comparison
each written as NAME.reclite (self-test samples included), NAME.pt (the reference module's state_dict,
reclite_convert.modules.sasrec.SASRec), NAME.user.ts (torch.jit.trace of SasRecUserSide, batch 1: item rows [1, 50]
int64 (+ length [1] int64 for RecBole) -> [1, 64]), NAME.items.npy; for sasrec also sasrec.rlindex (+ .hnsw),
sasrec.queries.npy (user vectors of the SASRec requests), sasrec.truth.npy, and
  sasrec_requests.bin  1000 SASRec requests in the requests.bin layout with 0 categorical fields, history 50 and 0
                       candidates: 50-item histories (external ids, most recent last).
`--only sasrec` adds just these to an existing DIR (manifest.json updated).

requests.bin, little-endian: 8-byte magic b"RLBENCH1", then uint32 count, categorical fields, history length,
candidates; then `count` records of int64: categorical ids [fields], history external ids [history length] (most
recent last), candidate external ids [candidates].
"""

import argparse
import json
import os
import struct
import sys
import time

from typing import Optional

import numpy as np
import torch
from torch import nn

from reclite_convert.catalogue import Catalogue
from reclite_convert.index_builder import build_index
from reclite_convert.model_spec import describe
from reclite_convert.model_spec import describe_sasrec
from reclite_convert.modules.sasrec import SASRec, train_next_item
from reclite_convert.modules import (DSSM, CategoricalFeature, FMTwoTower, HistoryFeature, TowerOptions,
                                     YoutubeDNN)
from reclite_convert.requests import item_vectors
from reclite_convert.writer import write_model

ITEMS = 100_000
ITEM_VOCABULARY = ITEMS + 1   # row 0 pads histories
FIELDS = 8
FIELD_VOCABULARY = 1000
FIELD_WIDTH = 16
HISTORY = 50
ITEM_WIDTH = 64
CATEGORIES = 200
BRANDS = 1000
FM_DIM = 32
REQUESTS = 1000
CANDIDATES = 1000
TOP_K = 100
RECALL_FLOOR = 0.95
TRAIN_STEPS = 200
EF_LADDER = (10, 16, 24, 32, 48, 64, 80, 100, 128, 160, 192, 256, 320, 384, 512, 768, 1024)
MAGIC = b"RLBENCH1"
SASREC_LAYERS = 2
SASREC_HEADS = 2
SASREC_TRAIN_STEPS = 150
SASREC_VARIANTS = (("sasrec", "recbole", 256), ("sasrec_v3", "pmixer_v3", ITEM_WIDTH))  # name, variant, inner


def user_fields(width=FIELD_WIDTH):
    return [CategoricalFeature(f"field_{i}", FIELD_VOCABULARY, width) for i in range(FIELDS)]


def make_dssm():
    return DSSM(user_fields() + [HistoryFeature("history", HISTORY, "item_id", pooling="mean")],
                [CategoricalFeature("item_id", ITEM_VOCABULARY, ITEM_WIDTH, ids="item"),
                 CategoricalFeature("category", CATEGORIES, 16)],
                TowerOptions([256, 128, 64], activation="relu", last_activation="none"),
                TowerOptions([128, 64], activation="relu", last_activation="none"), l2_normalize=True)


def make_youtube_dnn():
    return YoutubeDNN(user_fields() + [HistoryFeature("history", HISTORY, "item_id", pooling="mean")],
                      CategoricalFeature("item_id", ITEM_VOCABULARY, ITEM_WIDTH, ids="item"),
                      TowerOptions([256, 128, 64], activation="relu", last_activation="none"),
                      l2_normalize=True, normalize_items=True)


def make_fm():
    return FMTwoTower(user_fields(FM_DIM),
                      [CategoricalFeature("item_id", ITEM_VOCABULARY, FM_DIM, ids="item"),
                       CategoricalFeature("category", CATEGORIES, FM_DIM),
                       CategoricalFeature("brand", BRANDS, FM_DIM)], FM_DIM)


class UserSide(nn.Module):
    """One request, batch 1: categorical [1, FIELDS] ids, history [1, HISTORY] item rows -> user vector."""

    def __init__(self, module, names, history):
        super().__init__()
        self.module = module
        self.names = list(names)
        self.history = history

    def forward(self, categorical: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        batch = {name: categorical[:, i] for i, name in enumerate(self.names)}
        batch[self.history] = history
        return self.module.user_vector(batch)


class FmUserSide(nn.Module):
    def __init__(self, module, names):
        super().__init__()
        self.module = module
        self.names = list(names)

    def forward(self, categorical: torch.Tensor) -> torch.Tensor:
        return self.module.user_vector({name: categorical[:, i] for i, name in enumerate(self.names)})


class FmScores(nn.Module):
    """FM user vector, then <user, item> for candidate catalogue entries, from the precomputed item vectors."""

    def __init__(self, module, names, vectors: np.ndarray):
        super().__init__()
        self.user = FmUserSide(module, names)
        self.register_buffer("item_vectors", torch.from_numpy(vectors.copy()))

    def forward(self, categorical: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        user = self.user(categorical)  # [1, dim]
        return torch.mv(self.item_vectors.index_select(0, candidates), user[0])


def make_sasrec(variant="recbole", inner=256):
    return SASRec(ITEM_VOCABULARY, HISTORY, ITEM_WIDTH, SASREC_HEADS, inner, SASREC_LAYERS, variant=variant)


class SasRecUserSide(nn.Module):
    """One request, batch 1: item rows [1, HISTORY] (padded as the variant pads) and, for right-padded variants
    (RecBole), the history length [1] -> the user vector [1, hidden] of the reference module."""

    def __init__(self, module):
        super().__init__()
        self.module = module
        self.right = module.variant.padding_side == "right"

    def forward(self, rows: torch.Tensor, length: Optional[torch.Tensor] = None) -> torch.Tensor:
        states = self.module.sequence_output(rows)
        if self.right:
            return states[torch.arange(rows.shape[0]), length - 1]
        return states[:, -1]

    def inputs(self, history_rows: np.ndarray):
        """(rows, length) tensors, batch 1, for full histories of HISTORY rows (no padding needed)."""
        rows = torch.from_numpy(np.array(history_rows, dtype=np.int64).reshape(1, -1))  # a writable copy
        return (rows, torch.tensor([rows.shape[1]], dtype=torch.long)) if self.right else (rows,)


class World:
    """Synthetic users with two favourite categories each; 80% of a history comes from them.

    Towers with purely random weights put every user vector in a direction unrelated to the item vectors (the
    user and item towers are independent random maps), a geometry no trained model has: there hnsw reached only
    0.43 recall@100 at the builder's default ef and never 0.95 up to ef 1024. So the DSSM and YouTubeDNN start
    from fixed-seed random weights and take TRAIN_STEPS steps of in-batch softmax on this world, enough to point
    users at the items they consume, as training does.
    """

    def __init__(self, category, seed):
        self.rng = np.random.default_rng(seed)
        self.category = category
        rows = np.arange(1, ITEMS + 1)
        order = np.argsort(category[1:], kind="stable")
        self.sorted_rows = rows[order]  # item rows grouped by category
        self.sizes = np.bincount(category[1:], minlength=CATEGORIES)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])

    def users(self, count):
        """categorical [count, FIELDS] (field_0, field_1 carry the favourite categories), history rows, target rows."""
        rng = self.rng
        favourite = rng.integers(0, CATEGORIES, size=(count, 2))
        categorical = rng.integers(0, FIELD_VOCABULARY, size=(count, FIELDS), dtype=np.int64)
        categorical[:, 0] = favourite[:, 0] * 5 + rng.integers(0, 5, size=count)
        categorical[:, 1] = favourite[:, 1] * 5 + rng.integers(0, 5, size=count)
        shape = (count, HISTORY + 1)
        chosen = favourite[np.arange(count)[:, None], rng.integers(0, 2, size=shape)]
        within = (rng.random(shape) * self.sizes[chosen]).astype(np.int64)
        history = np.where(rng.random(shape) < 0.8, self.sorted_rows[self.starts[chosen] + within],
                           rng.integers(1, ITEMS + 1, size=shape))
        return categorical, history[:, :HISTORY], history[:, HISTORY]


def user_batch(names, categorical, history_rows):
    batch = {name: torch.from_numpy(categorical[:, i]) for i, name in enumerate(names)}
    batch["history"] = torch.from_numpy(history_rows)
    return batch


def train(module, world, names, catalogue, steps, batch_size=256):
    # Sparse gradients for the tables: a dense Adam step over the 100k-row item table costs seconds.
    for table in module.embeddings.values():
        table.sparse = True
    tables = [p for t in module.embeddings.values() for p in t.parameters()]
    dense = [p for n, p in module.named_parameters() if not n.startswith("embeddings.")]
    optimizers = [torch.optim.SparseAdam(tables, lr=0.01), torch.optim.Adam(dense, lr=0.005)]
    module.train()
    for _ in range(steps):
        categorical, history, target = world.users(batch_size)
        users = module.user_vector(user_batch(names, categorical, history))
        items = module.item_vector(catalogue.item_batch(module.item_fields, target - 1))  # entry = row - 1
        loss = torch.nn.functional.cross_entropy(users @ items.T / 0.1, torch.arange(batch_size))
        for optimizer in optimizers:
            optimizer.zero_grad()
        loss.backward()
        for optimizer in optimizers:
            optimizer.step()
    for table in module.embeddings.values():
        table.sparse = False
    module.eval()
    return float(loss)


def make_requests(world, seed: int):
    """categorical [REQUESTS, FIELDS], history external ids [REQUESTS, HISTORY], candidates [REQUESTS, CANDIDATES]."""
    categorical, history, _ = world.users(REQUESTS)  # external id = item row
    rng = np.random.default_rng(seed)
    candidates = np.stack([rng.choice(ITEMS, size=CANDIDATES, replace=False) + 1 for _ in range(REQUESTS)])
    return categorical, history, candidates.astype(np.int64)


def write_requests(path, categorical, history, candidates):
    with open(path, "wb") as stream:
        stream.write(MAGIC)
        stream.write(struct.pack("<4I", REQUESTS, FIELDS, HISTORY, CANDIDATES))
        records = np.concatenate([categorical, history, candidates], axis=1).astype("<i8")
        stream.write(np.ascontiguousarray(records).tobytes())


def exact_top_k(vectors, queries, k):
    """Entries by decreasing inner product (float64), ties to the lower entry."""
    scores = queries.astype(np.float64) @ vectors.astype(np.float64).T
    result = np.empty((queries.shape[0], k), dtype=np.int64)
    for row in range(queries.shape[0]):
        top = np.argpartition(-scores[row], k)[:k + 1]
        order = np.lexsort((top, -scores[row, top]))
        result[row] = top[order][:k]
    return result


def recall_at_ef(graph_path, dim, count, queries, truth, ef):
    import hnswlib

    index = hnswlib.Index(space="ip", dim=dim)
    index.load_index(graph_path, max_elements=count)
    index.set_num_threads(1)
    index.set_ef(ef)
    labels, _ = index.knn_query(queries, k=truth.shape[1])
    return sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(labels, truth)) / float(truth.size)


def index_model(out, name, vectors, external_ids, queries, log):
    start = time.time()
    summary = build_index(vectors, external_ids, os.path.join(out, f"{name}.rlindex"), m=16, ef_construction=200,
                          recall_target=0.98)
    log(f"{name}.rlindex: default ef {summary.default_ef} (recall@10 {summary.measured_recall:.4f} on the "
        f"builder's queries) in {time.time() - start:.0f} s")
    truth = exact_top_k(vectors, queries, TOP_K)
    np.save(os.path.join(out, f"{name}.truth.npy"), truth)
    measured = {}
    default_recall = recall_at_ef(summary.hnsw_path, vectors.shape[1], len(vectors), queries, truth,
                                  summary.default_ef)
    ef_floor = None
    for ef in EF_LADDER:
        if ef < TOP_K:
            continue  # hnswlib searches with max(ef, k)
        recall = recall_at_ef(summary.hnsw_path, vectors.shape[1], len(vectors), queries, truth, ef)
        measured[str(ef)] = recall
        if recall >= RECALL_FLOOR:
            ef_floor = ef
            break
    log(f"{name}: recall@100 at default ef {summary.default_ef}: {default_recall:.4f}; recall@100 >= "
        f"{RECALL_FLOOR} at ef {ef_floor} ({measured.get(str(ef_floor), float('nan')):.4f})")
    return {"index": f"{name}.rlindex", "hnsw": f"{name}.rlindex.hnsw", "default_ef": summary.default_ef,
            "default_ef_recall_at_10": summary.measured_recall, "default_ef_recall_at_100": default_recall,
            "ef_recall_95": ef_floor, "recall_at_100_by_ef": measured}


def generate_sasrec(out, manifest, build_indexes, log):
    """The SASRec models, requests and index (see the module docstring); adds to `manifest`."""
    rng = np.random.default_rng(11)
    category = rng.integers(0, CATEGORIES, size=ITEM_VOCABULARY)  # the same catalogue as generate()
    catalogue = Catalogue(ITEM_VOCABULARY, padding_row=0)
    external_ids = catalogue.external_ids.astype(np.int64)
    _, history, _ = World(category, seed=3000).users(REQUESTS)  # item rows = external ids
    history = history.astype(np.int64)
    path = os.path.join(out, "sasrec_requests.bin")
    with open(path, "wb") as stream:
        stream.write(MAGIC)
        stream.write(struct.pack("<4I", REQUESTS, 0, HISTORY, 0))
        stream.write(np.ascontiguousarray(history.astype("<i8")).tobytes())
    manifest["sasrec_requests"] = "sasrec_requests.bin"
    _, train_history, train_target = World(category, seed=3001).users(4000)
    sequences = [list(map(int, h)) + [int(t)] for h, t in zip(train_history, train_target)]
    history_rows = catalogue.rows_of(history.reshape(-1)).reshape(REQUESTS, HISTORY)
    for seed, (name, variant, inner) in enumerate(SASREC_VARIANTS):
        start = time.time()
        torch.manual_seed(4000 + seed)
        module = make_sasrec(variant, inner)
        train_next_item(module, sequences, steps=SASREC_TRAIN_STEPS, batch_size=64, learning_rate=0.005,
                        seed=5000 + seed)
        module.eval()
        description = describe_sasrec(module, catalogue, {"source": "bench/make_bench_models.py", "benchmark": name})
        size = write_model(description, os.path.join(out, f"{name}.reclite"))
        vectors = next(t.array for t in description.tensors if t.name == "catalogue.item_vectors")
        np.save(os.path.join(out, f"{name}.items.npy"), vectors)
        torch.save(module.state_dict(), os.path.join(out, f"{name}.pt"))
        side = SasRecUserSide(module).eval()
        with torch.inference_mode():
            traced = torch.jit.trace(side, side.inputs(history_rows[0]), check_trace=True)
            user = np.concatenate([side(*side.inputs(rows)).numpy() for rows in history_rows])
            reference = module.user_vector([list(map(int, rows)) for rows in history_rows[:8]]).numpy()
        worst = float(np.abs(reference - user[:8]).max())
        if worst > 1e-5:
            raise AssertionError(f"{name}: SasRecUserSide differs from SASRec.user_vector by {worst}")
        traced.save(os.path.join(out, f"{name}.user.ts"))
        entry = {"model": f"{name}.reclite", "model_bytes": size, "architecture": "sasrec", "variant": variant,
                 "layers": SASREC_LAYERS, "heads": SASREC_HEADS, "inner": inner, "max_length": HISTORY,
                 "user_dim": int(user.shape[1]), "item_dim": int(vectors.shape[1]), "items_npy": f"{name}.items.npy",
                 "user_ts": f"{name}.user.ts", "state_dict": f"{name}.pt"}
        log(f"{name}.reclite ({variant}): {size / 1e6:.1f} MB, {SASREC_TRAIN_STEPS} training steps, in "
            f"{time.time() - start:.0f} s")
        if name == "sasrec":
            queries = np.ascontiguousarray(user, dtype=np.float32)
            np.save(os.path.join(out, f"{name}.queries.npy"), queries)
            if build_indexes:
                entry.update(index_model(out, name, vectors, external_ids, queries, log))
                entry["index_bytes"] = os.path.getsize(os.path.join(out, entry["index"]))
                entry["hnsw_bytes"] = os.path.getsize(os.path.join(out, entry["hnsw"]))
        manifest["models"][name] = entry
        del module, description


def write_manifest(out, manifest):
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as stream:
        json.dump(manifest, stream, indent=1)
        stream.write("\n")


def generate(out, build_indexes=True):
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)

    def log(message):
        print(f"make_bench_models: {message}", flush=True)

    rng = np.random.default_rng(11)
    category = rng.integers(0, CATEGORIES, size=ITEM_VOCABULARY)
    brand = rng.integers(0, BRANDS, size=ITEM_VOCABULARY)
    catalogue = Catalogue(ITEM_VOCABULARY, padding_row=0, item_features={"category": category, "brand": brand})
    external_ids = catalogue.external_ids.astype(np.int64)
    categorical, history, candidates = make_requests(World(category, seed=12), seed=13)
    write_requests(os.path.join(out, "requests.bin"), categorical, history, candidates)
    names = [f"field_{i}" for i in range(FIELDS)]
    history_rows = torch.from_numpy(catalogue.rows_of(history.reshape(-1)).reshape(REQUESTS, HISTORY))
    manifest = {"requests": "requests.bin", "request_count": REQUESTS, "fields": FIELDS, "history": HISTORY,
                "candidates": CANDIDATES, "items": ITEMS, "models": {}}

    for seed, (name, make) in enumerate([("dssm", make_dssm), ("youtube_dnn", make_youtube_dnn), ("fm", make_fm)]):
        start = time.time()
        torch.manual_seed(1000 + seed)
        module = make()
        if name != "fm":
            loss = train(module, World(category, seed=2000 + seed), names, catalogue, TRAIN_STEPS)
            log(f"{name}: {TRAIN_STEPS} training steps, last in-batch softmax loss {loss:.3f}")
        module.eval()
        description = describe(module, catalogue, {"source": "bench/make_bench_models.py", "benchmark": name})
        model_path = os.path.join(out, f"{name}.reclite")
        size = write_model(description, model_path)
        vectors = next(t.array for t in description.tensors if t.name == "catalogue.item_vectors")
        np.save(os.path.join(out, f"{name}.items.npy"), vectors)
        torch.save(module.state_dict(), os.path.join(out, f"{name}.pt"))
        example = torch.from_numpy(categorical[:1].copy())
        with torch.inference_mode():
            if name == "fm":
                side = FmUserSide(module, names).eval()
                traced = torch.jit.trace(side, (example,), check_trace=True)
                user = side(torch.from_numpy(categorical)).numpy()
                scorer = FmScores(module, names, vectors).eval()
                entries = torch.from_numpy(candidates[0] - 1)
                scores = torch.jit.trace(scorer, (example, entries), check_trace=True)
                scores.save(os.path.join(out, "fm.score.ts"))
            else:
                side = UserSide(module, names, "history").eval()
                traced = torch.jit.trace(side, (example, history_rows[:1]), check_trace=True)
                user = side(torch.from_numpy(categorical), history_rows).numpy()
        traced.save(os.path.join(out, f"{name}.user.ts"))
        entry = {"model": f"{name}.reclite", "model_bytes": size, "architecture": module.architecture,
                 "user_dim": int(user.shape[1]), "item_dim": int(vectors.shape[1]),
                 "items_npy": f"{name}.items.npy", "user_ts": f"{name}.user.ts", "state_dict": f"{name}.pt"}
        log(f"{name}.reclite: {size / 1e6:.1f} MB, user dim {user.shape[1]}, in {time.time() - start:.0f} s")
        if name != "fm":
            queries = np.ascontiguousarray(user, dtype=np.float32)
            np.save(os.path.join(out, f"{name}.queries.npy"), queries)
            if build_indexes:
                entry.update(index_model(out, name, vectors, external_ids, queries, log))
                entry["index_bytes"] = os.path.getsize(os.path.join(out, entry["index"]))
                entry["hnsw_bytes"] = os.path.getsize(os.path.join(out, entry["hnsw"]))
        manifest["models"][name] = entry
        del module, description

    generate_sasrec(out, manifest, build_indexes, log)
    write_manifest(out, manifest)
    return manifest


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory to create and fill")
    parser.add_argument("--no-index", action="store_true", help="skip the hnsw indexes (quick checks)")
    parser.add_argument("--only", choices=["sasrec"], help="add only these models to an existing DIR")
    args = parser.parse_args()
    start = time.time()
    if args.only == "sasrec":
        torch.set_num_threads(1)
        with open(os.path.join(args.out, "manifest.json"), encoding="utf-8") as stream:
            manifest = json.load(stream)
        generate_sasrec(args.out, manifest, not args.no_index,
                        lambda message: print(f"make_bench_models: {message}", flush=True))
        write_manifest(args.out, manifest)
    else:
        generate(args.out, build_indexes=not args.no_index)
    print(f"make_bench_models: wrote {args.out} in {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
