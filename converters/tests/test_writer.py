import unittest

import numpy as np

from reclite_convert.model_spec import describe
from reclite_convert.modules import CategoricalFeature, HistoryFeature, TowerOptions, YoutubeDNN
from reclite_convert.reader import read_model
from reclite_convert.writer import model_bytes
from tests import support


class RoundTrip(unittest.TestCase):
    def setUp(self):
        self.module = support.small_dssm()
        self.catalogue = support.catalogue()
        self.description = describe(self.module, self.catalogue, {"source": "test"})
        self.buffer = model_bytes(self.description)
        self.model = read_model(self.buffer)

    def test_header(self):
        self.assertEqual(self.buffer[4:8], b"RCLT")
        self.assertEqual(self.model["identifier"], "RCLT")
        self.assertEqual((self.model["format_major"], self.model["format_minor"]), (1, 0))
        self.assertTrue(self.model["producer"].startswith("reclite_convert "))
        self.assertEqual(self.model["architecture"], "dssm")
        self.assertEqual(self.model["metadata"]["source"], "test")
        self.assertIn("spec", self.model["metadata"])

    def test_tensors_are_aligned_checksummed_and_equal(self):
        self.assertEqual(len(self.buffer) % 64, 0)
        written = {t.name: t.array for t in self.description.tensors}
        self.assertEqual(set(written), {t["name"] for t in self.model["tensors"]})
        for tensor in self.model["tensors"]:
            with self.subTest(tensor=tensor["name"]):
                self.assertEqual(tensor["offset"] % 64, 0)
                self.assertTrue(tensor["crc_ok"])
                self.assertEqual(tensor["shape"], list(written[tensor["name"]].shape))
                np.testing.assert_array_equal(tensor["array"], written[tensor["name"]])
        table = next(t for t in self.model["tensors"] if t["name"] == "embedding.item_id")
        np.testing.assert_array_equal(table["array"], self.module.embeddings["item_id"].weight.detach().numpy())

    def test_config(self):
        user = self.model["config"]["user_tower"]
        self.assertEqual([f["name"] for f in user["inputs"]], ["user_id", "history", "activity"])
        history = user["inputs"][1]
        self.assertEqual((history["kind"], history["ids"], history["embedding"], history["vocabulary_size"],
                          history["max_length"], history["pooling"]),
                         ("history", "item", "embedding.item_id", support.ITEMS, 6, "mean"))
        self.assertEqual(user["inputs"][2]["width"], 2)
        self.assertEqual([l["activation"] for l in user["layers"]], ["relu", "none"])
        self.assertTrue(user["l2_normalize"])
        self.assertEqual([l["activation"] for l in self.model["config"]["item_tower"]["layers"]], ["tanh", "none"])

    def test_catalogue(self):
        catalogue = self.model["catalogue"]
        np.testing.assert_array_equal(catalogue["external_ids"], self.catalogue.external_ids)
        np.testing.assert_array_equal(catalogue["item_rows"], self.catalogue.item_rows)
        ids = catalogue["external_ids"][catalogue["order_by_external_id"]]
        self.assertTrue(np.all(np.diff(ids) > 0))
        values = next(t for t in self.model["tensors"] if t["name"] == catalogue["feature_values"])
        self.assertEqual(values["dtype"], "i32")
        self.assertEqual(values["shape"], [len(self.catalogue), 1])
        vectors = next(t for t in self.model["tensors"] if t["name"] == catalogue["item_vectors"])
        self.assertEqual(vectors["shape"], [len(self.catalogue), 8])

    def test_self_test_samples(self):
        samples = self.model["self_test"]
        users = [s for s in samples if s["target"] == "user_vector"]
        items = [s for s in samples if s["target"] == "item_vector"]
        self.assertGreaterEqual(len(users), 3)
        self.assertGreaterEqual(len(items), 2)
        lengths = [len(s["inputs"]["history"]["ids"]) for s in users]
        self.assertIn(0, lengths)
        self.assertTrue(any(n > 6 for n in lengths))
        for sample in users:
            self.assertEqual(set(sample["inputs"]), {"user_id", "history", "activity"})
            self.assertTrue(all(i in self.catalogue.external_ids for i in sample["inputs"]["history"]["ids"]))
            self.assertAlmostEqual(sample["tolerance"], 1e-5)
        for sample in items:
            self.assertIn(sample["item_id"], self.catalogue.external_ids)
            self.assertEqual(sample["inputs"], {})


class LargeTable(unittest.TestCase):
    def test_100k_by_64_table_is_written_whole_and_aligned(self):
        # Speed is measured by bench/make_bench_models.py, not asserted here: a shared CI machine makes
        # timed tests flaky. This checks the bulk path writes every byte in place.
        module = YoutubeDNN([CategoricalFeature("user_id", 10, 8), HistoryFeature("history", 5, "item_id")],
                            CategoricalFeature("item_id", 100_000, 64, ids="item"), TowerOptions([64])).eval()
        description = describe(module, self_test=False)
        buffer = model_bytes(description)
        model = read_model(buffer)
        table = next(t for t in model["tensors"] if t["name"] == "embedding.item_id")
        self.assertEqual(table["offset"] % 64, 0)
        self.assertTrue(table["crc_ok"])


if __name__ == "__main__":
    unittest.main()
