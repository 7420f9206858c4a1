import os
import tempfile
import unittest

import numpy as np
import torch

from reclite_convert.errors import ConversionError
from reclite_convert.layouts import reclite as reclite_layout
from reclite_convert.layouts import torch_rechub
from reclite_convert.layouts.common import load_weights, state_dict_to_numpy
from reclite_convert.rechub_reference import RechubDSSM, RechubYoutubeDNN, randomize
from reclite_convert.spec import module_from_spec, module_to_spec
from tests import support

RECHUB_USER_FIELDS = [
    {"kind": "dense", "name": "activity", "width": 1},
    {"kind": "categorical", "name": "user_id", "vocabulary_size": 10, "embedding_dim": 8},
    {"kind": "history", "name": "history", "max_length": 5, "embedding_name": "item_id"},
    {"kind": "categorical", "name": "gender", "vocabulary_size": 3, "embedding_dim": 8},
]
RECHUB_ITEM_FIELDS = [
    {"kind": "categorical", "name": "item_id", "vocabulary_size": 30, "embedding_dim": 8, "ids": "item"},
    {"kind": "categorical", "name": "category", "vocabulary_size": 4, "embedding_dim": 8},
]
RECHUB_DSSM_SPEC = {"user_fields": RECHUB_USER_FIELDS, "item_fields": RECHUB_ITEM_FIELDS}


def rechub_dssm(seed=0):
    torch.manual_seed(seed)
    reference = RechubDSSM(RECHUB_USER_FIELDS, RECHUB_ITEM_FIELDS, [16, 8], [12, 8])
    randomize(reference, torch.Generator().manual_seed(seed))
    return reference


def user_batch():
    return {"activity": torch.tensor([[0.5], [-1.0], [2.0]]), "user_id": torch.tensor([1, 5, 9]),
            "gender": torch.tensor([0, 2, 1]),
            "history": torch.tensor([[0, 0, 0, 3, 4], [1, 2, 3, 4, 5], [0, 0, 0, 0, 0]])}


class TorchRechub(unittest.TestCase):
    def test_dssm_equals_the_reference_on_the_same_weights(self):
        reference = rechub_dssm()
        weights = state_dict_to_numpy(reference.state_dict())
        module = torch_rechub.build_module("dssm", RECHUB_DSSM_SPEC, weights, "rechub")
        self.assertEqual([f.name for f in module.user_fields], ["user_id", "history", "gender", "activity"])
        self.assertEqual(module.user_tower.options.layer_activations(), ["relu", "relu"])
        items = {"item_id": torch.tensor([1, 7, 29]), "category": torch.tensor([0, 3, 2])}
        with torch.inference_mode():
            np.testing.assert_allclose(module.user_vector(user_batch()).numpy(),
                                       reference.user_tower(user_batch()).numpy(), atol=1e-6)
            np.testing.assert_allclose(module.item_vector(items).numpy(), reference.item_tower(items).numpy(),
                                       atol=1e-6)

    def test_youtube_dnn_equals_the_reference(self):
        user_fields = [f for f in RECHUB_USER_FIELDS if f["name"] != "gender"]
        item_field = RECHUB_ITEM_FIELDS[0]
        torch.manual_seed(1)
        reference = RechubYoutubeDNN(user_fields, item_field, [16, 8])
        randomize(reference, torch.Generator().manual_seed(1))
        module = torch_rechub.build_module("youtube_dnn", {"user_fields": user_fields, "item_field": item_field},
                                           state_dict_to_numpy(reference.state_dict()), "rechub")
        batch = {k: v for k, v in user_batch().items() if k != "gender"}
        items = {"item_id": torch.tensor([1, 2, 3])}
        with torch.inference_mode():
            np.testing.assert_allclose(module.user_vector(batch).numpy(), reference.user_tower(batch).numpy(),
                                       atol=1e-6)
            np.testing.assert_allclose(module.item_vector(items).numpy(), reference.item_tower(items).numpy(),
                                       atol=1e-6)

    def assert_fails_naming(self, weights, *parts):
        with self.assertRaises(ConversionError) as caught:
            torch_rechub.build_module("dssm", RECHUB_DSSM_SPEC, weights, "model.pt")
        for part in parts:
            self.assertIn(part, str(caught.exception))

    def test_missing_key_is_named(self):
        weights = state_dict_to_numpy(rechub_dssm().state_dict())
        del weights["user_mlp.mlp.1.running_var"]
        self.assert_fails_naming(weights, "missing key 'user_mlp.mlp.1.running_var'")

    def test_missing_table_is_named(self):
        weights = state_dict_to_numpy(rechub_dssm().state_dict())
        del weights["embedding.embed_dict.category.weight"]
        self.assert_fails_naming(weights, "missing key 'embedding.embed_dict.category.weight'")

    def test_unexpected_key_is_named(self):
        weights = state_dict_to_numpy(rechub_dssm().state_dict())
        weights["embedding.embed_dict.brand.weight"] = np.zeros((3, 8), np.float32)
        self.assert_fails_naming(weights, "unexpected key 'embedding.embed_dict.brand.weight'")
        weights = state_dict_to_numpy(rechub_dssm().state_dict())
        weights["user_mlp.mlp.9.running_mean"] = np.zeros(8, np.float32)
        self.assert_fails_naming(weights, "unexpected key 'user_mlp.mlp.9.running_mean'")

    def test_wrong_shape_is_named_with_both_shapes(self):
        weights = state_dict_to_numpy(rechub_dssm().state_dict())
        weights["item_mlp.mlp.0.weight"] = np.zeros((12, 15), np.float32)
        self.assert_fails_naming(weights, "'item_mlp.mlp.0.weight'", "expected shape [12, 16]", "got [12, 15]")

    def test_no_fm_layout(self):
        with self.assertRaises(ConversionError):
            torch_rechub.build_module("fm_two_tower", RECHUB_DSSM_SPEC, {}, "x")


