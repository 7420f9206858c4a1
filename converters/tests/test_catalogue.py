import os
import tempfile
import unittest

import numpy as np

from reclite_convert.catalogue import Catalogue, load_item_ids
from reclite_convert.errors import ConversionError
from reclite_convert.model_spec import describe
from tests import support


class CatalogueTests(unittest.TestCase):
    def test_default_entries_skip_the_padding_row(self):
        catalogue = Catalogue(5)
        np.testing.assert_array_equal(catalogue.item_rows, [1, 2, 3, 4])
        np.testing.assert_array_equal(catalogue.external_ids, [1, 2, 3, 4])

    def test_duplicate_external_ids_fail(self):
        with self.assertRaisesRegex(ConversionError, "external id 7 is given to more than one item"):
            Catalogue(5, external_ids=[3, 7, 9, 7])

    def test_order_by_external_id_is_a_stable_argsort(self):
        catalogue = Catalogue(5, external_ids=[40, 10, 30, 20])
        np.testing.assert_array_equal(catalogue.order_by_external_id, [1, 3, 2, 0])
        self.assertEqual(catalogue.row_of(30), 3)
        with self.assertRaisesRegex(ConversionError, "no item has external id 11"):
            catalogue.row_of(11)

    def test_rows_must_be_inside_the_vocabulary(self):
        with self.assertRaisesRegex(ConversionError, "item rows"):
            Catalogue(5, external_ids=[1, 2], item_rows=[1, 5])

    def test_item_features_are_required_for_item_tower_fields(self):
        catalogue = Catalogue(support.ITEMS)
        with self.assertRaisesRegex(ConversionError, "'category'"):
            describe(support.small_dssm(), catalogue, self_test=False)

    def test_feature_values_hold_only_vocabulary_fields(self):
        catalogue = support.catalogue()
        values = catalogue.feature_values(support.small_fm().item_fields)
        self.assertEqual(values.dtype, np.int32)
        np.testing.assert_array_equal(values[:, 0], catalogue.item_features["category"][catalogue.item_rows])

    def test_item_ids_file(self):
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "ids.npy")
            np.save(path, np.array([50, 40, 30, 20]))
            ids, rows = load_item_ids(path, 5, 0)
            np.testing.assert_array_equal(rows, [1, 2, 3, 4])
            np.testing.assert_array_equal(ids, [50, 40, 30, 20])
            np.save(path, np.array([[4, 99], [2, 98]]))
            ids, rows = load_item_ids(path, 5, 0)
            np.testing.assert_array_equal(rows, [4, 2])
            np.testing.assert_array_equal(ids, [99, 98])
            np.save(path, np.array([1, 2]))
            with self.assertRaisesRegex(ConversionError, "2 external ids"):
                load_item_ids(path, 5, 0)


if __name__ == "__main__":
    unittest.main()
