"""Writes the item-index test fixtures: `python3 -m reclite_convert.index_fixtures --out DIR`.

Item vectors have the structure of trained embeddings rather than isotropic noise: items fall into ~50
categories of Zipf-skewed sizes, each an anisotropic cloud (a random rotation of a decaying spectrum) around its
centre, and vector norms grow with item popularity (as they do for popular items in dot-product models).
Queries are held out: items and mixtures of items made the same way, never rows of the index.

Files, for NAME in clustered_unit (L2-normalised rows), clustered_raw (not normalised), small (300 x 16),
single (1 x 8):
  NAME.rlindex, NAME.rlindex.hnsw   the index (index_builder.build_index)
  NAME.vectors.f32                  little-endian float32 [count, dim], row i = entry i (for exact search)
  NAME.tuning.f32                   the queries default_ef was chosen on (measured_recall is over these)
  NAME.test.f32                     other held-out queries, for recall checks that did not tune anything
"""

import argparse
import os

import numpy as np

from reclite_convert.index_builder import build_index


def structured_items(count, dim, categories, seed, normalize):
    """float32 [count, dim] clustered, anisotropic, popularity-scaled vectors (see the module comment)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(categories, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    # Each category spreads along its own axes: a random rotation of scales decaying like j^-0.8.
    spectrum = 0.45 * np.arange(1, dim + 1, dtype=np.float64) ** -0.8
    rotations = [np.linalg.qr(rng.normal(size=(dim, dim)))[0] for _ in range(categories)]
    category_weight = 1.0 / np.arange(1, categories + 1) ** 0.9
    category = rng.choice(categories, size=count, p=category_weight / category_weight.sum())
    noise = rng.normal(size=(count, dim)) * spectrum
    vectors = np.empty((count, dim), dtype=np.float64)
    for c in range(categories):
        rows = np.nonzero(category == c)[0]
        vectors[rows] = centres[c] + noise[rows] @ rotations[c].T
    # Popularity: norms grow with log popularity over a random item order, from 0.6 (tail) to about 1.6 (head).
    # A steeper profile (norm ~ rank^-0.5, spread 4x) leaves hnswlib's inner-product graph unable to pass
    # recall@10 0.96 at any ef with M = 16: the builder then reports the target as missed.
    rank = rng.permutation(count) + 1
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors *= (0.6 + 0.9 * (1.0 - np.log(rank) / np.log(max(count, 2))) + 0.1 * rng.random(count))[:, None]
    if normalize:
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


def write_f32(path, array):
    np.ascontiguousarray(array, dtype="<f4").tofile(path)


def external_ids_for(count, seed):
    """Sparse, shuffled, unique ids, so an entry number is never mistaken for an id."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(np.int64(10) ** 12, size=count * 2, replace=False)[:count]
    return np.unique(ids)[:count][rng.permutation(count)].astype(np.int64) + 1_000_000


def write_fixture(out, name, count, dim, categories, normalize, seed, queries=1000, recall_target=0.99, m=16):
    # Target 0.99 on the tuning queries so that the 0.98 the tests check holds on queries nothing was tuned on:
    # with 200 queries, the smallest ef reaching 0.98 reached only 0.97-0.98 on another 200.
    if count >= categories * 4:
        items = structured_items(count, dim, categories, seed, normalize)
    else:
        items = np.random.default_rng(seed).normal(size=(count, dim)).astype(np.float32)
    ids = external_ids_for(count, seed + 1)
    # The same generator as the items, but later rows: held out, and with the same centres and axes.
    tail = structured_items(count + 2 * queries * 3, dim, categories, seed, normalize) \
        if count >= categories * 4 else np.random.default_rng(seed + 7).normal(size=(count + 6 * queries, dim))
    tail = np.asarray(tail, dtype=np.float32)[count:]
    rng = np.random.default_rng(seed + 2)

    def queries_from(block):
        half = queries // 2
        mixtures = np.empty((queries - half, dim), dtype=np.float32)
        for row in range(queries - half):
            parts = rng.integers(2, 4)
            mixtures[row] = rng.dirichlet(np.ones(parts)) @ block[half + rng.integers(0, block.shape[0] - half,
                                                                                         size=parts)]
        return np.concatenate([block[:half], mixtures]).astype(np.float32)

    # structured_items draws categories and noise for all rows at once, so the tail rows follow the same
    # distribution as the catalogue without repeating it.
    tuning = queries_from(tail[:3 * queries])
    test = queries_from(tail[3 * queries:])
    summary = build_index(items, ids, os.path.join(out, name + ".rlindex"), m=m, recall_target=recall_target,
                          queries=tuning, seed=seed)
    write_f32(os.path.join(out, name + ".vectors.f32"), items)
    write_f32(os.path.join(out, name + ".tuning.f32"), tuning)
    write_f32(os.path.join(out, name + ".test.f32"), test)
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description="Writes the item-index test fixtures.")
    parser.add_argument("--out", required=True, help="folder to write into (created)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    summaries = [
        write_fixture(args.out, "clustered_unit", 20000, 64, 50, normalize=True, seed=11),
        write_fixture(args.out, "clustered_raw", 20000, 64, 50, normalize=False, seed=12),
        write_fixture(args.out, "small", 300, 16, 10, normalize=False, seed=13, queries=40),
        write_fixture(args.out, "single", 1, 8, 1, normalize=False, seed=14, queries=4),
    ]
    for summary in summaries:
        print(f"{summary.index_path}: {summary.count} x {summary.dim}, default ef {summary.default_ef}, "
              f"recall@10 {summary.measured_recall:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
