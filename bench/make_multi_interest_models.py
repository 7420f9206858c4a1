"""Writes the MIND and SDM benchmark models (issue 5): `/usr/bin/python3 bench/make_multi_interest_models.py --out DIR`.

The catalogue, item categories and synthetic World are make_bench_models.py's (100,000 items, item rows 1..100000,
row 0 = padding, external id = item row, 200 categories; category ids are stored + 1 so that 0 pads). Users have
three favourite categories and behave in sessions of 10 items, 80% of a session from one favourite, so that the
interests MIND routes and the session SDM's short term reads both exist in the data.

  mind   the converter's MIND (reclite_convert.modules.mind, variant "reclite": routing over capsules, pads zeroed
         after the softmax, dynamic K', frozen truncated-normal initial logits), K = 4, hidden 64, 3 routing
         iterations, history 50; behaviour = item row + category row (both width 64, summed); head over
         [4 profile fields (vocabulary 1000, width 16) ; c_k] = 128 -> 128 -> 64 (ReLU, last linear); item vectors
         = raw item table rows.
  sdm    the converter's SDM (reclite_convert.modules.sdm, variant "deepmatch": TF1 gate order, forget bias 1.0,
         2 LSTM layers sharing the cell), units 64, 2 heads, short 10, long 50; histories of item (64) and
         category (16); the same 4 profile fields; user and item vectors L2-normalised.
Both are trained briefly (TRAIN_STEPS steps of in-batch softmax, batch 256, on World users: the last 60 behaviours
predict the 61st; item rows start clustered by category, see seed_item_table), so that item and interest vectors
have the geometry of a trained model, then converted with self-test samples. For NAME in mind, sdm it writes
  NAME.reclite          the converter's model file
  NAME.pt               the module's state_dict; NAME.json its constructor options (NAME(**options) rebuilds it)
  NAME.items.npy        item vectors [100000, 64] float32, row = catalogue entry
  NAME.queries.npy      PyTorch's user vectors of the 1000 requests: mind [1000, 4 * 64] (all K interests,
                        inactive ones zeroed), sdm [1000, 64]; mind.active.npy: K' per request [1000] int64
  NAME.rlindex (+ .hnsw) index_builder.build_index (M 16, ef_construction 200, recall@10 target 0.98, ef tuned on
                        the request user vectors: every interest for MIND)
  NAME.user.ts          torch.jit.trace of MindUserSide / SdmUserSide (batch 1, full windows; see below), when the
                        trace reproduces the module (it does for both at the time of writing)
and
  multi_interest_requests.bin   1000 requests (layout below), read by bench_multi_interest, pytorch_bench.py
                                and bench_libtorch: columns profile [4], items [60] (external ids, most recent
                                last), categories [60] (category id + 1 of each item). MIND's history is the last 50
                                items; SDM's short term the last 10, its long term the 50 before them.
  manifest.json         adds "multi_interest" {sizes, field names, model entries, training losses}; created when
                        DIR has none (standalone use), merged into make_bench_models.py's otherwise.

multi_interest_requests.bin, little-endian: 8-byte magic b"RLBENCH2", uint32 count, uint32 columns; per column a
uint32 width and a 32-byte NUL-padded name; then `count` records of int64, the columns' values in column order.
"""

import argparse
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_bench_models as bench_models  # noqa: E402  (the catalogue, World and index helpers; not copied)

from reclite_convert.catalogue import Catalogue  # noqa: E402
from reclite_convert.index_builder import build_index  # noqa: E402
from reclite_convert.model_spec import describe_multi_interest  # noqa: E402
from reclite_convert.modules.mind import MIND  # noqa: E402
from reclite_convert.modules.sdm import SDM  # noqa: E402
from reclite_convert.writer import write_model  # noqa: E402

