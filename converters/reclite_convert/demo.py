"""The end-to-end demo behind ./scripts/demo: train, convert, index, and check the device against PyTorch.

    /usr/bin/python3 -m reclite_convert.demo --out DIR --tool PATH/TO/reclite

1. generates a synthetic interaction log (reclite_convert.synthetic) and holds out each user's last item;
2. trains a small YouTubeDNN (sampled softmax, with a temperature) for a few epochs;
3. writes the model file (with its self-test samples) and an hnswlib item index tuned on training users;
4. writes users.json (the evaluation users) and user_<n>.json (showcase users) for the C++ tool;
5. computes HitRate@10, NDCG@10 and Recall@10 in PyTorch by exact search, and a popularity baseline;
6. runs the C++ tool: the self-test, top-10 for the showcase users next to PyTorch's, and the evaluation by
   exact and by hnsw search. The device's exact metrics must equal PyTorch's to 4 decimals.
Exits 1 with a message naming the failed step when anything goes wrong.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Dict, List, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from reclite_convert import synthetic
from reclite_convert.catalogue import Catalogue
from reclite_convert.errors import ConversionError
from reclite_convert.index_builder import build_index
from reclite_convert.model_spec import describe
from reclite_convert.modules import CategoricalFeature, HistoryFeature, TowerOptions, YoutubeDNN
from reclite_convert.requests import user_vectors
from reclite_convert.writer import write_model

# Large external ids, unrelated to table rows, so that a row/id mix-up anywhere shows as a miss.
EXTERNAL_ID_BASE = 100000
HISTORY_LENGTH = 30   # long-term interest: mean of the last 30 items
RECENT_LENGTH = 3     # short-term habit: mean of the last 3 items (series and binges follow the last item)
EMBEDDING_DIM = 32
EVALUATION_USERS = 300
SHOWCASE_HISTORY = 8
K = 10
# Training only: softmax logits are cosines / 0.05. The model file keeps temperature 1, so scores printed by
# the device and by PyTorch are plain cosines in [-1, 1]; dividing by a constant would not change a ranking.
TRAINING_TEMPERATURE = 0.05
EPOCHS = 10
NEGATIVES = 1000
BATCH_SIZE = 512
LEARNING_RATE = 3e-3
# "Clearly better than popularity": the model's HitRate@10 must be at least this multiple of the baseline's.
REQUIRED_LIFT = 1.5


class DemoFailure(Exception):
    """A step of the demo failed; the message says which and why."""


def external_id(row) -> np.ndarray:
    return EXTERNAL_ID_BASE + np.asarray(row, dtype=np.int64)


# --- model -----------------------------------------------------------------------------------------------------
def make_model() -> YoutubeDNN:
    # Both histories pool rows of the item table, so an item's embedding is at once what it "means" in a history
    # and what it is scored with: YouTubeDNN's item side is the item table itself.
    user_fields = [
        CategoricalFeature("age", len(synthetic.AGE_BUCKETS), 8),
        CategoricalFeature("gender", len(synthetic.GENDERS), 4),
        CategoricalFeature("city", synthetic.CITIES, 8),
        HistoryFeature("history", HISTORY_LENGTH, "item_id", pooling="mean"),
        HistoryFeature("recent_history", RECENT_LENGTH, "item_id", pooling="mean"),
    ]
    item = CategoricalFeature("item_id", synthetic.ITEMS + 1, EMBEDDING_DIM, ids="item")
    return YoutubeDNN(user_fields, item, TowerOptions([128, EMBEDDING_DIM], activation="relu"),
                      l2_normalize=True, temperature=1.0, normalize_items=True)


def catalogue_of(log: synthetic.InteractionLog) -> Catalogue:
    rows = np.arange(1, synthetic.ITEMS + 1)
    return Catalogue(synthetic.ITEMS + 1, external_ids=external_id(rows), item_rows=rows, padding_row=0)


def training_examples(log: synthetic.InteractionLog):
    """Every (user, prefix -> next item) pair that does not reach the held-out last item."""
    users, histories, targets = [], [], []
    for user, sequence in enumerate(log.sequences):
        for position in range(1, len(sequence) - 1):
            past = sequence[max(0, position - HISTORY_LENGTH):position]
            histories.append([0] * (HISTORY_LENGTH - len(past)) + past)  # left-padded, most recent last
            users.append(user)
            targets.append(sequence[position])
    return np.asarray(users), torch.tensor(histories, dtype=torch.long), torch.tensor(targets, dtype=torch.long)


def train(module: YoutubeDNN, log: synthetic.InteractionLog, seed: int) -> None:
    users, histories, targets = training_examples(log)
    age, gender, city = (torch.from_numpy(a[users]) for a in (log.age, log.gender, log.city))
    optimizer = torch.optim.Adam(module.parameters(), lr=LEARNING_RATE)
    generator = torch.Generator().manual_seed(seed)
    count = len(targets)
    print(f"training YouTubeDNN on {count} (history -> next item) examples from {log.users} users: "
          f"{EPOCHS} epochs, batch {BATCH_SIZE}, sampled softmax (positive + {NEGATIVES} uniform negatives), "
          f"temperature {TRAINING_TEMPERATURE}")
    module.train()
    for epoch in range(EPOCHS):
        start = time.time()
        order = torch.randperm(count, generator=generator)
        total, batches = 0.0, 0
        for begin in range(0, count, BATCH_SIZE):
            chosen = order[begin:begin + BATCH_SIZE]
            target = targets[chosen]
            batch = {"age": age[chosen], "gender": gender[chosen], "city": city[chosen],
                     "history": histories[chosen], "recent_history": histories[chosen]}  # window() keeps the last 3
            # Sampled softmax (Covington et al. 2016): the positive against negatives shared by the batch. They
            # are uniform, so the log-probability correction of sampled softmax is the same constant for every
            # item and drops out; in-batch negatives would over-sample popular items and need a logQ correction.
            # Dividing the user vector (not the logits) by the temperature is the same and 16x cheaper.
            user = module.user_vector(batch) / TRAINING_TEMPERATURE
            negatives = torch.randint(1, synthetic.ITEMS + 1, (NEGATIVES,), generator=generator)
            positive = (user * module.item_vector({"item_id": target})).sum(dim=1, keepdim=True)
            negative = user @ module.item_vector({"item_id": negatives}).T
            negative = negative.masked_fill(negatives.unsqueeze(0) == target.unsqueeze(1), float("-inf"))
            logits = torch.cat([positive, negative], dim=1)
            loss = F.cross_entropy(logits, torch.zeros(len(chosen), dtype=torch.long))  # column 0 is the positive
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss)
            batches += 1
        print(f"  epoch {epoch + 1}/{EPOCHS}: loss {total / batches:.4f} ({time.time() - start:.1f} s)")
    module.eval()


# --- requests and metrics --------------------------------------------------------------------------------------
def user_fields_of(log: synthetic.InteractionLog, user: int, history_rows: Sequence[int]) -> Dict:
    """The user as the C++ tool reads it: ids as ints, histories as external item ids, most recent last.

    `history` carries the whole history, not only the 30 the model pools: the engine excludes every item of it
    from the results, and pools the last 30 itself.
    """
    history = [int(i) for i in external_id(history_rows)]
    return {"age": int(log.age[user]), "gender": int(log.gender[user]), "city": int(log.city[user]),
            "history": history, "recent_history": history[-RECENT_LENGTH:]}


def as_request(fields: Dict) -> Dict:
    """The same user in the converter's request form ({"ids": [...]}) for reclite_convert.requests."""
    return {name: {"ids": value if isinstance(value, list) else [value]} for name, value in fields.items()}


