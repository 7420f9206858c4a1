"""Builds a reclite item index: hnswlib 0.6.2's graph file plus the .rlindex file describing and checking it.

The .rlindex (schemas/index.fbs, docs/index-format.md) stores the build parameters, the search beam width
(default_ef) chosen here by measuring recall@10 against exact search on held-out queries, the external item
ids (hnswlib label i = catalogue entry i) and the size and CRC-32 of the graph file, which the C++ reader
checks before hnswlib ever sees it.

Graph links are chosen by inner product (hnswlib's "ip" space) unless link_by="angle": then hnswlib links the
L2-normalised rows, and the file stores the raw rows, which every search scores by inner product. With rows of
unequal norms an inner-product graph links almost every item to the few longest ones (Morozov and Babenko,
"Non-metric Similarity Graphs for Maximum Inner Product Search", NeurIPS 2018): items inside the cloud get few
in-links, and a deep search (top 100) cannot reach them at any ef. Links by angle keep every item reachable.
On the MIND fixture of multi_interest_index_fixtures.py (20 000 trained item vectors, D 32) the multi-interest
recall@100 at ef 400 went from 0.95 to 0.999. Rows of equal norm give the same graph either way.

Used three ways: `build_index(...)` from Python (the demo), `python3 -m reclite_convert build-index ...`
through cli.py (`add_arguments` + `run`), and the test fixtures (index_fixtures.py).
"""

import argparse
import dataclasses
import os
import zlib

import numpy as np

from reclite_convert.errors import ConversionError

FORMAT_MAJOR = 1
FORMAT_MINOR = 0
RECALL_K = 10
# 1000, not fewer: mixtures of interests are hard queries with heavy-tailed recall, and on 200 queries the
# measured recall@10 of one graph varied by 0.01-0.03 between query sets made the same way.
DEFAULT_RECALL_QUERIES = 1000
# hnswlib searches with ids as C `int` in places, so a catalogue must stay below 2^31 entries.
MAX_ITEMS = 2**31 - 1
# The largest default ef build_index will store: beyond it a graph search costs about as much as an exact scan.
DEFAULT_MAX_EF = 1024
# The first rungs of the ef ladder; beyond them each rung is 1.5x or 2x the one before (768, 1024, ...).
EF_LADDER_START = (10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)


@dataclasses.dataclass
class IndexSummary:
    """What build_index wrote and measured."""

    index_path: str
    hnsw_path: str
    count: int
    dim: int
    default_ef: int
    measured_recall: float
    recall_target: float
    recall_queries: int
    # False when even the largest ef tried (the first rung >= count, capped at max_ef) stayed below recall_target.
    target_met: bool
    # recall@serve_k at default_ef when build_index was given serve_k, else None.
    serve_recall: object = None


def ef_ladder(count):
    """Candidate ef values in increasing order, ending with the first rung >= count (a full search)."""
    rungs = []
    for ef in EF_LADDER_START:
        rungs.append(ef)
        if ef >= count:
            return rungs
    ef = rungs[-1]
    while ef < count:
        ef = ef * 3 // 2 if (ef & (ef - 1)) == 0 else ef * 4 // 3  # 512, 768, 1024, 1536, 2048, ...
        rungs.append(ef)
    return rungs


def make_recall_queries(vectors, count=DEFAULT_RECALL_QUERIES, seed=0):
    """Queries shaped like real user vectors, none of them an item vector itself.

    Half are item vectors perturbed by noise with the catalogue's own per-dimension spread (a user close to
    one item); half are random mixtures of 2-4 items plus smaller noise (a user with several interests).
    """
    rng = np.random.default_rng(seed)
    n, d = vectors.shape
    spread = vectors.std(axis=0).astype(np.float64) + 1e-6
    half = count // 2
    picked = vectors[rng.integers(0, n, size=half)].astype(np.float64)
    perturbed = picked + rng.normal(size=(half, d)) * spread * 0.5
    mixtures = np.empty((count - half, d), dtype=np.float64)
    for row in range(count - half):
        parts = rng.integers(2, 5)
        weights = rng.dirichlet(np.ones(parts))
        members = vectors[rng.integers(0, n, size=parts)].astype(np.float64)
        mixtures[row] = weights @ members + rng.normal(size=d) * spread * 0.25
    return np.concatenate([perturbed, mixtures]).astype(np.float32)


