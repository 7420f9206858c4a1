"""Prints the table of docs/performance.md from the JSON lines the benchmark programs append to results.jsonl.

  /usr/bin/python3 bench/bench_table.py build/bench/results.jsonl [--markdown]
  /usr/bin/python3 bench/bench_table.py run1.jsonl run2.jsonl ... [--markdown]   (one column per run)
Ratio = peer median / our median (above 1: we are faster). With several runs (each a whole ./scripts/bench, so
ours and the peers share a run), every cell lists the runs' medians in order and the last column the lowest ratio.
"""

import argparse
import json

TASKS = [
    ("dssm_user", "DSSM user tower", ["pytorch", "libtorch"]),
    ("youtube_dnn_user", "YouTubeDNN user tower", ["pytorch", "libtorch"]),
    ("fm_user", "FM user vector", ["pytorch", "libtorch"]),
    ("fm_user_scores_1000", "FM user vector + 1000 scores", ["pytorch", "libtorch"]),
    ("hnsw_top100_default_ef", "hnsw top-100 / 100k, default ef", ["hnswlib", "faiss"]),
    ("hnsw_top100_ef95", "hnsw top-100 / 100k, recall@100 >= 0.95", ["hnswlib", "faiss"]),
    ("exact_top100", "exact top-100 / 100k x 64", ["pytorch", "faiss"]),
    ("end_to_end", "end to end (DSSM + hnsw, history excluded)", []),
    ("sasrec_encode", "SASRec (RecBole) full encode, 50 items", ["pytorch", "libtorch"]),
    ("sasrec_append", "SASRec (RecBole) append 1 item to 49", []),
    ("sasrec_end_to_end", "SASRec encode + hnsw top-100 (history excluded)", []),
    ("sasrec_exact_end_to_end", "SASRec encode + exact top-100 (history excluded)", []),
    ("sasrec_exact_top100", "SASRec exact top-100 / 100k x 64", ["pytorch"]),
    ("sasrec_v3_encode", "SASRec (pmixer V3) full encode, 50 items", ["pytorch", "libtorch"]),
    ("sasrec_v3_append", "SASRec (pmixer V3) append (re-encodes)", []),
    ("mind_encode", "MIND user evaluation, K = 4 interests, history 50", ["pytorch", "libtorch"]),
    ("sdm_encode", "SDM user evaluation, short 10 + long 50", ["pytorch", "libtorch"]),
    ("mind_exact_top100", "MIND exact multi-interest top-100 / 100k", ["pytorch"]),
    ("mind_hnsw_top100", "MIND hnsw multi-interest top-100, merge recall >= 0.95", []),
    ("mind_end_to_end", "MIND encode + hnsw multi-interest top-100 (history excluded)", []),
    ("mind_exact_end_to_end", "MIND encode + exact multi-interest top-100 (history excluded)", []),
    ("sdm_end_to_end", "SDM encode + hnsw top-100 (history excluded)", []),
    ("sdm_exact_end_to_end", "SDM encode + exact top-100 (history excluded)", []),
]
# Ratios of two of our own rows (numerator median / denominator median), printed under the table.
OWN_RATIOS = [
    ("sasrec_encode", "sasrec_append", "SASRec (RecBole) full encode / append"),
    ("sasrec_v3_encode", "sasrec_append", "SASRec pmixer V3 full encode / RecBole append"),
]


def read_results(path):
    timings, extras = {}, []
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            line = line.strip()
            if not line:
                continue
            entry = json.loads(line)
            if "median_us" in entry:
                timings[(entry["task"], entry["impl"])] = entry
            else:
                extras.append(entry)
    return timings, extras


def print_rows(header, rows, markdown):
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
        for row in [header] + rows:
            print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))
    print()


def one_run(timings, extras, markdown):
    header = ["task", "ours median (us)", "ours p99 (us)", "peer", "peer median (us)", "peer p99 (us)",
              "peer / ours"]
    rows = []
    for task, label, peers in TASKS:
        ours = timings.get((task, "reclite"))
        if ours is None:
            continue
        present = [p for p in peers if (task, p) in timings] or [None]
        for peer in present:
            other = timings.get((task, peer)) if peer else None
            rows.append([label, f"{ours['median_us']:.2f}", f"{ours['p99_us']:.2f}", peer or "-",
                         f"{other['median_us']:.2f}" if other else "-", f"{other['p99_us']:.2f}" if other else "-",
                         f"{other['median_us'] / ours['median_us']:.2f}x" if other else "-"])
    print_rows(header, rows, markdown)
    for numerator, denominator, label in OWN_RATIOS:
        top, bottom = timings.get((numerator, "reclite")), timings.get((denominator, "reclite"))
        if top and bottom:
            print(f"{label}: {top['median_us'] / bottom['median_us']:.1f}x (medians {top['median_us']:.2f} / "
                  f"{bottom['median_us']:.2f} us)")
    print()
    for entry in extras:
        print(f"{entry['impl']}: {entry['task']} = {entry['value']}")


def several_runs(runs, markdown):
    def medians(task, impl):
        values = [timings.get((task, impl)) for timings in runs]
        return None if any(v is None for v in values) else [v["median_us"] for v in values]

    def cell(values):
        return " / ".join(f"{v:.3g}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}" for v in values)

    header = ["task", "ours median (us), per run", "peer", "peer median (us), per run", "peer / ours, per run",
              "lowest"]
    rows = []
    for task, label, peers in TASKS:
        ours = medians(task, "reclite")
        if ours is None:
            continue
        present = [p for p in peers if medians(task, p) is not None] or [None]
        for peer in present:
            other = medians(task, peer) if peer else None
            ratios = [o / u for o, u in zip(other, ours)] if other else None
            rows.append([label, cell(ours), peer or "-", cell(other) if other else "-",
                         " / ".join(f"{r:.2f}x" for r in ratios) if ratios else "-",
                         f"{min(ratios):.2f}x" if ratios else "-"])
    print_rows(header, rows, markdown)
    for numerator, denominator, label in OWN_RATIOS:
        top, bottom = medians(numerator, "reclite"), medians(denominator, "reclite")
        if top and bottom:
            print(f"{label}: " + " / ".join(f"{t / b:.1f}x" for t, b in zip(top, bottom)) + " per run")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="results.jsonl of one or more runs")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    runs = [read_results(path) for path in args.results]
    if len(runs) == 1:
        one_run(*runs[0], args.markdown)
    else:
        several_runs([timings for timings, _ in runs], args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