ITEMS = bench_models.ITEMS
ITEM_ROWS = bench_models.ITEM_VOCABULARY
CATEGORY_IDS = bench_models.CATEGORIES + 1   # stored id = category + 1; 0 pads side histories
PROFILE_FIELDS = 4
PROFILE_NAMES = [f"field_{i}" for i in range(PROFILE_FIELDS)]
DIM = 64
INTERESTS = 4
ROUTING_ITERATIONS = 3
MIND_HISTORY = 50
SDM_HEADS = 2
SHORT, LONG = 10, 50
SEQUENCE = LONG + SHORT      # behaviours per request: SDM's long term then its session
SESSION = 10                 # World users switch favourite every SESSION behaviours
FAVOURITES = 3
SDM_CATEGORY_WIDTH = 16
MIND_HEAD = [128, DIM]
REQUESTS = bench_models.REQUESTS
TRAIN_STEPS = 150
CENTROID_STD, ITEM_NOISE_STD = 0.1, 0.05   # seed_item_table; 0.1 is the converter's embedding init std
BATCH = 256
MAGIC = b"RLBENCH2"
NAME_BYTES = 32


# --- the modules and the wrappers the peers call ------------------------------------------------------------------
# The batch-1 peers time the model alone, as for the other models: their windows are tensors built before timing,
# where the reference modules' windows() turn Python lists into tensors inside the forward. These subclasses let
# windows() take the prepared tensors; everything after it is the reference module's own code.
class BenchMIND(MIND):
    """MIND whose windows() also accepts the (rows per field, valid slots, counts) tuple itself."""

    def windows(self, histories):
        if isinstance(histories, tuple):
            return histories
        return super().windows(histories)


class BenchSDM(SDM):
    """SDM whose windows() also accepts {first field name: (rows per field, counts)} itself."""

    def windows(self, histories, fields, length):
        if isinstance(histories, dict) and fields[0].name in histories:
            return histories[fields[0].name]
        return super().windows(histories, fields, length)


def mind_options():
    return dict(item_rows=ITEM_ROWS, hidden_size=DIM, interests=INTERESTS, max_length=MIND_HISTORY,
                variant="reclite", behaviour_combine="sum", routing_iterations=ROUTING_ITERATIONS,
                side_histories=[{"name": "history_category", "table": "category", "vocabulary_size": CATEGORY_IDS}],
                user_fields=[{"kind": "categorical", "name": name, "vocabulary_size": bench_models.FIELD_VOCABULARY,
                              "embedding_dim": bench_models.FIELD_WIDTH} for name in PROFILE_NAMES],
                head_widths=MIND_HEAD, initial_logits_seed=5)


def sdm_options():
    return dict(item_rows=ITEM_ROWS, units=DIM, short_length=SHORT, long_length=LONG, variant="deepmatch",
                attention_heads=SDM_HEADS,
                side_histories=[{"name": "category", "vocabulary_size": CATEGORY_IDS,
                                 "embedding_dim": SDM_CATEGORY_WIDTH}],
                user_fields=[{"kind": "categorical", "name": name, "vocabulary_size": bench_models.FIELD_VOCABULARY,
                              "embedding_dim": bench_models.FIELD_WIDTH} for name in PROFILE_NAMES])


def make_mind(options=None):
    return BenchMIND(**(options or mind_options()))


def make_sdm(options=None):
    return BenchSDM(**(options or sdm_options()))


def profile_batch(profile: torch.Tensor):
    return {name: profile[:, i] for i, name in enumerate(PROFILE_NAMES)}


class MindUserSide(nn.Module):
    """One request, batch 1, full window: profile [1, 4] ids, item rows [1, 50], category ids [1, 50] -> the K
    interest vectors [1, K, 64] of MIND.interest_vectors (inactive interests zeroed as the module does)."""

    def __init__(self, module: BenchMIND):
        super().__init__()
        self.module = module

    def forward(self, profile: torch.Tensor, items: torch.Tensor, categories: torch.Tensor) -> torch.Tensor:
        m = self.module
        rows = {m.history_fields[0].name: items, m.history_fields[1].name: categories}
        valid = torch.ones(items.shape, dtype=torch.bool)   # a full window has no pads
        counts = torch.full((items.shape[0],), items.shape[1], dtype=torch.long)
        return m.interest_vectors((rows, valid, counts), profile_batch(profile))[0]


