"""SASRec reference modules: against independent computations, and the behaviours each variant must keep."""

import math
import tempfile
import unittest

import numpy as np
import torch

from reclite_convert.errors import ConversionError
from reclite_convert.modules.sasrec import VARIANTS, SASRec, synthetic_sequences, train_next_item
from reclite_convert import sasrec_fixtures as fixtures

ITEMS, MAX_LENGTH, HIDDEN, HEADS, INNER, LAYERS = 40, 8, 16, 2, 24, 2
HISTORIES = [[3], [5, 7], list(range(1, MAX_LENGTH)), list(range(2, 2 + MAX_LENGTH)), list(range(1, 20))]


def small(variant, seed=0, **kwargs):
    torch.manual_seed(seed)
    module = SASRec(ITEMS, MAX_LENGTH, HIDDEN, HEADS, INNER, LAYERS, variant=variant, **kwargs)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if parameter.dim() == 1:
                parameter.copy_(torch.rand(parameter.shape, generator=generator) * 0.8 +
                                (0.6 if name.endswith("weight") else -0.4))
    return module.eval()


def numpy_recbole(module, history):
    """RecBole's SASRec, position by position in float64: only positions 0..n-1 exist (the pads are masked)."""
    p = {k: v.double().numpy() for k, v in module.state_dict().items()}
    eps = module.layer_norm_epsilon

    def norm(x, name):
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * p[name + ".weight"] + p[name + ".bias"]

    def linear(x, name):
        return x @ p[name + ".weight"].T + p[name + ".bias"]

    rows = history[-module.max_length:]
    n = len(rows)
    x = norm(p["item_embedding.weight"][rows] + p["position_embedding.weight"][:n], "embedding_norm")
    dh = HIDDEN // HEADS
    for l in range(LAYERS):
        q, k, v = (linear(x, f"layers.{l}.{part}") for part in ("query", "key", "value"))
        context = np.zeros_like(x)
        for i in range(n):
            for h in range(HEADS):
                s = slice(h * dh, (h + 1) * dh)
                logits = np.array([q[i, s] @ k[j, s] / math.sqrt(dh) for j in range(i + 1)])
                weights = np.exp(logits - logits.max())
                weights /= weights.sum()
                context[i, s] = weights @ v[:i + 1, s]
        a = norm(x + linear(context, f"layers.{l}.output"), f"layers.{l}.attention_norm")
        inner = linear(a, f"layers.{l}.inner")
        inner = inner * 0.5 * (1 + np.vectorize(math.erf)(inner / math.sqrt(2)))
        x = norm(a + linear(inner, f"layers.{l}.outer"), f"layers.{l}.feed_forward_norm")
    return x[n - 1]


class AgainstIndependentComputations(unittest.TestCase):
    def test_recbole_module_matches_a_position_by_position_float64_computation(self):
        module = small("recbole")
        with torch.no_grad():
            ours = module.user_vector(HISTORIES).double().numpy()
        for history, vector in zip(HISTORIES, ours):
            with self.subTest(length=len(history)):
                np.testing.assert_allclose(vector, numpy_recbole(module, history), atol=2e-5)

    def test_every_variant_matches_its_library_style_module_through_its_layout(self):
        torch.set_num_threads(1)
        for variant in VARIANTS:
            with self.subTest(variant=variant), tempfile.TemporaryDirectory() as directory:
                library = fixtures.make_library_module(variant, layers=2)
                fixtures.randomize(library, torch.Generator().manual_seed(5))
                module = fixtures.library_state_dict(library, directory, variant)
                self.assertEqual(module.variant.name, variant)
                histories = HISTORIES + ([[]] if variant != "recbole" else []) + [list(range(1, 60))]
                with torch.no_grad():
                    want = library.user_vector(histories)
                    got = module.user_vector(histories)
                self.assertLess(float((want - got).abs().max()), 1e-5)

    def test_pmixer_v1_module_matches_nn_multihead_attention_by_hand(self):
        """pmixer V1's block with torch's own MultiheadAttention, written out here (not the fixture class)."""
        module = small("pmixer_v1")
        state = module.state_dict()
        attention = torch.nn.MultiheadAttention(HIDDEN, HEADS, 0.0).eval()
        window = torch.tensor([[0] * 5 + [4, 9, 2]])
        with torch.no_grad():
            x = module.item_embedding(window) * HIDDEN ** 0.5 + module.position_embedding(torch.arange(8))
            keep = (window != 0).unsqueeze(-1)
            x = x * keep
            causal = ~torch.tril(torch.ones(8, 8, dtype=torch.bool))
            for l, layer in enumerate(module.layers):
                attention.in_proj_weight.copy_(torch.cat([state[f"layers.{l}.{p}.weight"]
                                                          for p in ("query", "key", "value")]))
                attention.in_proj_bias.copy_(torch.cat([state[f"layers.{l}.{p}.bias"]
                                                        for p in ("query", "key", "value")]))
                attention.out_proj.weight.copy_(state[f"layers.{l}.output.weight"])
                attention.out_proj.bias.copy_(state[f"layers.{l}.output.bias"])
                q = layer.attention_norm(x).transpose(0, 1)
                out, _ = attention(q, x.transpose(0, 1), x.transpose(0, 1), attn_mask=causal)
                z = layer.feed_forward_norm((q + out).transpose(0, 1))
                x = (layer.outer(torch.relu(layer.inner(z))) + z) * keep
            want = module.final_norm(x)[:, -1]
            got = module.user_vector([[4, 9, 2]])
        self.assertLess(float((want - got).abs().max()), 1e-5)


