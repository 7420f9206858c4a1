"""Tests of reclite_convert.index_builder: the files it writes, the ef it chooses, the errors it raises."""

import os
import tempfile
import unittest
import zlib

import numpy as np

import reclite_convert  # noqa: F401  (puts the generated FlatBuffers code on sys.path)
from reclite.fbs import ItemIndex
from reclite_convert.errors import ConversionError
from reclite_convert.index_builder import build_index, catalogue_crc32, ef_ladder, exact_top_k
from reclite_convert.index_fixtures import structured_items


class IndexBuilderTest(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.TemporaryDirectory()
        self.addCleanup(self.folder.cleanup)
        self.vectors = structured_items(2000, 16, 10, seed=1, normalize=False)
        self.ids = np.arange(2000, dtype=np.int64) * 7 + 100

    def test_writes_an_rlindex_that_describes_its_graph(self):
        path = os.path.join(self.folder.name, "items.rlindex")
        summary = build_index(self.vectors, self.ids, path, m=8, ef_construction=100)
        self.assertEqual(summary.hnsw_path, path + ".hnsw")
        with open(path, "rb") as stream:
            buffer = bytearray(stream.read())
        self.assertTrue(ItemIndex.ItemIndex.ItemIndexBufferHasIdentifier(buffer, 0))
        table = ItemIndex.ItemIndex.GetRootAs(buffer, 0)
        with open(summary.hnsw_path, "rb") as stream:
            graph = stream.read()
        self.assertEqual(table.FormatMajor(), 1)
        self.assertEqual((table.Dim(), table.Count(), table.M(), table.EfConstruction()), (16, 2000, 8, 100))
        self.assertEqual(table.HnswFile(), b"items.rlindex.hnsw")
        self.assertEqual(table.HnswFileSize(), len(graph))
        self.assertEqual(table.HnswCrc32(), zlib.crc32(graph))
        self.assertEqual(table.ExternalIdsAsNumpy().tolist(), self.ids.tolist())
        self.assertEqual(table.CatalogueCrc32(), catalogue_crc32(self.ids))
        self.assertEqual(table.DefaultEf(), summary.default_ef)
        self.assertAlmostEqual(table.MeasuredRecall(), summary.measured_recall, places=6)
        self.assertEqual(table.RecallQueries(), 1000)

    def test_an_unreachable_target_stops_at_max_ef_and_says_so(self):
        path = os.path.join(self.folder.name, "capped.rlindex")
        summary = build_index(self.vectors, self.ids, path, recall_target=1.0, max_ef=10)
        self.assertFalse(summary.target_met)
        self.assertEqual(summary.default_ef, 10)
        self.assertLess(summary.measured_recall, 1.0)

    def test_default_ef_is_the_smallest_rung_reaching_the_target(self):
        import hnswlib

        path = os.path.join(self.folder.name, "items.rlindex")
        summary = build_index(self.vectors, self.ids, path, recall_target=0.95)
        self.assertTrue(summary.target_met)
        self.assertGreaterEqual(summary.measured_recall, 0.95)
        ladder = ef_ladder(2000)
        self.assertIn(summary.default_ef, ladder)
        if summary.default_ef != ladder[0]:
            # The rung below must have missed the target on the same queries.
            from reclite_convert.index_builder import make_recall_queries, recall_at

            queries = make_recall_queries(self.vectors, seed=0)
            index = hnswlib.Index(space="ip", dim=16)
            index.load_index(summary.hnsw_path)
            lower = ladder[ladder.index(summary.default_ef) - 1]
            self.assertLess(recall_at(index, queries, exact_top_k(self.vectors, queries, 10), lower), 0.95)

    def test_same_inputs_give_the_same_files(self):
        first = os.path.join(self.folder.name, "a.rlindex")
        second = os.path.join(self.folder.name, "b.rlindex")
        build_index(self.vectors, self.ids, first)
        build_index(self.vectors, self.ids, second)
        with open(first + ".hnsw", "rb") as a, open(second + ".hnsw", "rb") as b:
            self.assertEqual(a.read(), b.read())

    def test_exact_top_k_breaks_ties_by_lower_entry(self):
        vectors = np.array([[1, 0], [2, 0], [2, 0], [1, 0], [2, 0]], dtype=np.float32)
        queries = np.array([[1, 0]], dtype=np.float32)
        self.assertEqual(exact_top_k(vectors, queries, 4).tolist(), [[1, 2, 4, 0]])

    def test_ef_ladder_ends_at_a_full_search(self):
        self.assertEqual(ef_ladder(5), [10])
        self.assertEqual(ef_ladder(600)[-3:], [384, 512, 768])
        self.assertGreaterEqual(ef_ladder(100000)[-1], 100000)

    def test_links_by_angle_store_the_raw_rows(self):
        import hnswlib

        path = os.path.join(self.folder.name, "angle.rlindex")
        summary = build_index(self.vectors, self.ids, path, link_by="angle")
        index = hnswlib.Index(space="ip", dim=16)
        index.load_index(summary.hnsw_path)
        # Links were chosen on normalised rows, but searches score what the file holds: the raw rows.
        stored = np.asarray(index.get_items(list(range(2000))), dtype=np.float32)
        np.testing.assert_array_equal(stored, self.vectors)
        self.assertTrue(summary.target_met)
        with open(path, "rb") as stream:
            table = ItemIndex.ItemIndex.GetRootAs(bytearray(stream.read()), 0)
        with open(summary.hnsw_path, "rb") as stream:
            self.assertEqual(table.HnswCrc32(), zlib.crc32(stream.read()))

    def test_serve_k_tunes_ef_for_the_served_depth(self):
        import hnswlib
        from reclite_convert.index_builder import make_recall_queries, recall_at

        path = os.path.join(self.folder.name, "deep.rlindex")
        # By angle: on these unequal norms an inner-product graph cannot reach a deep top 100 (index_builder.py).
        summary = build_index(self.vectors, self.ids, path, recall_target=0.95, serve_k=100, link_by="angle")
        self.assertTrue(summary.target_met)
        queries = make_recall_queries(self.vectors, seed=0)
        index = hnswlib.Index(space="ip", dim=16)
        index.load_index(summary.hnsw_path)
        measured = recall_at(index, queries, exact_top_k(self.vectors, queries, 100), summary.default_ef)
        self.assertAlmostEqual(measured, summary.serve_recall, places=6)
        self.assertGreaterEqual(measured, 0.95)
        with self.assertRaises(ConversionError):
            build_index(self.vectors, self.ids, path, serve_k=0)
        with self.assertRaises(ConversionError):
            build_index(self.vectors, self.ids, path, link_by="cosine")

    def test_bad_inputs_name_what_is_wrong(self):
        path = os.path.join(self.folder.name, "bad.rlindex")
        cases = [
            (self.vectors.astype(np.float64), self.ids, "dtype float32"),
            (self.vectors, self.ids[:-1], "external ids: expected shape [2000]"),
            (self.vectors, np.concatenate([self.ids[:-1], self.ids[:1]]), "appears more than once"),
            (np.where(np.arange(16) == 3, np.nan, self.vectors).astype(np.float32), self.ids, "NaN"),
            (self.vectors[:, :0], self.ids, "dim >= 1"),
        ]
        for vectors, ids, message in cases:
            with self.subTest(message=message):
                with self.assertRaises(ConversionError) as raised:
                    build_index(vectors, ids, path)
                self.assertIn(message, str(raised.exception))
        with self.assertRaises(ConversionError):
            build_index(self.vectors, self.ids, path, m=1)
        self.assertFalse(os.path.exists(path))


if __name__ == "__main__":
    unittest.main()