def exact_top_k(vectors, queries, k):
    """Exact top-k entries by inner product, best first; ties go to the lower entry number.

    The same rule as reclite::index::exact_top_k, so recall computed here and in C++ agree. Scores are float32
    like the C++ kernel's; summation order differs, so near-ties can still order differently.
    """
    k = min(k, vectors.shape[0])
    result = np.empty((queries.shape[0], k), dtype=np.int64)
    chunk = max(1, (1 << 24) // max(1, vectors.shape[0]))  # about 64 MB of scores per chunk
    for start in range(0, queries.shape[0], chunk):
        scores = queries[start:start + chunk] @ vectors.T
        # A stable sort of -score keeps equal scores in entry order.
        order = np.argsort(-scores, axis=1, kind="stable")
        result[start:start + chunk] = order[:, :k]
    return result


def recall_at(index, queries, truth, ef):
    """Mean fraction of the exact top-k that the hnsw search at this ef returns."""
    k = truth.shape[1]
    index.set_ef(ef)
    labels, _ = index.knn_query(queries, k=k)
    hits = sum(len(set(found.tolist()) & set(want.tolist())) for found, want in zip(labels, truth))
    return hits / float(truth.size)


def catalogue_crc32(external_ids):
    """CRC-32 (zlib) of the external ids as little-endian int64 bytes."""
    return zlib.crc32(np.ascontiguousarray(external_ids, dtype="<i8").tobytes()) & 0xFFFFFFFF


def _check_inputs(vectors, external_ids, m, ef_construction, recall_target):
    vectors = np.asarray(vectors)
    external_ids = np.asarray(external_ids)
    if vectors.ndim != 2 or vectors.shape[0] < 1 or vectors.shape[1] < 1:
        raise ConversionError(f"item vectors: expected shape [count >= 1, dim >= 1], got {list(vectors.shape)}")
    if vectors.dtype != np.float32:
        raise ConversionError(f"item vectors: expected dtype float32, got {vectors.dtype}")
    if not np.all(np.isfinite(vectors)):
        row = int(np.argwhere(~np.isfinite(vectors))[0][0])
        raise ConversionError(f"item vectors: row {row} holds NaN or infinity")
    count = vectors.shape[0]
    if count > MAX_ITEMS:
        raise ConversionError(f"item vectors: {count} items, at most {MAX_ITEMS} supported")
    if external_ids.shape != (count,):
        raise ConversionError(f"external ids: expected shape [{count}], got {list(external_ids.shape)}")
    if external_ids.dtype != np.int64:
        raise ConversionError(f"external ids: expected dtype int64, got {external_ids.dtype}")
    unique, counts = np.unique(external_ids, return_counts=True)
    if unique.size != count:
        raise ConversionError(f"external ids: id {int(unique[np.argmax(counts > 1)])} appears more than once")
    if not 2 <= m <= 10000:
        raise ConversionError(f"m: expected 2 <= m <= 10000, got {m}")
    if ef_construction < 1:
        raise ConversionError(f"ef_construction: expected >= 1, got {ef_construction}")
    if not 0.0 < recall_target <= 1.0:
        raise ConversionError(f"recall_target: expected in (0, 1], got {recall_target}")
    return np.ascontiguousarray(vectors), np.ascontiguousarray(external_ids)


def _write_rlindex(path, fields, external_ids):
    import flatbuffers
    from reclite.fbs import ItemIndex

    builder = flatbuffers.Builder(1024 + 8 * external_ids.size)
    producer = builder.CreateString(fields["producer"])
    hnsw_file = builder.CreateString(fields["hnsw_file"])
    ids = builder.CreateNumpyVector(np.ascontiguousarray(external_ids, dtype="<i8"))
    ItemIndex.Start(builder)
    ItemIndex.AddFormatMajor(builder, FORMAT_MAJOR)
    ItemIndex.AddFormatMinor(builder, FORMAT_MINOR)
    ItemIndex.AddProducer(builder, producer)
    ItemIndex.AddMetric(builder, 0)  # inner_product
    ItemIndex.AddDim(builder, fields["dim"])
    ItemIndex.AddCount(builder, fields["count"])
    ItemIndex.AddM(builder, fields["m"])
    ItemIndex.AddEfConstruction(builder, fields["ef_construction"])
    ItemIndex.AddDefaultEf(builder, fields["default_ef"])
    ItemIndex.AddRecallTarget(builder, fields["recall_target"])
    ItemIndex.AddMeasuredRecall(builder, fields["measured_recall"])
    ItemIndex.AddRecallQueries(builder, fields["recall_queries"])
    ItemIndex.AddHnswFile(builder, hnsw_file)
    ItemIndex.AddHnswFileSize(builder, fields["hnsw_file_size"])
    ItemIndex.AddHnswCrc32(builder, fields["hnsw_crc32"])
    ItemIndex.AddExternalIds(builder, ids)
    ItemIndex.AddCatalogueCrc32(builder, fields["catalogue_crc32"])
    builder.Finish(ItemIndex.End(builder), b"RLIX")
    with open(path, "wb") as stream:
        stream.write(builder.Output())


def _store_raw_rows(hnsw_path, vectors):
    """Overwrites the vectors in a saved hnswlib 0.6.2 graph file with `vectors` (row = label), links unchanged."""
    with open(hnsw_path, "rb") as stream:
        graph = bytearray(stream.read())
    # Header (hnswalg.h saveIndex): offsetLevel0, max_elements, cur_element_count, size_data_per_element,
    # label_offset, offsetData as size_t, ... 96 bytes; then cur_element_count elements of level 0.
    _, _, count, element_bytes, label_offset, data_offset = np.frombuffer(bytes(graph[:48]), dtype="<u8")
    count, element_bytes, label_offset, data_offset = int(count), int(element_bytes), int(label_offset), int(data_offset)
    level0 = np.frombuffer(graph, dtype=np.uint8, count=count * element_bytes, offset=96).reshape(count, element_bytes)
    labels = level0[:, label_offset:label_offset + 8].copy().view("<u8").reshape(count)
    rows = np.ascontiguousarray(vectors[labels.astype(np.int64)], dtype="<f4").view(np.uint8)
    level0[:, data_offset:data_offset + rows.shape[1]] = rows
    with open(hnsw_path, "wb") as stream:
        stream.write(graph)


def build_index(vectors, external_ids, out_path, m=16, ef_construction=200, recall_target=0.98, queries=None,
                seed=0, threads=1, max_ef=DEFAULT_MAX_EF, link_by="inner_product", serve_k=None):
    """Builds out_path (.rlindex) and out_path + '.hnsw'; returns an IndexSummary.

    vectors: float32 [count, dim], row i is catalogue entry i; external_ids: int64 [count], unique.
    queries: float32 [q, dim] held-out user vectors to tune ef on; by default 1000 made by make_recall_queries.
    threads: hnswlib insertion threads; 1 (the default) makes the graph, and so the file, reproducible.
    link_by: "inner_product" or "angle" (links between normalised rows; the module comment says why).
    serve_k: the k the index will be searched with, when above RECALL_K: the default ef must then also reach
    recall_target at recall@serve_k (a top-100 needs a wider beam than a top-10; measured_recall stays @10).
    """
    import hnswlib

    vectors, external_ids = _check_inputs(vectors, external_ids, m, ef_construction, recall_target)
    count, dim = vectors.shape
    if queries is None:
        queries = make_recall_queries(vectors, seed=seed)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if queries.ndim != 2 or queries.shape[1] != dim or queries.shape[0] < 1:
        raise ConversionError(f"queries: expected shape [q >= 1, {dim}], got {list(queries.shape)}")
    if not np.all(np.isfinite(queries)):
        raise ConversionError("queries: NaN or infinity")

    if link_by not in ("inner_product", "angle"):
        raise ConversionError(f"link_by: expected inner_product or angle, got {link_by!r}")
    if serve_k is not None and not 1 <= serve_k <= count:
        raise ConversionError(f"serve_k: expected 1 <= serve_k <= {count}, got {serve_k}")
    out_path = os.fspath(out_path)
    hnsw_path = out_path + ".hnsw"
    linked = vectors
    if link_by == "angle":
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        linked = np.ascontiguousarray(vectors / np.where(norms > 0, norms, 1), dtype=np.float32)
    index = hnswlib.Index(space="ip", dim=dim)
    index.init_index(max_elements=count, ef_construction=ef_construction, M=m, random_seed=100 + seed)
    index.add_items(linked, np.arange(count, dtype=np.int64), num_threads=threads)
    if link_by == "angle":
        # The links stay, the rows become the raw ones: tune and serve on what the file holds.
        index.save_index(hnsw_path)
        _store_raw_rows(hnsw_path, vectors)
        index = hnswlib.Index(space="ip", dim=dim)
        index.load_index(hnsw_path, max_elements=count)

    truth = exact_top_k(vectors, queries, RECALL_K)
    serve_truth = exact_top_k(vectors, queries, serve_k) if serve_k is not None and serve_k > RECALL_K else None
    chosen_ef, chosen_recall, serve_recall, target_met = None, 0.0, None, False
    # An ef far beyond the graph's reach only makes every search slow (and the tuning itself takes minutes on a
    # large catalogue): the ladder stops at max_ef, and target_met says whether the target was reached.
    for ef in [rung for rung in ef_ladder(count) if rung <= max(max_ef, EF_LADDER_START[0])]:
        recall = recall_at(index, queries, truth, ef)
        chosen_ef, chosen_recall = ef, recall
        if serve_truth is not None:
            serve_recall = recall_at(index, queries, serve_truth, ef)
            recall = min(recall, serve_recall)
        if recall >= recall_target:
            target_met = True
            break

    index.save_index(hnsw_path)
    with open(hnsw_path, "rb") as stream:
        graph = stream.read()
    from reclite_convert import __version__

    fields = {
        "producer": f"reclite_convert {__version__} (hnswlib 0.6.2)",
        "dim": dim,
        "count": count,
        "m": m,
        "ef_construction": ef_construction,
        "default_ef": chosen_ef,
        "recall_target": float(recall_target),
        "measured_recall": float(chosen_recall),
        "recall_queries": int(queries.shape[0]),
        "hnsw_file": os.path.basename(hnsw_path),
        "hnsw_file_size": len(graph),
        "hnsw_crc32": zlib.crc32(graph) & 0xFFFFFFFF,
        "catalogue_crc32": catalogue_crc32(external_ids),
    }
    _write_rlindex(out_path, fields, external_ids)
    return IndexSummary(index_path=out_path, hnsw_path=hnsw_path, count=count, dim=dim, default_ef=chosen_ef,
                        measured_recall=float(chosen_recall), recall_target=float(recall_target),
                        recall_queries=int(queries.shape[0]), target_met=target_met, serve_recall=serve_recall)


def read_model_catalogue(path):
    """(item vectors float32 [count, dim], external ids int64 [count]) from a reclite model file."""
    from reclite.fbs import Model as ModelTable

    try:
        with open(path, "rb") as stream:
            buffer = bytearray(stream.read())
    except OSError as error:
        raise ConversionError(f"{path}: cannot read: {error.strerror}") from error
    if len(buffer) < 8 or not ModelTable.Model.ModelBufferHasIdentifier(buffer, 0):
        raise ConversionError(f"{path}: not a reclite model file (identifier RCLT missing)")
    model = ModelTable.Model.GetRootAs(buffer, 0)
    catalogue = model.Catalogue()
    if catalogue is None:
        raise ConversionError(f"{path}: field catalogue: absent, so there are no items to index")
    name = catalogue.ItemVectors()
    if not name:
        raise ConversionError(f"{path}: field catalogue.item_vectors: absent (convert with item vectors)")
    name = name.decode("utf-8")
    tensor = None
    for i in range(model.TensorsLength()):
        candidate = model.Tensors(i)
        if candidate.Name().decode("utf-8") == name:
            tensor = candidate
            break
    if tensor is None:
        raise ConversionError(f"{path}: catalogue.item_vectors names tensor '{name}', which is not in the file")
    if tensor.Dtype() != 0:
        raise ConversionError(f"{path}: tensor '{name}': expected dtype f32, got {tensor.Dtype()}")
    shape = [int(s) for s in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else []
    if len(shape) != 2:
        raise ConversionError(f"{path}: tensor '{name}': expected 2 dimensions, got shape {shape}")
    data = tensor.DataAsNumpy()
    if not isinstance(data, np.ndarray) or data.size != shape[0] * shape[1] * 4:
        raise ConversionError(f"{path}: tensor '{name}': data holds {getattr(data, 'size', 0)} bytes, "
                              f"shape {shape} needs {shape[0] * shape[1] * 4}")
    vectors = np.frombuffer(data.tobytes(), dtype="<f4").reshape(shape).astype(np.float32)
    if catalogue.ExternalIdsLength() != shape[0]:
        raise ConversionError(f"{path}: catalogue.external_ids has {catalogue.ExternalIdsLength()} entries, "
                              f"tensor '{name}' has {shape[0]} rows")
    external_ids = catalogue.ExternalIdsAsNumpy().astype(np.int64)
    return vectors, external_ids


def add_arguments(parser):
    """Options of the `build-index` subcommand."""
    source = parser.add_argument_group("items (either --model, or --vectors with --ids)")
    source.add_argument("--model", help="reclite model file whose catalogue.item_vectors are indexed")
    source.add_argument("--vectors", help=".npy float32 [count, dim]: row i is catalogue entry i")
    source.add_argument("--ids", help=".npy int64 [count]: external id of each row, unique")
    parser.add_argument("-o", "--output", required=True, help="index file to write (NAME.rlindex; the graph goes "
                                                               "to NAME.rlindex.hnsw)")
    parser.add_argument("--m", type=int, default=16, help="hnswlib M: links per node (default 16)")
    parser.add_argument("--ef-construction", type=int, default=200, help="hnswlib build beam (default 200)")
    parser.add_argument("--recall-target", type=float, default=0.98,
                        help="recall@10 the stored default ef must reach on held-out queries (default 0.98)")
    parser.add_argument("--queries", help=".npy float32 [q, dim]: user vectors to tune ef on (default: 1000 "
                                          "made from perturbed items and mixtures of items)")
    parser.add_argument("--max-ef", type=int, default=DEFAULT_MAX_EF,
                        help=f"largest default ef to store; if the target is not reached by then, a warning (default "
                             f"{DEFAULT_MAX_EF})")
    parser.add_argument("--link-by", choices=("inner_product", "angle"), default="inner_product",
                        help="how graph links are chosen: by inner product (default) or by angle between rows, "
                             "which keeps every item reachable when norms differ (searches always score by "
                             "inner product)")
    parser.add_argument("--serve-k", type=int, help="the k the index will serve: the default ef must also reach "
                                                    "the target at recall@k (e.g. 100 for a top-100 recall)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the generated queries and the graph")
    parser.add_argument("--threads", type=int, default=1, help="insertion threads (1: reproducible file)")


def run(args):
    """Runs `build-index`; returns the process exit status."""
    if args.model and (args.vectors or args.ids):
        raise ConversionError("build-index: give either --model or --vectors with --ids, not both")
    if args.model:
        vectors, external_ids = read_model_catalogue(args.model)
    elif args.vectors and args.ids:
        vectors, external_ids = np.load(args.vectors), np.load(args.ids)
    else:
        raise ConversionError("build-index: give --model, or --vectors with --ids")
    queries = np.load(args.queries) if args.queries else None
    summary = build_index(vectors, external_ids, args.output, m=args.m, ef_construction=args.ef_construction,
                          recall_target=args.recall_target, queries=queries, seed=args.seed, threads=args.threads,
                          max_ef=args.max_ef, link_by=args.link_by, serve_k=args.serve_k)
    print(f"{summary.index_path}: {summary.count} items of dim {summary.dim}, default ef {summary.default_ef}, "
          f"recall@{RECALL_K} {summary.measured_recall:.4f} on {summary.recall_queries} held-out queries "
          f"(target {summary.recall_target})" +
          (f", recall@{args.serve_k} {summary.serve_recall:.4f}" if summary.serve_recall is not None else ""))
    if not summary.target_met:
        print(f"warning: recall target {summary.recall_target} not reached even at ef {summary.default_ef}")
    return 0


def main(argv=None):
    """Stand-alone entry point, for use without cli.py."""
    parser = argparse.ArgumentParser(prog="reclite_convert.index_builder", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except ConversionError as error:
        print(f"error: {error}")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