def rank_all(scores: np.ndarray, seen_entries: List[np.ndarray], held_out_entries: np.ndarray, k: int):
    """Per user: the top-k entries and the 0-based rank of the held-out entry, seen entries excluded.

    Ties go to the lower catalogue entry, the engine's rule (index/search_hit.hpp).
    """
    count = scores.shape[1]
    entries = np.arange(count)
    top, ranks = [], []
    for user in range(scores.shape[0]):
        row = scores[user].copy()
        row[seen_entries[user]] = -np.inf
        top.append(np.lexsort((entries, -row))[:k])
        target = held_out_entries[user]
        ranks.append(int(np.sum(row > row[target]) + np.sum((row == row[target]) & (entries < target))))
    return top, np.asarray(ranks)


def metrics_of(ranks: np.ndarray, k: int) -> Dict[str, float]:
    """One positive per user (leave-one-out): HitRate@k = Recall@k, NDCG@k = 1 / log2(rank + 2) for rank < k."""
    hits = ranks < k
    ndcg = np.where(hits, 1.0 / np.log2(ranks + 2.0), 0.0)
    return {"hit_rate": float(hits.mean()), "ndcg": float(ndcg.mean()), "recall": float(hits.mean())}


# --- the C++ tool ----------------------------------------------------------------------------------------------
def run_tool(tool: str, arguments: List[str]) -> str:
    command = [tool] + arguments
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except OSError as error:
        raise DemoFailure(f"cannot run {tool}: {error.strerror}") from error
    if done.returncode != 0:
        raise DemoFailure(f"`{' '.join(command)}` exited with status {done.returncode}:\n"
                          f"{done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def run_tool_json(tool: str, arguments: List[str]) -> Dict:
    output = run_tool(tool, arguments)
    try:
        return json.loads(output)
    except json.JSONDecodeError as error:
        raise DemoFailure(f"`reclite {' '.join(arguments)}` printed something that is not JSON ({error}):\n"
                          f"{output}") from error


def write_json(path: str, value) -> None:
    with open(path, "w", encoding="utf-8") as file:
        json.dump(value, file)
        file.write("\n")


# --- the demo --------------------------------------------------------------------------------------------------
def run(out: str, tool: str, seed: int) -> None:
    timings = []
    clock = time.time()

    def lap(name):
        nonlocal clock
        now = time.time()
        timings.append((name, now - clock))
        clock = now

    os.makedirs(out, exist_ok=True)
    if not os.access(tool, os.X_OK):
        raise DemoFailure(f"{tool}: no such executable (build it with the reclite_example_reclite target)")
    # One thread: the batches are small (512 x 32), so a second thread gains little, and when the machine is
    # busy OpenMP's spinning threads made a step cost 20x the CPU time (measured).
    torch.set_num_threads(1)
    torch.manual_seed(seed)

    print("== 1. synthetic interaction log")
    log = synthetic.generate(seed)
    lengths = np.asarray([len(s) for s in log.sequences])
    print(f"{log.users} users, {synthetic.ITEMS} items in {synthetic.CATEGORIES} categories, "
          f"{lengths.sum()} interactions ({lengths.min()}-{lengths.max()} per user); Zipf popularity within "
          f"categories, series (successor items), 1-3 interests per user correlated with age, gender and city")
    rng = np.random.default_rng(seed + 1)
    evaluation = np.sort(rng.choice(log.users, size=EVALUATION_USERS, replace=False))
    tuning = np.setdiff1d(np.arange(log.users), evaluation)
    print(f"leave-one-out: each user's last item is held out; {EVALUATION_USERS} users are evaluated, "
          f"the other {len(tuning)} tune the index's search width")
    lap("generate the log")

    print("\n== 2. training (PyTorch, one thread)")
    module = make_model()
    train(module, log, seed)
    lap("train")

    print("\n== 3. conversion")
    catalogue = catalogue_of(log)
    model_path = os.path.join(out, "youtube_dnn.reclite")
    description = describe(module, catalogue, {"source": "reclite_convert.demo", "seed": str(seed)})
    size = write_model(description, model_path)
    print(f"{model_path}: {size} bytes, {len(description.self_test)} self-test samples")
    item_vectors = next(t.array for t in description.tensors if t.name == "catalogue.item_vectors")
    lap("convert")

    # Users as they are served: everything but the held-out last item.
    def fields_of(user):
        return user_fields_of(log, int(user), log.sequences[user][:-1])

    with torch.inference_mode():
        tuning_vectors = user_vectors(module, [as_request(fields_of(u)) for u in tuning], catalogue)
    index_path = os.path.join(out, "items.rlindex")
    summary = build_index(item_vectors, catalogue.external_ids, index_path, m=16, ef_construction=200,
                          recall_target=0.98, queries=tuning_vectors)
    print(f"{index_path}: {summary.count} items of dim {summary.dim}, default ef {summary.default_ef}, "
          f"recall@10 {summary.measured_recall:.4f} against exact search on {summary.recall_queries} "
          f"training users (target {summary.recall_target})")
    if not summary.target_met:
        print(f"warning: the recall target was not met even at ef {summary.default_ef}")
    lap("build the index")

    print("\n== 4. PyTorch evaluation (exact inner product over all items)")
    evaluation_fields = [fields_of(u) for u in evaluation]
    held_out_rows = np.asarray([log.sequences[u][-1] for u in evaluation])
    users_json = [{"fields": fields, "held_out": [int(external_id(row))]}
                  for fields, row in zip(evaluation_fields, held_out_rows)]
    users_path = os.path.join(out, "users.json")
    write_json(users_path, users_json)
    with torch.inference_mode():
        vectors = user_vectors(module, [as_request(f) for f in evaluation_fields], catalogue)
    # float64 sums of the float32 vectors: the reference ranking, as reclite_convert.fixtures computes it.
    scores = vectors.astype(np.float64) @ item_vectors.astype(np.float64).T
    entry_of_row = {int(row): entry for entry, row in enumerate(catalogue.item_rows)}
    seen = [np.asarray([entry_of_row[r] for r in log.sequences[u][:-1]]) for u in evaluation]
    held_out_entries = np.asarray([entry_of_row[int(r)] for r in held_out_rows])
    model_top, model_ranks = rank_all(scores, seen, held_out_entries, K)
    model_metrics = metrics_of(model_ranks, K)
    # Popularity: interactions per item in the training part of the log (held-out items not counted).
    counts = np.bincount(np.concatenate([s[:-1] for s in log.sequences]), minlength=synthetic.ITEMS + 1)
    popularity = np.tile(counts[catalogue.item_rows].astype(np.float64), (len(evaluation), 1))
    _, popularity_ranks = rank_all(popularity, seen, held_out_entries, K)
    popularity_metrics = metrics_of(popularity_ranks, K)
    print(f"items of each user's history are excluded from the ranking; {len(evaluation)} users, k = {K}")
    print(f"PyTorch:    HitRate@10 {model_metrics['hit_rate']:.4f}  NDCG@10 {model_metrics['ndcg']:.4f}")
    print(f"popularity: HitRate@10 {popularity_metrics['hit_rate']:.4f}  NDCG@10 {popularity_metrics['ndcg']:.4f}")
    lap("evaluate in PyTorch")

    print("\n== 5. on device (C++ reclite tool)")
    inspect = run_tool(tool, ["inspect", model_path, "--verify"])
    for line in inspect.splitlines():
        if line.startswith(("architecture:", "self-test:")):
            print(f"reclite inspect --verify: {line}")
    if "self-test: passed" not in inspect:
        raise DemoFailure(f"the model file's self-test did not pass:\n{inspect}")

    showcase = pick_showcase(log, evaluation)
    for position in showcase:
        user = int(evaluation[position])
        user_path = os.path.join(out, f"user_{user}.json")
        write_json(user_path, {"fields": evaluation_fields[position]})
        device = run_tool_json(tool, ["recall", "--model", model_path, "--index", index_path, "--user", user_path,
                                      "-k", str(K)])
        print_showcase(log, user, catalogue, device, model_top[position], scores[position],
                       int(held_out_rows[position]), user_path)

    exact = run_tool_json(tool, ["evaluate", "--model", model_path, "--exact", "--users", users_path, "-k", str(K)])
    hnsw = run_tool_json(tool, ["evaluate", "--model", model_path, "--index", index_path, "--users", users_path,
                                "-k", str(K)])
    lap("run the C++ tool")

    print(f"\n== 6. metrics: {len(evaluation)} held-out users, leave-one-out (each user's last item), k = {K}; "
          f"the items of the user's history are excluded from the ranking")
    header = f"{'':34}{'HitRate@10':>11}{'NDCG@10':>9}{'Recall@10':>11}{'us/user':>9}"
    print(header)
    rows = [("popularity baseline (PyTorch)", popularity_metrics, None),
            ("YouTubeDNN, PyTorch exact", model_metrics, None),
            ("YouTubeDNN, reclite --exact", exact, exact["mean_microseconds"]),
            (f"YouTubeDNN, reclite hnsw (ef {summary.default_ef})", hnsw, hnsw["mean_microseconds"])]
    for name, values, micros in rows:
        print(f"{name:34}{values['hit_rate']:>11.4f}{values['ndcg']:>9.4f}{values['recall']:>11.4f}"
              f"{'-' if micros is None else f'{micros:.1f}':>9}")
    if exact["users"] != len(evaluation) or hnsw["users"] != len(evaluation):
        raise DemoFailure(f"the tool evaluated {exact['users']} (exact) and {hnsw['users']} (hnsw) users, "
                          f"users.json holds {len(evaluation)}")
    mismatched = [name for name in ("hit_rate", "ndcg", "recall")
                  if f"{exact[name]:.4f}" != f"{model_metrics[name]:.4f}"]
    if mismatched:
        raise DemoFailure("device exact search and PyTorch disagree on " + ", ".join(
            f"{name} ({exact[name]:.6f} on device, {model_metrics[name]:.6f} in PyTorch)" for name in mismatched))
    print("device exact metrics equal PyTorch's to 4 decimals: yes")
    print(f"hnsw is approximate: HitRate@10 {hnsw['hit_rate'] - exact['hit_rate']:+.4f}, "
          f"NDCG@10 {hnsw['ndcg'] - exact['ndcg']:+.4f} against exact search")
    lift = model_metrics["hit_rate"] / max(popularity_metrics["hit_rate"], 1e-9)
    print(f"the model's HitRate@10 is {lift:.1f}x the popularity baseline's")
    if lift < REQUIRED_LIFT:
        raise DemoFailure(f"the trained model does not clearly beat popularity (HitRate@10 "
                          f"{model_metrics['hit_rate']:.4f} against {popularity_metrics['hit_rate']:.4f}; "
                          f"at least {REQUIRED_LIFT}x expected)")

    lap("compare")
    print("\n== timings")
    for name, seconds in timings:
        print(f"  {name:22}{seconds:6.1f} s")
    print(f"  {'total':22}{sum(s for _, s in timings):6.1f} s")
    print(f"\nfiles in {out}: youtube_dnn.reclite, items.rlindex(.hnsw), users.json, "
          + ", ".join(f"user_{int(evaluation[p])}.json" for p in showcase))


def pick_showcase(log: synthetic.InteractionLog, evaluation: np.ndarray) -> List[int]:
    """Positions in `evaluation` of the first users with 1, 2 and 3 latent interests (not chosen by result)."""
    chosen = []
    for wanted in (1, 2, 3):
        for position, user in enumerate(evaluation):
            if len(log.interests[user]) == wanted:
                chosen.append(position)
                break
    return chosen


def print_showcase(log, user, catalogue, device, torch_top, torch_scores, held_out_row, user_path) -> None:
    history = log.sequences[user][:-1]
    interests = ", ".join(f"{synthetic.CATEGORY_NAMES[c]} {w:.2f}"
                          for c, w in zip(log.interests[user], log.interest_weights[user]))
    print(f"\nuser {user}: age {synthetic.AGE_BUCKETS[log.age[user]]}, {synthetic.GENDERS[log.gender[user]]}, "
          f"city {log.city[user]}; hidden interests: {interests}")
    recent = ", ".join(f"{int(external_id(r))} {log.category_name(r)}" for r in history[-SHOWCASE_HISTORY:])
    print(f"  history ({len(history)} items, last {SHOWCASE_HISTORY}, most recent last): {recent}")
    print(f"  held out (the next item): {int(external_id(held_out_row))} {log.category_name(held_out_row)}")
    print(f"  `reclite recall --model youtube_dnn.reclite --index items.rlindex --user {os.path.basename(user_path)}"
          f" -k {K}`: {device['search']} search, {device['microseconds']:.0f} us (encode + search), "
          f"{device['excluded_seen']} seen items excluded")
    device_ids = [int(item["item_id"]) for item in device["items"]]
    torch_ids = [int(catalogue.external_ids[e]) for e in torch_top]
    held_out_id = int(external_id(held_out_row))

    def describe_item(item_id, score):
        mark = "*" if item_id == held_out_id else " "
        name = log.category_name(catalogue.row_of(item_id))
        return f"{mark}{item_id} {name:<20.20}{score:7.4f}"

    print(f"  {'rank':>4}  {'on device (hnsw)':<35}    {'PyTorch (exact)':<35}")
    for rank in range(K):
        left = describe_item(device_ids[rank], float(device["items"][rank]["score"])) if rank < len(device_ids) \
            else ""
        right = describe_item(torch_ids[rank], float(torch_scores[torch_top[rank]]))
        agree = "=" if rank < len(device_ids) and device_ids[rank] == torch_ids[rank] else \
            ("~" if rank < len(device_ids) and device_ids[rank] in torch_ids else "x")
        print(f"  {rank + 1:>4}  {left:<35} {agree}  {right}")
    same_rank = sum(1 for a, b in zip(device_ids, torch_ids) if a == b)
    same_set = len(set(device_ids) & set(torch_ids))
    print(f"  agreement: {same_rank}/{K} same item at the same rank, {same_set}/{K} same items "
          f"(= same rank, ~ elsewhere in PyTorch's top-{K}, x not in it; * the held-out item)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="reclite_convert.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory for the model, index and user files")
    parser.add_argument("--tool", required=True, help="the built C++ tool (build/demo/examples/reclite)")
    parser.add_argument("--seed", type=int, default=2024, help="seed of the log, the split and training")
    args = parser.parse_args(argv)
    try:
        run(args.out, args.tool, args.seed)
    except (DemoFailure, ConversionError) as error:
        print(f"\ndemo FAILED: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