class Reclite(unittest.TestCase):
    def setUp(self):
        self.module = support.small_dssm()
        self.spec = module_to_spec(self.module)
        self.weights = state_dict_to_numpy(self.module.state_dict())

    def build(self, weights):
        return reclite_layout.build_module("dssm", self.spec, weights, "model.npz")

    def test_round_trip_through_npz(self):
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "model.npz")
            np.savez(path, **self.weights)
            module = self.build(load_weights(path))
        batch = {"user_id": torch.tensor([1]), "history": torch.tensor([[3, 4]]), "activity": torch.tensor([[1., 2.]])}
        with torch.inference_mode():
            np.testing.assert_array_equal(module.user_vector(batch).numpy(), self.module.user_vector(batch).numpy())

    def test_missing_extra_and_wrong_shape_are_named(self):
        weights = dict(self.weights)
        del weights["item_tower.layers.1.linear.bias"]
        with self.assertRaisesRegex(ConversionError, "missing key 'item_tower.layers.1.linear.bias'"):
            self.build(weights)
        weights = dict(self.weights, extra=np.zeros(1, np.float32))
        with self.assertRaisesRegex(ConversionError, "unexpected key 'extra'"):
            self.build(weights)
        weights = dict(self.weights)
        weights["embeddings.item_id.weight"] = np.zeros((support.ITEMS, 9), np.float32)
        with self.assertRaisesRegex(ConversionError,
                                    r"'embeddings.item_id.weight': expected shape \[60, 8\], got \[60, 9\]"):
            self.build(weights)

    def test_num_batches_tracked_is_optional(self):
        weights = {k: v for k, v in self.weights.items() if not k.endswith("num_batches_tracked")}
        self.build(weights)


class Spec(unittest.TestCase):
    def test_errors_name_the_spec_key(self):
        spec = module_to_spec(support.small_dssm())
        spec["user_fields"][0]["colour"] = 1
        with self.assertRaisesRegex(ConversionError, "unknown key 'colour'"):
            module_from_spec("dssm", spec)
        spec = module_to_spec(support.small_dssm())
        del spec["user_fields"][1]["max_length"]
        with self.assertRaisesRegex(ConversionError, "missing key 'max_length'"):
            module_from_spec("dssm", spec)
        spec = module_to_spec(support.small_dssm())
        spec["user_fields"][1]["embedding_name"] = "nothing"
        with self.assertRaisesRegex(ConversionError, "'nothing'"):
            module_from_spec("dssm", spec)

    def test_spec_round_trip(self):
        for module in (support.small_dssm(), support.small_youtube_dnn(), support.small_fm()):
            spec = module_to_spec(module)
            self.assertEqual(module_to_spec(module_from_spec(module.architecture, spec)), spec)


if __name__ == "__main__":
    unittest.main()