class SdmUserSide(nn.Module):
    """One request, batch 1, full windows: profile [1, 4], short items and categories [1, 10], long items and
    categories [1, 50] (item rows, category ids) -> the user vector [1, 64] of SDM.user_vector_batch."""

    def __init__(self, module: BenchSDM):
        super().__init__()
        self.module = module

    def forward(self, profile, short_items, short_categories, long_items, long_categories) -> torch.Tensor:
        m = self.module
        count = torch.full((short_items.shape[0],), 1, dtype=torch.long)
        windows = {m.short_fields[0].name: ({m.short_fields[0].name: short_items,
                                             m.short_fields[1].name: short_categories}, count * short_items.shape[1]),
                   m.long_fields[0].name: ({m.long_fields[0].name: long_items,
                                            m.long_fields[1].name: long_categories}, count * long_items.shape[1])}
        return m.user_vector_batch(windows, profile_batch(profile))


# --- the world ----------------------------------------------------------------------------------------------------
def sample_users(world, count):
    """profile [count, 4], behaviours [count, SEQUENCE] item rows (oldest first), next item [count].

    As make_bench_models.World.users (whose category layout it reads), but with three favourites and sessions:
    behaviour t (and the next item, which continues the last session) comes with probability 0.8 from the
    favourite of its session, else from anywhere. field_0 and field_1 carry two favourites, as there.
    """
    rng = world.rng
    favourite = rng.integers(0, bench_models.CATEGORIES, size=(count, FAVOURITES))
    profile = rng.integers(0, bench_models.FIELD_VOCABULARY, size=(count, PROFILE_FIELDS), dtype=np.int64)
    profile[:, 0] = favourite[:, 0] * 5 + rng.integers(0, 5, size=count)
    profile[:, 1] = favourite[:, 1] * 5 + rng.integers(0, 5, size=count)
    sessions = rng.integers(0, FAVOURITES, size=(count, SEQUENCE // SESSION))
    session_of = np.minimum(np.arange(SEQUENCE + 1) // SESSION, SEQUENCE // SESSION - 1)
    chosen = favourite[np.arange(count)[:, None], sessions[:, session_of]]               # [count, SEQUENCE + 1]
    within = (rng.random(chosen.shape) * world.sizes[chosen]).astype(np.int64)
    rows = np.where(rng.random(chosen.shape) < 0.8, world.sorted_rows[world.starts[chosen] + within],
                    rng.integers(1, ITEMS + 1, size=chosen.shape))
    return profile, rows[:, :SEQUENCE].astype(np.int64), rows[:, SEQUENCE].astype(np.int64)


def mind_histories(rows, category_id):
    recent = rows[:, SEQUENCE - MIND_HISTORY:]
    return [{"history": list(map(int, r)), "history_category": list(map(int, category_id[r]))} for r in recent]


def sdm_histories(rows, category_id):
    histories = []
    for r in rows:
        long, short = r[:LONG], r[LONG:]
        histories.append({"short_item": list(map(int, short)), "short_category": list(map(int, category_id[short])),
                          "long_item": list(map(int, long)), "long_category": list(map(int, category_id[long]))})
    return histories


def seed_item_table(module, category_id, seed):
    """Item row = a random centroid of its category (std CENTROID_STD) + item noise (std ITEM_NOISE_STD).

    A minute of training cannot shape 100,000 item rows from random: in 150 steps of 256 users an item is a target
    0.4 times on average, and trying it (random rows, 150 steps) left the in-batch loss at ln(256), with no
    geometry at all. The rows a trained model ends with in this world are clustered by category (the only thing
    that predicts the next item), so the tables start from that structure and training aligns the user side with
    it, and refines the rows: the loss then falls from 5.7 to about 3.5 (MIND) and from 8.5 to under 3 (SDM).
    """
    generator = torch.Generator().manual_seed(seed)
    centroids = torch.randn(CATEGORY_IDS, DIM, generator=generator) * CENTROID_STD
    with torch.no_grad():
        table = module.embeddings[module.item_table_name].weight
        table.copy_(centroids[torch.from_numpy(category_id)] +
                    torch.randn(table.shape, generator=generator) * ITEM_NOISE_STD)


def train(module, world, category_id, steps, log):
    """In-batch softmax: each user's vector against the next items of the batch (MIND: its label-aware vector,
    as MIND trains). Sparse gradients for the tables: a dense Adam step over the 100k-row item table costs more
    than the forward pass. Learning rates: at 0.05 / 0.01 the MIND loss rose again after 25 steps."""
    for table in module.embeddings.values():
        table.sparse = True
    tables = [p for t in module.embeddings.values() for p in t.parameters()]
    dense = [p for n, p in module.named_parameters() if not n.startswith("embeddings.")]
    optimizers = [torch.optim.SparseAdam(tables, lr=0.01), torch.optim.Adam(dense, lr=0.003)]
    item_table = module.embeddings[module.item_table_name]
    module.train()
    started, loss = time.time(), None
    for step in range(steps):
        profile, rows, target = sample_users(world, BATCH)
        users = profile_batch(torch.from_numpy(profile))
        items = item_table(torch.from_numpy(target))                       # through the table: sparse gradient
        if module.architecture == "mind":
            interests, active = module.interest_vectors(mind_histories(rows, category_id), users)
            vectors = module.label_aware(interests, active, items)
            temperature = 0.1   # raw inner products, as make_bench_models.train
        else:
            vectors = module.user_vector_batch(sdm_histories(rows, category_id), users)
            items = F.normalize(items, dim=1)
            temperature = 0.05  # DeepMatch SDM's, on cosine scores
        loss = F.cross_entropy(vectors @ items.T / temperature, torch.arange(BATCH))
        for optimizer in optimizers:
            optimizer.zero_grad()
        loss.backward()
        for optimizer in optimizers:
            optimizer.step()
        if step % 50 == 0 or step + 1 == steps:
            log(f"{module.architecture}: step {step}, in-batch softmax loss {float(loss):.3f} "
                f"({time.time() - started:.0f} s)")
    for table in module.embeddings.values():
        table.sparse = False
    module.eval()
    return float(loss)


# --- requests -----------------------------------------------------------------------------------------------------
def write_column_requests(path, columns):
    """columns: [(name, int64 array [count, width])] -> the RLBENCH2 file (module docstring)."""
    count = len(columns[0][1])
    with open(path, "wb") as stream:
        stream.write(MAGIC)
        stream.write(struct.pack("<2I", count, len(columns)))
        for name, values in columns:
            encoded = name.encode("ascii")
            if len(encoded) >= NAME_BYTES or len(values) != count:
                raise ValueError(f"column {name}: name too long or wrong row count")
            stream.write(struct.pack("<I", values.shape[1]) + encoded.ljust(NAME_BYTES, b"\0"))
        records = np.concatenate([values for _, values in columns], axis=1).astype("<i8")
        stream.write(np.ascontiguousarray(records).tobytes())


def read_column_requests(path):
    """{name: int64 array [count, width]} of an RLBENCH2 file."""
    with open(path, "rb") as stream:
        if stream.read(8) != MAGIC:
            raise SystemExit(f"{path}: not an RLBENCH2 request file")
        count, column_count = struct.unpack("<2I", stream.read(8))
        layout = []
        for _ in range(column_count):
            width, = struct.unpack("<I", stream.read(4))
            layout.append((stream.read(NAME_BYTES).rstrip(b"\0").decode("ascii"), width))
        records = np.frombuffer(stream.read(), dtype="<i8").reshape(count, sum(w for _, w in layout))
    columns, at = {}, 0
    for name, width in layout:
        columns[name] = records[:, at:at + width]
        at += width
    return columns


def request_tensors(columns, category_id=None):
    """Per request, batch-1 tensors for MindUserSide and SdmUserSide: (mind inputs, sdm inputs). Item rows =
    external ids (Catalogue(ITEM_ROWS) of make_bench_models); categories as stored."""
    mind, sdm = [], []
    for profile, items, categories in zip(columns["profile"], columns["items"], columns["categories"]):
        def tensor(values):
            return torch.from_numpy(np.array(values, dtype=np.int64).reshape(1, -1))  # writable copy
        mind.append((tensor(profile), tensor(items[SEQUENCE - MIND_HISTORY:]),
                     tensor(categories[SEQUENCE - MIND_HISTORY:])))
        sdm.append((tensor(profile), tensor(items[LONG:]), tensor(categories[LONG:]), tensor(items[:LONG]),
                    tensor(categories[:LONG])))
    return mind, sdm


# --- files --------------------------------------------------------------------------------------------------------
def write_model_files(out, name, module, catalogue, inputs, side, log):
    """NAME.reclite, .pt, .json, .items.npy, .queries.npy (and .user.ts when the trace reproduces the module);
    returns (manifest entry, queries)."""
    description = describe_multi_interest(module, catalogue, {"source": "bench/make_multi_interest_models.py",
                                                              "benchmark": name})
    size = write_model(description, os.path.join(out, f"{name}.reclite"))
    vectors = next(t.array for t in description.tensors if t.name == "catalogue.item_vectors")
    np.save(os.path.join(out, f"{name}.items.npy"), vectors)
    torch.save(module.state_dict(), os.path.join(out, f"{name}.pt"))
    with open(os.path.join(out, f"{name}.json"), "w", encoding="utf-8") as stream:
        json.dump(module.options(), stream, indent=1)
    with torch.inference_mode():
        user = np.stack([side(*request).reshape(-1).numpy() for request in inputs]).astype(np.float32)
    entry = {"model": f"{name}.reclite", "model_bytes": size, "architecture": module.architecture,
             "items_npy": f"{name}.items.npy", "queries": f"{name}.queries.npy", "state_dict": f"{name}.pt",
             "options": f"{name}.json", "item_dim": int(vectors.shape[1])}
    np.save(os.path.join(out, f"{name}.queries.npy"), np.ascontiguousarray(user))
    try:
        with torch.inference_mode():
            traced = torch.jit.trace(side, inputs[0], check_trace=True)
            worst = max(float((traced(*r) - side(*r)).abs().max()) for r in inputs[:20])
        if worst > 1e-6:
            raise AssertionError(f"differs from eager by {worst}")
        traced.save(os.path.join(out, f"{name}.user.ts"))
        entry["user_ts"] = f"{name}.user.ts"
    except Exception as error:  # tracing is optional: libtorch then has no row for this model
        log(f"{name}: no TorchScript ({type(error).__name__}: {str(error)[:200]})")
    return entry, vectors, user


def generate(out, build_indexes=True, train_steps=TRAIN_STEPS):
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)

    def log(message):
        print(f"make_multi_interest_models: {message}", flush=True)

    # make_bench_models' catalogue: the same seed gives the same item categories.
    category = np.random.default_rng(11).integers(0, bench_models.CATEGORIES, size=ITEM_ROWS)
    category_id = (category + 1).astype(np.int64)
    category_id[0] = 0
    catalogue = Catalogue(ITEM_ROWS, padding_row=0)
    external_ids = catalogue.external_ids.astype(np.int64)
    profile, rows, _ = sample_users(bench_models.World(category, seed=6000), REQUESTS)  # external id = item row
    columns = [("profile", profile), ("items", rows), ("categories", category_id[rows])]
    write_column_requests(os.path.join(out, "multi_interest_requests.bin"), columns)
    mind_inputs, sdm_inputs = request_tensors({name: values for name, values in columns})
    section = {"requests": "multi_interest_requests.bin", "request_count": REQUESTS, "profile_fields": PROFILE_NAMES,
               "sequence": SEQUENCE, "mind_history": MIND_HISTORY, "short": SHORT, "long": LONG,
               "interests": INTERESTS, "items": ITEMS, "train_steps": train_steps, "models": {}}

    for seed, (name, make, side_type, inputs) in enumerate([("mind", make_mind, MindUserSide, mind_inputs),
                                                             ("sdm", make_sdm, SdmUserSide, sdm_inputs)]):
        start = time.time()
        torch.manual_seed(7000 + seed)
        module = make()
        seed_item_table(module, category_id, 7200 + seed)
        loss = train(module, bench_models.World(category, seed=7100 + seed), category_id, train_steps, log)
        side = side_type(module).eval()
        entry, vectors, user = write_model_files(out, name, module, catalogue, inputs, side, log)
        entry["train_loss"] = loss
        with torch.inference_mode():  # the wrapper must compute what the reference's request path computes
            request = {f: {"ids": [int(v)]} for f, v in zip(PROFILE_NAMES, profile[0])}
            if name == "mind":
                history = mind_histories(rows[:1], category_id)[0]
                reference = module.encode([{**request, **{k: {"ids": v} for k, v in history.items()}}],
                                          catalogue)[0][0].reshape(-1).numpy()
                active = np.full(REQUESTS, int(module.active_counts(torch.tensor([MIND_HISTORY]))[0]),
                                 dtype=np.int64)  # every request has a full window
                np.save(os.path.join(out, "mind.active.npy"), active)
                entry["active_npy"] = "mind.active.npy"
            else:
                history = sdm_histories(rows[:1], category_id)[0]
                reference = module.user_vectors({**request, **{k: {"ids": v} for k, v in history.items()}},
                                                catalogue)
        worst = float(np.abs(reference - user[0]).max())
        if worst > 1e-6:
            raise AssertionError(f"{name}: the batch-1 wrapper differs from the module's request path by {worst}")
        log(f"{name}.reclite: {entry['model_bytes'] / 1e6:.1f} MB, {train_steps} training steps (last loss "
            f"{loss:.3f}), traced: {'user_ts' in entry}, in {time.time() - start:.0f} s")
        if build_indexes:
            start = time.time()
            queries = user.reshape(-1, DIM)
            queries = queries[np.abs(queries).sum(axis=1) > 0]  # MIND: inactive (zeroed) interests are no query
            # Links by angle (MIND's raw item rows differ in norm), ef tuned for the served top-100 too.
            summary = build_index(vectors, external_ids, os.path.join(out, f"{name}.rlindex"), m=16,
                                  ef_construction=200, recall_target=0.98, queries=queries, link_by="angle",
                                  serve_k=100)
            log(f"{name}.rlindex: default ef {summary.default_ef} (recall@10 {summary.measured_recall:.4f} on the "
                f"request user vectors) in {time.time() - start:.0f} s")
            entry.update({"index": f"{name}.rlindex", "default_ef": summary.default_ef,
                          "default_ef_recall_at_10": summary.measured_recall})
        section["models"][name] = entry
        del module

    path = os.path.join(out, "manifest.json")
    manifest = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as stream:
            manifest = json.load(stream)
    manifest["multi_interest"] = section
    bench_models.write_manifest(out, manifest)
    return section


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory to create or add to")
    parser.add_argument("--no-index", action="store_true", help="skip the hnsw indexes (quick checks)")
    parser.add_argument("--train-steps", type=int, default=TRAIN_STEPS, help="training steps per model")
    args = parser.parse_args()
    start = time.time()
    generate(args.out, build_indexes=not args.no_index, train_steps=args.train_steps)
    print(f"make_multi_interest_models: wrote {args.out} in {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
