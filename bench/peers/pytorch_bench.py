"""Peer: PyTorch eager on the models of bench/make_bench_models.py, one thread, batch 1, inference_mode.

  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/peers/pytorch_bench.py --models DIR [--results FILE]
      [--repetitions 10] [--min-time 0.5] [--tasks REGEX]

The modules are rebuilt from their state_dicts and called through the same wrappers that were traced for
libtorch (UserSide, FmUserSide, FmScores); inputs are tensors built for all 1000 requests before timing, so only
the forward call is timed. exact_top100 is torch.topk(torch.mm(query, items.T), 100) over the DSSM's 100k x 64
item vectors. SASRec (when DIR holds sasrec_requests.bin): the reference module
(reclite_convert.modules.sasrec.SASRec) rebuilt from sasrec.pt / sasrec_v3.pt, called through
make_bench_models.SasRecUserSide (the wrapper traced for libtorch) on item-row tensors [1, 50] (+ length [1]) built
before timing: sasrec_encode, sasrec_v3_encode; sasrec_exact_top100 is torch.topk(torch.mm) over its item vectors.
MIND and SDM (when DIR holds multi_interest_requests.bin, bench/make_multi_interest_models.py): mind_encode (all K
interests), sdm_encode, mind_exact_top100 (topk(mm) per active interest, then the merge); see run_multi_interest.
Each task runs `repetitions` times for at least min-time seconds; every call is timed and the
median and p99 over all calls are written as JSON lines (bench/peers/bench_data.hpp's format).
"""

import argparse
import json
import os
import re
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import make_bench_models as models  # noqa: E402


def read_requests(path):
    with open(path, "rb") as stream:
        if stream.read(8) != models.MAGIC:
            raise SystemExit(f"{path}: not a benchmark request file")
        count, fields, history, candidates = np.frombuffer(stream.read(16), dtype="<u4")
        records = np.frombuffer(stream.read(), dtype="<i8").reshape(count, fields + history + candidates)
    return records[:, :fields], records[:, fields:fields + history], records[:, fields + history:]


TASK_FILTER = re.compile("")  # --tasks: only tasks whose name this regular expression finds are run


def run(task, call, count, repetitions, min_time, pooled):
    if not TASK_FILTER.search(task):
        return
    timings = []
    for _ in range(repetitions):
        started = time.perf_counter()
        index = 0
        while time.perf_counter() - started < min_time:
            begin = time.perf_counter_ns()
            call(index % count)
            timings.append((time.perf_counter_ns() - begin) / 1000.0)
            index += 1
    pooled[task] = timings
    print(f"{task:24s} median {np.median(timings):9.2f} us  p99 {np.percentile(timings, 99):9.2f} us  "
          f"({len(timings)} calls)", flush=True)


def exact_merged_top100(interests, items):
    """The exact multi-interest top-100 as a PyTorch user would write it: topk(mm) of each interest, then the
    merge (each item at its best score, items by score; ties in the order sort leaves them)."""
    scores, entries = torch.topk(torch.mm(interests, items.T), 100, dim=1)    # [K', 100] each
    scores, order = scores.reshape(-1).sort(descending=True)
    entries = entries.reshape(-1)[order]
    _, first = np.unique(entries.numpy(), return_index=True)                  # first = best-scored occurrence
    keep = torch.from_numpy(np.sort(first)[:100])
    return entries[keep], scores[keep]


