import unittest

import numpy as np
import torch
import torch.nn.functional as F

from reclite_convert.catalogue import Catalogue
from reclite_convert.layouts import reclite as reclite_layout
from reclite_convert.model_spec import describe, fold_batch_norm
from reclite_convert.modules.features import HistoryFeature
from reclite_convert.modules.two_tower import pool_history
from reclite_convert.spec import module_to_spec
from tests import support


def user_batch(rows_history):
    return {"user_id": torch.tensor([1, 2, 3]), "history": torch.tensor(rows_history),
            "activity": torch.tensor([[0.5, -1.0], [0.0, 2.0], [1.5, 0.25]])}


class BatchNormFolding(unittest.TestCase):
    def test_folded_layers_equal_the_unfolded_module(self):
        module = support.small_dssm(batch_norm=True, seed=3)
        description = describe(module, support.catalogue(), self_test=False)
        tensors = {t.name: t.array for t in description.tensors}
        # the same architecture without BatchNorm, filled with the file's (folded) weights
        spec = module_to_spec(module)
        spec["user_tower"]["batch_norm"] = [False, False]
        weights = {f"embeddings.{n}.weight": tensors[f"embedding.{n}"] for n in module.tables}
        for tower in ("user_tower", "item_tower"):
            for i in range(2):
                weights[f"{tower}.layers.{i}.linear.weight"] = tensors[f"{tower}.{i}.weight"]
                weights[f"{tower}.layers.{i}.linear.bias"] = tensors[f"{tower}.{i}.bias"]
        folded = reclite_layout.build_module("dssm", spec, weights, "folded")
        batch = user_batch([[0, 0, 4, 5], [1, 2, 3, 4], [0, 0, 0, 0]])
        with torch.inference_mode():
            np.testing.assert_allclose(folded.user_vector(batch).numpy(), module.user_vector(batch).numpy(),
                                       atol=1e-6)

    def test_fold_formula(self):
        linear = torch.nn.Linear(3, 2)
        norm = torch.nn.BatchNorm1d(2, eps=1e-3).eval()
        with torch.no_grad():
            norm.running_mean.copy_(torch.tensor([0.5, -0.25]))
            norm.running_var.copy_(torch.tensor([2.0, 0.5]))
            norm.weight.copy_(torch.tensor([1.5, 0.75]))
            norm.bias.copy_(torch.tensor([0.1, -0.2]))
        weight, bias = fold_batch_norm(linear, norm)
        x = torch.randn(4, 3)
        with torch.inference_mode():
            np.testing.assert_allclose(x.numpy() @ weight.T + bias, norm(linear(x)).numpy(), atol=1e-6)


class Pooling(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(1)
        self.table = torch.nn.Embedding(10, 3)

    def pool(self, pooling, ids, **options):
        field = HistoryFeature("history", 4, "t", pooling=pooling, **options)
        with torch.inference_mode():
            return pool_history(field, torch.tensor([ids]), self.table)[0].numpy()

    def rows(self, ids):
        return self.table.weight.detach().numpy()[ids]

    def test_mean_over_valid_ids_of_the_last_max_length(self):
        np.testing.assert_allclose(self.pool("mean", [9, 8, 0, 3, 4]), self.rows([8, 3, 4]).sum(0) / 3, atol=1e-7)
        np.testing.assert_allclose(self.pool("mean", [3, 4], mean_epsilon=0.5), self.rows([3, 4]).sum(0) / 2.5,
                                   atol=1e-7)

    def test_empty_history_pools_to_zeros(self):
        np.testing.assert_array_equal(self.pool("mean", []), np.zeros(3, np.float32))
        np.testing.assert_array_equal(self.pool("sum", [0, 0]), np.zeros(3, np.float32))

    def test_sum(self):
        np.testing.assert_allclose(self.pool("sum", [1, 2, 0]), self.rows([1, 2]).sum(0), atol=1e-7)

    def test_mean_over_window_averages_padding_rows(self):
        expected = (self.rows([5, 6]).sum(0) + 2 * self.rows([2])[0]) / 4
        np.testing.assert_allclose(self.pool("mean_over_window", [5, 6], padding_id=2), expected, atol=1e-7)


class Towers(unittest.TestCase):
    def test_temperature_divides_the_normalised_user_vector(self):
        module = support.small_youtube_dnn()
        batch = {"user_id": torch.tensor([1, 2]), "history": torch.tensor([[3, 4, 5], [0, 0, 7]])}
        with torch.inference_mode():
            vectors = module.user_vector(batch)
            np.testing.assert_allclose(vectors.norm(dim=1).numpy(), [2.0, 2.0], atol=1e-6)
            items = module.item_vector({"item_id": torch.tensor([1, 2])})
            np.testing.assert_allclose(items.numpy(), F.normalize(module.embeddings["item_id"].weight[1:3]).numpy())

    def test_fm_decomposition_is_the_full_score_without_user_terms(self):
        module = support.small_fm()
        with torch.no_grad():
            for table in module.linear.values():
                table.weight.normal_()
            module.bias.fill_(0.3)
        users = {"user_id": torch.tensor([1, 4, 7]), "gender": torch.tensor([0, 2, 1])}
        items = {"item_id": torch.tensor([5, 9, 30]), "category": torch.tensor([1, 1, 4])}
        with torch.inference_mode():
            decomposed = (module.user_vector(users) * module.item_vector(items)).sum(1)
            rows = [module.embeddings[n](users[n]) for n in ("user_id", "gender")]
            user_pairwise = (rows[0] * rows[1]).sum(1)
            user_first = sum(module.linear[n](users[n]).squeeze(1) for n in ("user_id", "gender"))
            full = module.score(users, items)
            np.testing.assert_allclose(decomposed.numpy(), (full - module.bias - user_first - user_pairwise).numpy(),
                                       atol=1e-5)


class SelfTestUsesExternalIds(unittest.TestCase):
    def test_history_ids_are_mapped_through_the_catalogue(self):
        module = support.small_youtube_dnn()
        catalogue = Catalogue(support.ITEMS, external_ids=100 + np.arange(1, support.ITEMS))
        from reclite_convert.requests import user_vectors
        request = {"user_id": {"ids": [3]}, "history": {"ids": [101, 105]}}
        with torch.inference_mode():
            expected = module.user_vector({"user_id": torch.tensor([3]), "history": torch.tensor([[1, 5]])})
        np.testing.assert_allclose(user_vectors(module, [request], catalogue), expected.numpy(), atol=1e-7)


if __name__ == "__main__":
    unittest.main()
