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
window 50, trained on SequenceWorld sessions (the next item follows the last one's neighbourhood and category and
the user's interests; see SequenceWorld and train_sasrec), each from its library's initialisation:
  sasrec            RecBole variant (inner 256, right padding: the incremental append path), sampled softmax
  sasrec_v3         pmixer V3 (inner 64, left padding: every append re-encodes), for comparison, pmixer's BCE
The log gives HitRate@10 / NDCG@10 of each on held-out sessions against popularity (also in manifest.json).
each written as NAME.reclite (self-test samples included), NAME.pt (the reference module's state_dict,
reclite_convert.modules.sasrec.SASRec), NAME.user.ts (torch.jit.trace of SasRecUserSide, batch 1: item rows [1, 50]
int64 (+ length [1] int64 for RecBole) -> [1, 64]), NAME.items.npy; for sasrec also sasrec.rlindex (+ .hnsw),
sasrec.queries.npy (user vectors of the SASRec requests), sasrec.truth.npy, and
  sasrec_requests.bin  1000 SASRec requests in the requests.bin layout with 0 categorical fields, history 50 and 0
                       candidates: held-out SequenceWorld histories of 50 distinct items (external ids, most
                       recent last).
`--only sasrec` adds just these to an existing DIR (manifest.json updated).

requests.bin, little-endian: 8-byte magic b"RLBENCH1", then uint32 count, categorical fields, history length,
candidates; then `count` records of int64: categorical ids [fields], history external ids [history length] (most
recent last), candidate external ids [candidates].
"""

import argparse
import json
import math
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
from reclite_convert.modules.sasrec import SASRec
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
# SASRec training (see train_sasrec): SASREC_TRAIN_STEPS batches of SASREC_BATCH fresh 51-item SequenceWorld
# sessions, each seen once (50 targets per session). The transformer at RecBole's and pmixer's learning rate 1e-3
# (at 1e-2 it collapsed to one user vector, the popularity direction); the item table, updated only in the rows a
# batch touches (SparseAdam), at 1e-2 so that items seen a few dozen times still move.
SASREC_TRAIN_STEPS = 1000
SASREC_BATCH = 32
SASREC_LEARNING_RATE = 0.001
SASREC_EMBEDDING_LEARNING_RATE = 0.01
SASREC_SAMPLED = 1024           # RecBole: sampled-softmax negatives per batch
SASREC_PMIXER_NEGATIVES = 16    # pmixer: BCE negatives per position
SASREC_EVALUATION_USERS = 1000  # held-out sessions for HitRate@10 / NDCG@10
SEQUENCE_NEIGHBOURHOOD = 50     # items per neighbourhood (SequenceWorld)
SEQUENCE_CATEGORY_ZIPF = 0.7    # category traffic ~ 1 / rank^0.7
SEQUENCE_INTERESTS = 3          # interest categories per user
SEQUENCE_MOVES = (0.45, 0.25, 0.22, 0.08)  # next item: neighbourhood, category, interest, explore
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


class SequenceWorld:
    """Synthetic sessions with sequential structure, for SASRec (the World above has none: its histories are i.i.d.
    draws from two categories, so order carries no signal and a transformer learns little beyond popularity).

    The catalogue's categories (CATEGORIES, uniform sizes, the same `category` array as World) are split into
    neighbourhoods of about SEQUENCE_NEIGHBOURHOOD items (a series, an artist, a shop's shelf). Within a category,
    item popularity is Zipf (weight 1 / rank, the rank a random permutation); categories draw traffic by a milder
    Zipf (SEQUENCE_CATEGORY_ZIPF). A user has SEQUENCE_INTERESTS interest categories (drawn by traffic, weights from
    a flat Dirichlet). The first item comes from an interest; then each next item is, by SEQUENCE_MOVES,
      neighbourhood  an item of the previous item's neighbourhood (by popularity)
      category       an item of the previous item's category (by popularity)
      interest       an item of one of the user's interests (by interest weight, then popularity)
      explore        any item, by global popularity
    and an item already in the sequence is redrawn (up to 8 times) as users rarely consume an item twice and the
    benchmark excludes history items. So the next item depends on the last item (its neighbourhood and category)
    and on the user's interests, which only the whole history reveals: what SASRec's attention is for.
    """

    def __init__(self, category, seed):
        self.rng = np.random.default_rng(seed)
        rng = np.random.default_rng(seed + 1)  # the world's structure, independent of how many users are drawn
        rows = np.arange(1, ITEMS + 1)
        item_category = category[1:]
        sizes = np.bincount(item_category, minlength=CATEGORIES)
        # Popularity rank within the category: a random permutation, so which item is the hit is arbitrary.
        rank = np.empty(ITEMS, dtype=np.int64)
        for c in range(CATEGORIES):
            members = np.flatnonzero(item_category == c)
            rank[members] = rng.permutation(len(members)) + 1
        weight = 1.0 / rank
        self.category = category
        # Neighbourhoods: consecutive runs of a random order within each category (ids global: category-major).
        shuffle = rng.random(ITEMS)
        order = np.lexsort((shuffle, item_category))
        place = np.empty(ITEMS, dtype=np.int64)
        place[order] = np.arange(ITEMS) - np.concatenate([[0], np.cumsum(sizes)[:-1]])[item_category[order]]
        per_category = np.maximum(1, sizes // SEQUENCE_NEIGHBOURHOOD)
        local = np.minimum(place // SEQUENCE_NEIGHBOURHOOD, per_category[item_category] - 1)
        first = np.concatenate([[0], np.cumsum(per_category)[:-1]])
        self.neighbourhood = np.concatenate([[-1], first[item_category] + local])  # by item row, -1 = padding
        traffic = 1.0 / (rng.permutation(CATEGORIES) + 1.0) ** SEQUENCE_CATEGORY_ZIPF
        self.traffic = traffic / traffic.sum()
        # Global weight of an item: its category's traffic times its share of the category's popularity.
        category_weight = np.bincount(item_category, weights=weight, minlength=CATEGORIES)
        global_weight = self.traffic[item_category] * weight / category_weight[item_category]
        self.by_neighbourhood = _SegmentSampler(rows, self.neighbourhood[1:], weight)
        self.by_category = _SegmentSampler(rows, item_category, weight)
        self.anywhere = _SegmentSampler(rows, np.zeros(ITEMS, dtype=np.int64), global_weight)

    def sequences(self, count, length):
        """Item rows [count, length], oldest first, distinct within a row (but for rare give-ups)."""
        rng = self.rng
        # Interests: SEQUENCE_INTERESTS categories by traffic without replacement (Gumbel top-k), Dirichlet weights.
        keys = np.log(self.traffic)[None, :] + rng.gumbel(size=(count, CATEGORIES))
        interests = np.argsort(-keys, axis=1)[:, :SEQUENCE_INTERESTS]
        shares = rng.gamma(1.0, size=(count, SEQUENCE_INTERESTS))
        cumulative = np.cumsum(shares / shares.sum(axis=1, keepdims=True), axis=1)
        users = np.arange(count)
        out = np.zeros((count, length), dtype=np.int64)
        moves = np.cumsum(SEQUENCE_MOVES)

        def draw(previous, who):
            n = len(who)
            pick = np.minimum((rng.random(n)[:, None] > cumulative[who]).sum(axis=1), SEQUENCE_INTERESTS - 1)
            interest = self.by_category.draw(interests[who, pick], rng.random(n))
            if previous is None:
                return interest
            move = np.searchsorted(moves, rng.random(n), side="right")
            return np.select(
                [move == 0, move == 1, move == 2],
                [self.by_neighbourhood.draw(self.neighbourhood[previous], rng.random(n)),
                 self.by_category.draw(self.category[previous], rng.random(n)), interest],
                self.anywhere.draw(np.zeros(n, dtype=np.int64), rng.random(n)))

        out[:, 0] = draw(None, users)
        for t in range(1, length):
            previous = out[:, t - 1]
            out[:, t] = draw(previous, users)
            for _ in range(8):
                repeated = np.flatnonzero((out[:, :t] == out[:, t:t + 1]).any(axis=1))
                if not len(repeated):
                    break
                out[repeated, t] = draw(previous[repeated], repeated)
        return out


class _SegmentSampler:
    """Draws, for each of many segment ids at once, an item of that segment with probability proportional to its
    weight: items sorted by segment, key = segment + cumulative share within the segment (last = segment + 1), so
    one searchsorted of segment + u, u in [0, 1), lands inside the segment."""

    def __init__(self, rows, segment, weight):
        order = np.lexsort((rows, segment))
        self.rows, segment, weight = rows[order], segment[order], weight[order].astype(np.float64)
        starts = np.flatnonzero(np.r_[True, segment[1:] != segment[:-1]])
        counts = np.diff(np.r_[starts, len(weight)])
        running = np.cumsum(weight)
        before = np.repeat(running[starts] - weight[starts], counts)  # weight of the earlier segments
        share = (running - before) / np.repeat(np.add.reduceat(weight, starts), counts)
        ends = np.r_[starts[1:], len(weight)] - 1
        share[ends] = 1.0
        self.keys = segment + share

    def draw(self, segment, uniform):
        at = np.searchsorted(self.keys, segment + uniform, side="right")
        return self.rows[np.minimum(at, len(self.rows) - 1)]


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
    # Links by angle: SASRec's raw item rows differ in norm, and an inner-product graph leaves items unreachable
    # (docs/index-format.md); unit rows (DSSM, YouTubeDNN) give the same graph either way. serve_k: tuned for the
    # top-100 the benchmarks ask for, not only for recall@10.
    summary = build_index(vectors, external_ids, os.path.join(out, f"{name}.rlindex"), m=16, ef_construction=200,
                          recall_target=0.98, link_by="angle", serve_k=TOP_K)
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


def init_like_library(module, variant):
    """The library's own initialisation, so training starts where theirs does. RecBole (_init_weights): Linear and
    Embedding weights N(0, 0.02), biases 0, LayerNorm 1 / 0. pmixer (main.py): xavier_normal_ on every parameter
    it applies to (matrices; vectors keep torch's defaults), then row 0 of the item and position tables zeroed."""
    with torch.no_grad():
        if variant == "recbole":
            for sub in module.modules():
                if isinstance(sub, (nn.Linear, nn.Embedding)):
                    sub.weight.normal_(0.0, 0.02)
                if isinstance(sub, nn.Linear):
                    sub.bias.zero_()
                if isinstance(sub, nn.LayerNorm):
                    sub.weight.fill_(1.0)
                    sub.bias.zero_()
        else:
            for parameter in module.parameters():
                if parameter.dim() > 1:
                    nn.init.xavier_normal_(parameter)
            module.item_embedding.weight[0] = 0.0
            module.position_embedding.weight[0] = 0.0


def train_sasrec(module, variant, sequences, popularity, batch_size, log):
    """Next-item training on every position of full windows (inputs = items 0..49, targets = items 1..50).

    Every position at once is exactly RecBole's prefix augmentation (right padding, causal and pad-key masks: the
    output at t of the full window is the output of the t+1-item prefix) and exactly pmixer's training (left-padded
    window, a target at every position); only the windows here are always full.
    RecBole: softmax cross-entropy over all items (RecBole's default loss_type CE) estimated by a sampled softmax,
      for speed: SASREC_SAMPLED negatives per batch, shared by every position, drawn with replacement from
      Q = half popularity, half uniform; every logit, the target's too, minus log(SASREC_SAMPLED * Q), and a
      negative equal to the row's target removed (TensorFlow's sampled_softmax_loss; Jean et al. 2015).
    pmixer: its own objective, binary cross-entropy of each target against uniform items not in the session,
      SASREC_PMIXER_NEGATIVES per position, summed. SASRec.pytorch draws one; BCE against few uniform negatives
      learns the full ranking of 100k items slowly (4 per position: HitRate@10 0.049 against popularity's 0.024;
      16: 0.089). Negatives shared by the whole batch (one matmul) did not train at all: 64 fresh items per batch
      touch too few of the 100k rows for their logits ever to drop.
    """
    items = module.item_embedding
    items.sparse = True  # a dense Adam step over the 100k x 64 table costs more than the rest of the step
    dense = [p for n, p in module.named_parameters() if not n.startswith("item_embedding.")]
    optimizers = [torch.optim.SparseAdam(list(items.parameters()), lr=SASREC_EMBEDDING_LEARNING_RATE),
                  torch.optim.Adam(dense, lr=SASREC_LEARNING_RATE)]
    rng = np.random.default_rng(7)
    proposal = 0.5 * popularity / popularity.sum() + 0.5 / ITEMS
    proposal[0] = 0.0
    cumulative = np.cumsum(proposal)
    log_expected = torch.from_numpy(np.log(np.maximum(SASREC_SAMPLED * proposal, 1e-30))).float()
    module.train()
    steps = len(sequences) // batch_size
    losses = []
    for step in range(steps):
        window = sequences[step * batch_size:(step + 1) * batch_size]
        states = module.sequence_output(torch.from_numpy(window[:, :HISTORY])).reshape(-1, ITEM_WIDTH)
        flat = torch.from_numpy(window[:, 1:].reshape(-1))
        positive = (states * items(flat)).sum(-1)
        if variant == "recbole":
            sampled = np.minimum(np.searchsorted(cumulative, rng.random(SASREC_SAMPLED) * cumulative[-1]), ITEMS)
            sampled = torch.from_numpy(sampled)
            negative = states @ items(sampled).T - log_expected[sampled]
            negative = negative.masked_fill(sampled[None, :] == flat[:, None], -math.inf)
            logits = torch.cat([(positive - log_expected[flat])[:, None], negative], dim=1)
            loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(flat), dtype=torch.long))
        else:
            negatives = rng.integers(1, ITEMS + 1, size=(len(window), HISTORY, SASREC_PMIXER_NEGATIVES))
            for _ in range(4):  # pmixer redraws a negative the user has seen
                seen = (negatives[:, :, :, None] == window[:, None, None, :]).any(axis=-1)
                if not seen.any():
                    break
                negatives[seen] = rng.integers(1, ITEMS + 1, size=int(seen.sum()))
            negative = (states[:, None, :] * items(torch.from_numpy(negatives.reshape(len(flat), -1)))).sum(-1)
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(positive, torch.ones_like(positive))
                    + torch.nn.functional.binary_cross_entropy_with_logits(
                        negative, torch.zeros_like(negative)) * SASREC_PMIXER_NEGATIVES)
        for optimizer in optimizers:
            optimizer.zero_grad()
        loss.backward()
        for optimizer in optimizers:
            optimizer.step()
        losses.append(float(loss))
        if (step + 1) % max(1, steps // 5) == 0:
            log(f"  step {step + 1}/{steps}: loss {np.mean(losses[-20:]):.3f}")
    items.sparse = False
    module.eval()
    return float(np.mean(losses[-20:]))


def ranks_of(scores, histories, targets):
    """Per user, how many items score strictly above the target; scores [users, ITEMS + 1] by item row, the padding
    row and history items excluded (as the benchmark's end to end excludes them; a target is never in its own
    history in SequenceWorld)."""
    scores = scores.copy()
    scores[:, 0] = -np.inf
    np.put_along_axis(scores, histories, -np.inf, axis=1)
    target = np.take_along_axis(scores, targets[:, None], axis=1)
    return (scores > target).sum(axis=1)


def hit_and_ndcg(ranks, k=10):
    hit = ranks < k
    return float(hit.mean()), float((hit / np.log2(ranks + 2.0)).mean())


def evaluate_sasrec(module, histories, targets):
    """(HitRate@10, NDCG@10) of the model's full ranking on held-out 50-item histories (full windows: both variants
    read the last position)."""
    ranks = []
    with torch.inference_mode():
        table = module.item_table()
        for i in range(0, len(histories), 250):
            user = module.sequence_output(torch.from_numpy(histories[i:i + 250]))[:, -1]
            ranks.append(ranks_of((user @ table.T).numpy(), histories[i:i + 250], targets[i:i + 250]))
    return hit_and_ndcg(np.concatenate(ranks))


def evaluate_popularity(popularity, histories, targets):
    """(HitRate@10, NDCG@10) of ranking every user's unseen items by training popularity."""
    scores = np.broadcast_to(popularity.astype(np.float32), (250, len(popularity)))
    ranks = [ranks_of(scores[:len(histories[i:i + 250])], histories[i:i + 250], targets[i:i + 250])
             for i in range(0, len(histories), 250)]
    return hit_and_ndcg(np.concatenate(ranks))


def generate_sasrec(out, manifest, build_indexes, log):
    """The SASRec models, requests and index (see the module docstring); adds to `manifest`."""
    rng = np.random.default_rng(11)
    category = rng.integers(0, CATEGORIES, size=ITEM_VOCABULARY)  # the same catalogue as generate()
    catalogue = Catalogue(ITEM_VOCABULARY, padding_row=0)
    external_ids = catalogue.external_ids.astype(np.int64)
    start = time.time()
    world = SequenceWorld(category, seed=3000)
    # One stream of users: training sessions, then held-out ones for the metrics, then the requests (the same
    # distribution, none of them trained on).
    sequences = world.sequences(SASREC_TRAIN_STEPS * SASREC_BATCH, HISTORY + 1)
    held_out = world.sequences(SASREC_EVALUATION_USERS, HISTORY + 1)
    history = world.sequences(REQUESTS, HISTORY)  # item rows = external ids
    # Popularity = interactions in the training sessions (+1, so unseen items tie below every seen one).
    popularity = np.bincount(sequences.reshape(-1), minlength=ITEM_VOCABULARY).astype(np.float64) + 1.0
    popularity[0] = 0.0
    held_history, held_target = held_out[:, :HISTORY], held_out[:, HISTORY]
    baseline = evaluate_popularity(popularity, held_history, held_target)
    log(f"SequenceWorld: {len(sequences)} training sessions of {HISTORY + 1} items "
        f"({int((popularity > 1).sum())} distinct items), {len(held_out)} held-out, in {time.time() - start:.0f} s; "
        f"popularity on held-out next items: HitRate@10 {baseline[0]:.4f}, NDCG@10 {baseline[1]:.4f}")
    path = os.path.join(out, "sasrec_requests.bin")
    with open(path, "wb") as stream:
        stream.write(MAGIC)
        stream.write(struct.pack("<4I", REQUESTS, 0, HISTORY, 0))
        stream.write(np.ascontiguousarray(history.astype("<i8")).tobytes())
    manifest["sasrec_requests"] = "sasrec_requests.bin"
    history_rows = catalogue.rows_of(history.reshape(-1)).reshape(REQUESTS, HISTORY)
    for seed, (name, variant, inner) in enumerate(SASREC_VARIANTS):
        start = time.time()
        torch.manual_seed(4000 + seed)
        module = make_sasrec(variant, inner)
        init_like_library(module, variant)
        loss = train_sasrec(module, variant, sequences, popularity, SASREC_BATCH, log)
        trained = time.time() - start
        metrics = evaluate_sasrec(module, held_history, held_target)
        log(f"{name} ({variant}): {SASREC_TRAIN_STEPS} steps in {trained:.0f} s, last loss {loss:.3f}; held-out "
            f"next items: HitRate@10 {metrics[0]:.4f}, NDCG@10 {metrics[1]:.4f} (popularity {baseline[0]:.4f}, "
            f"{baseline[1]:.4f})")
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
                 "user_ts": f"{name}.user.ts", "state_dict": f"{name}.pt",
                 "training": {"objective": "sampled softmax" if variant == "recbole" else "bce",
                              "steps": SASREC_TRAIN_STEPS, "batch_sessions": SASREC_BATCH, "seconds": trained,
                              "last_loss": loss, "hit_rate_at_10": metrics[0], "ndcg_at_10": metrics[1],
                              "popularity_hit_rate_at_10": baseline[0], "popularity_ndcg_at_10": baseline[1],
                              "evaluation_users": SASREC_EVALUATION_USERS}}
        log(f"{name}.reclite ({variant}): {size / 1e6:.1f} MB, in {time.time() - start:.0f} s")
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