class VariantBehaviour(unittest.TestCase):
    def test_recbole_masks_pads_so_the_padding_row_does_not_matter(self):
        module = small("recbole")
        with torch.no_grad():
            before = module.user_vector(HISTORIES[:3])
            module.item_embedding.weight[0].add_(3.0)
            after = module.user_vector(HISTORIES[:3])
        self.assertLess(float((before - after).abs().max()), 1e-6)

    def test_pmixer_attends_pads_so_the_pad_state_matters(self):
        # (V1 zeroes pad rows, so there pads show only through their count, i.e. the window length)
        for variant in ("pmixer_v2", "pmixer_v3", "pmixer_v3_pre_norm"):
            with self.subTest(variant=variant):
                module = small(variant)
                with torch.no_grad():
                    before = module.user_vector([[3, 4]])
                    module.position_embedding.weight[0].add_(torch.linspace(-1.0, 1.0, HIDDEN))
                    after = module.user_vector([[3, 4]])
                self.assertGreater(float((before - after).abs().max()), 1e-3)

    def test_window_is_the_most_recent_max_length_items(self):
        for variant in VARIANTS:
            module = small(variant)
            with torch.no_grad():
                long = module.user_vector([list(range(1, 30))])
                cut = module.user_vector([list(range(30 - MAX_LENGTH, 30))])
            self.assertLess(float((long - cut).abs().max()), 1e-6, variant)

    def test_empty_history(self):
        with self.assertRaisesRegex(ConversionError, "empty history"):
            small("recbole").user_vector([[]])
        for variant in VARIANTS:
            if variant != "recbole":
                self.assertTrue(torch.isfinite(small(variant).user_vector([[]])).all())

    def test_heads_must_divide_hidden(self):
        with self.assertRaisesRegex(ConversionError, "--heads"):
            SASRec(ITEMS, MAX_LENGTH, HIDDEN, 3, INNER, 1, variant="recbole")

    def test_brief_training_learns_the_sequence_log(self):
        torch.manual_seed(0)
        module = SASRec(ITEMS, MAX_LENGTH, HIDDEN, HEADS, HIDDEN, 1, variant="pmixer_v3")
        sequences = synthetic_sequences(ITEMS, users=50, length=20, seed=1)
        histories, targets = [s[:15] for s in sequences], torch.tensor([s[15] for s in sequences])

        def loss():
            with torch.no_grad():
                logits = module.score(histories)
                logits[:, 0] = -math.inf
                return float(torch.nn.functional.cross_entropy(logits, targets))
        before = loss()
        train_next_item(module, sequences, steps=60, batch_size=32, learning_rate=0.01)
        self.assertLess(loss(), before - 0.5)


if __name__ == "__main__":
    unittest.main()