def run_multi_interest(args, pooled):
    """MIND and SDM (bench/make_multi_interest_models.py): the reference modules rebuilt from NAME.pt and
    NAME.json, called through MindUserSide / SdmUserSide (the wrappers traced for libtorch) on batch-1 tensors
    built before timing; mind_exact_top100 = exact_merged_top100 on PyTorch's interest vectors."""
    import make_multi_interest_models as multi  # noqa: E402

    columns = multi.read_column_requests(os.path.join(args.models, "multi_interest_requests.bin"))
    mind_inputs, sdm_inputs = multi.request_tensors(columns)
    with torch.inference_mode():
        for name, make, side_type, inputs in (("mind", multi.make_mind, multi.MindUserSide, mind_inputs),
                                              ("sdm", multi.make_sdm, multi.SdmUserSide, sdm_inputs)):
            with open(os.path.join(args.models, f"{name}.json"), encoding="utf-8") as stream:
                module = make(json.load(stream))
            module.load_state_dict(torch.load(os.path.join(args.models, f"{name}.pt")))
            side = side_type(module.eval()).eval()
            run(f"{name}_encode", lambda r: side(*inputs[r]), len(inputs), args.repetitions, args.min_time, pooled)
        items = torch.from_numpy(np.load(os.path.join(args.models, "mind.items.npy")))
        queries = np.load(os.path.join(args.models, "mind.queries.npy"))
        active = np.load(os.path.join(args.models, "mind.active.npy"))
        interests = [torch.from_numpy(q.reshape(-1, items.shape[1])[:a].copy()) for q, a in zip(queries, active)]
        run("mind_exact_top100", lambda q: exact_merged_top100(interests[q], items), len(interests),
            args.repetitions, args.min_time, pooled)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True)
    parser.add_argument("--results", default="")
    parser.add_argument("--repetitions", type=int, default=10)
    parser.add_argument("--min-time", type=float, default=0.5)
    parser.add_argument("--tasks", default="", help="regular expression; run only the tasks it finds (default all)")
    args = parser.parse_args()
    global TASK_FILTER
    TASK_FILTER = re.compile(args.tasks)
    torch.set_num_threads(1)
    config = torch.__config__.show()
    blas = [part.strip() for part in config.replace("\n", ",").split(",")
            if "BLAS_INFO" in part or "CPU capability" in part or "LAPACK_INFO" in part]
    print("torch", torch.__version__, "| threads", torch.get_num_threads(), "|", "; ".join(blas)[:300])

    categorical, history, candidates = read_requests(os.path.join(args.models, "requests.bin"))
    count = len(categorical)
    names = [f"field_{i}" for i in range(categorical.shape[1])]
    cat_t = [torch.from_numpy(categorical[r:r + 1].copy()) for r in range(count)]
    hist_t = [torch.from_numpy(history[r:r + 1].copy()) for r in range(count)]  # external id = item row
    cand_t = [torch.from_numpy(candidates[r] - 1) for r in range(count)]       # catalogue entry = id - 1

    def load(name, make):
        module = make()
        module.load_state_dict(torch.load(os.path.join(args.models, f"{name}.pt")))
        return module.eval()

    dssm = models.UserSide(load("dssm", models.make_dssm), names, "history").eval()
    youtube = models.UserSide(load("youtube_dnn", models.make_youtube_dnn), names, "history").eval()
    fm_module = load("fm", models.make_fm)
    fm_user = models.FmUserSide(fm_module, names).eval()
    fm_scores = models.FmScores(fm_module, names, np.load(os.path.join(args.models, "fm.items.npy"))).eval()
    items = torch.from_numpy(np.load(os.path.join(args.models, "dssm.items.npy")))
    queries = torch.from_numpy(np.load(os.path.join(args.models, "dssm.queries.npy")))
    query_rows = [queries[q:q + 1] for q in range(len(queries))]

    pooled = {}
    with torch.inference_mode():
        run("dssm_user", lambda r: dssm(cat_t[r], hist_t[r]), count, args.repetitions, args.min_time, pooled)
        run("youtube_dnn_user", lambda r: youtube(cat_t[r], hist_t[r]), count, args.repetitions, args.min_time,
            pooled)
        run("fm_user", lambda r: fm_user(cat_t[r]), count, args.repetitions, args.min_time, pooled)
        run("fm_user_scores_1000", lambda r: fm_scores(cat_t[r], cand_t[r]), count, args.repetitions,
            args.min_time, pooled)
        run("exact_top100", lambda q: torch.topk(torch.mm(query_rows[q], items.T), 100, dim=1), len(query_rows),
            args.repetitions, args.min_time, pooled)

    sasrec_requests = os.path.join(args.models, "sasrec_requests.bin")
    if os.path.exists(sasrec_requests):
        _, sasrec_history, _ = read_requests(sasrec_requests)  # external id = item row
        manifest = json.load(open(os.path.join(args.models, "manifest.json"), encoding="utf-8"))
        with torch.inference_mode():
            for name, task in (("sasrec", "sasrec_encode"), ("sasrec_v3", "sasrec_v3_encode")):
                entry = manifest["models"][name]
                module = models.make_sasrec(entry["variant"], entry["inner"])
                module.load_state_dict(torch.load(os.path.join(args.models, f"{name}.pt")))
                side = models.SasRecUserSide(module.eval()).eval()
                inputs = [side.inputs(rows) for rows in sasrec_history]
                run(task, lambda r: side(*inputs[r]), len(inputs), args.repetitions, args.min_time, pooled)
            sasrec_items = torch.from_numpy(np.load(os.path.join(args.models, "sasrec.items.npy")))
            sasrec_queries = torch.from_numpy(np.load(os.path.join(args.models, "sasrec.queries.npy")))
            sasrec_rows = [sasrec_queries[q:q + 1] for q in range(len(sasrec_queries))]
            run("sasrec_exact_top100", lambda q: torch.topk(torch.mm(sasrec_rows[q], sasrec_items.T), 100, dim=1),
                len(sasrec_rows), args.repetitions, args.min_time, pooled)

    if os.path.exists(os.path.join(args.models, "multi_interest_requests.bin")):
        run_multi_interest(args, pooled)

    lines = [json.dumps({"task": task, "impl": "pytorch", "median_us": float(np.median(t)),
                         "p99_us": float(np.percentile(t, 99)), "calls": len(t)}) for task, t in pooled.items()]
    lines.append(json.dumps({"task": "config", "impl": "pytorch", "value": "; ".join(blas)}))
    if args.results:
        with open(args.results, "a", encoding="utf-8") as stream:
            stream.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
