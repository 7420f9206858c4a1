"""SDM reference module: against a float64 numpy computation, the LSTM conventions, the file round trip, the CLI."""

import contextlib
import io
import json
import math
import os
import tempfile
import unittest

import numpy as np
import torch

from reclite_convert.catalogue import Catalogue
from reclite_convert.cli import main
from reclite_convert.model_spec import describe_multi_interest
from reclite_convert.modules.sdm import SDM, lstm_from_tf1, lstm_from_torch, reorder_gates
from reclite_convert.reader import read_model, read_model_file
from reclite_convert.writer import model_bytes
from reclite_convert import mind_sdm_fixtures as fixtures

ITEMS, U, SHORT, LONG = 40, 8, 5, 7
USER_FIELDS = [{"kind": "categorical", "name": "user_id", "vocabulary_size": 6, "embedding_dim": 3},
               {"kind": "dense", "name": "activity", "width": 2}]


def small(variant="deepmatch", seed=0, **kwargs):
    torch.manual_seed(seed)
    module = SDM(ITEMS, U, short_length=SHORT, long_length=LONG, variant=variant,
                 side_histories=[{"name": "category", "vocabulary_size": 6, "embedding_dim": 4}],
                 user_fields=USER_FIELDS, **kwargs)
    fixtures.randomize(module, torch.Generator().manual_seed(seed))
    return module.eval()


def request_for(short, long, user=1):
    return {"user_id": {"ids": [user]}, "activity": {"values": [0.25, -0.5]},
            "short_item": {"ids": list(short)}, "short_category": {"ids": [1 + r % 5 for r in short]},
            "long_item": {"ids": list(long)}, "long_category": {"ids": [1 + r % 5 for r in long]}}


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax_masked(logits, valid, mask_value):
    logits = np.where(valid, logits, mask_value)
    weights = np.exp(logits - logits.max())
    return weights / weights.sum()


def numpy_sdm(module, request):
    """SDM for one request in float64 with explicit loops, from the schema comments (DeepMatch semantics)."""
    p = {k: v.double().numpy() for k, v in module.state_dict().items()}
    u, heads, mask = U, module.attention_heads, module.attention_mask_value
    user = np.concatenate([p["embeddings.user_id.weight"][request["user_id"]["ids"][0]],
                           np.array(request["activity"]["values"], np.float32).astype(np.float64)])
    profile = np.tanh(p["profile.weight"] @ user + p["profile.bias"])

    def window(name, table, length):
        ids = request[name]["ids"][-length:]
        rows = [p[f"embeddings.{table}.weight"][i] for i in ids] + \
            [p[f"embeddings.{table}.weight"][0]] * (length - len(ids))
        return np.array(rows), len(ids)

    pooled = []
    for index, (name, table) in enumerate((("long_item", "item"), ("long_category", "category"))):
        rows, n = window(name, table, LONG)
        scores = np.array([np.tanh(p[f"long_attention.{index}.weight"][0] @ np.concatenate([profile, r]) +
                                   p[f"long_attention.{index}.bias"][0]) / math.sqrt(len(r)) for r in rows])
        pooled.append(softmax_masked(scores, np.arange(LONG) < n, mask) @ rows)
    preference = np.tanh(p["long_output.weight"] @ np.concatenate(pooled) + p["long_output.bias"])
    items, n = window("short_item", "item", SHORT)
    categories, _ = window("short_category", "category", SHORT)
    x = np.tanh(np.concatenate([items, categories], axis=1) @ p["short_input.weight"].T + p["short_input.bias"])
    blocks = {"ifgo": (0, 1, 2, 3), "igfo": (0, 2, 1, 3), "ifco": (0, 1, 2, 3)}[module.lstm_gate_order]
    inputs = x
    for layer in range(module.lstm_layers):
        h, c = np.zeros(u), np.zeros(u)
        outputs = np.zeros((SHORT, u))
        for t in range(n):
            gates = p["lstm_input_weight"] @ inputs[t] + p["lstm_recurrent_weight"] @ h + p["lstm_bias"]
            parts = np.split(gates, 4)
            i, f, g, o = (parts[blocks[k]] for k in range(4))
            c = c * sigmoid(f + module.lstm_forget_bias) + sigmoid(i) * np.tanh(g)
            h = np.tanh(c) * sigmoid(o)
            outputs[t] = h + (inputs[t] if layer > 0 else 0)
        inputs = outputs
    r = inputs
    qkv = r @ p["attention_qkv.weight"].T
    q, k, v = qkv[:, :u], qkv[:, u:2 * u], qkv[:, 2 * u:]
    size = u // heads
    context = np.zeros((SHORT, u))
    for row in range(SHORT):
        for head in range(heads):
            s = slice(head * size, (head + 1) * size)
            logits = np.array([q[row, s] @ k[j, s] / math.sqrt(size) for j in range(SHORT)])
            allowed = np.array([j <= row and j < n for j in range(SHORT)])
            context[row, s] = softmax_masked(logits, allowed, mask) @ v[:, s]
    z = context @ p["attention_output.weight"].T + r
    mean, var = z.mean(axis=1, keepdims=True), z.var(axis=1, keepdims=True)
    states = (z - mean) / np.sqrt(var + module.attention_norm_epsilon) * p["attention_norm.weight"] + \
        p["attention_norm.bias"]
    query = np.tanh(p["user_attention.weight"] @ profile + p["user_attention.bias"])
    scores = states @ query / math.sqrt(u)
    session = softmax_masked(scores, np.arange(SHORT) < n, mask) @ states + states.mean(axis=0)
    gate = sigmoid(p["gate.weight"] @ np.concatenate([preference, session, profile]) + p["gate.bias"])
    out = gate * session + (1 - gate) * preference
    return out / max(np.linalg.norm(out), 1e-12)


class AgainstNumpy(unittest.TestCase):
    def test_deepmatch_and_reclite_variants_match_a_float64_computation(self):
        pairs = [([], []), ([3], []), ([], [4]), ([3, 9], [5, 6, 7]), ([1, 2, 3, 4, 5], [8] * LONG),
                 (list(range(1, 12)), list(range(12, 30))), ([7, 8, 9], [2])]
        for variant in ("deepmatch", "reclite"):
            module = small(variant)
            for short, long in pairs:
                with self.subTest(variant=variant, short=len(short), long=len(long)):
                    request = request_for(short, long)
                    np.testing.assert_allclose(module.user_vectors(request), numpy_sdm(module, request),
                                               atol=2e-5, rtol=0)

    def test_padded_lstm_steps_are_exactly_zero_and_pads_still_matter(self):
        module = small()
        x = torch.randn(2, SHORT, U)
        valid = torch.arange(SHORT).unsqueeze(0) < torch.tensor([[2], [5]])
        with torch.no_grad():
            outputs = module.lstm(x, valid)
        self.assertTrue(bool((outputs[0, 2:] == 0).all()))
        self.assertTrue(bool((outputs[0, :2] != 0).all()))
        # the user attention's residual mean runs over all short_length rows, so the window size matters
        other = small()
        other.short_length = SHORT + 3
        for field in other.short_fields:
            field.max_length = SHORT + 3
        request = request_for([3, 4], [5])
        self.assertGreater(float(np.abs(module.user_vectors(request) - other.user_vectors(request)).max()), 1e-4)

    def test_tf1_cell_with_forget_bias_equals_torch_lstm_after_conversion(self):
        torch.manual_seed(3)
        module = small(lstm_layers=1)
        kernel = np.random.default_rng(0).normal(size=(2 * U, 4 * U)).astype(np.float32) * 0.3
        bias = np.random.default_rng(1).normal(size=4 * U).astype(np.float32) * 0.1
        input_weight, recurrent_weight, cell_bias = lstm_from_tf1(kernel, bias)
        self.assertEqual((input_weight.shape, recurrent_weight.shape), ((4 * U, U), (4 * U, U)))
        with torch.no_grad():
            module.lstm_input_weight.copy_(torch.from_numpy(input_weight))
            module.lstm_recurrent_weight.copy_(torch.from_numpy(recurrent_weight))
            module.lstm_bias.copy_(torch.from_numpy(cell_bias))
        reference = torch.nn.LSTM(U, U, batch_first=True)
        folded = cell_bias.copy()
        folded[2 * U:3 * U] += 1.0  # igfo: f is the third block; torch has no run-time forget bias
        with torch.no_grad():
            reference.weight_ih_l0.copy_(torch.from_numpy(reorder_gates(input_weight, "igfo", "ifgo")))
            reference.weight_hh_l0.copy_(torch.from_numpy(reorder_gates(recurrent_weight, "igfo", "ifgo")))
            reference.bias_ih_l0.copy_(torch.from_numpy(reorder_gates(folded, "igfo", "ifgo")))
            reference.bias_hh_l0.zero_()
            x = torch.randn(1, SHORT, U)
            want, _ = reference(x)
            got = module.lstm(x, torch.ones(1, SHORT, dtype=torch.bool))
        self.assertLess(float((want - got).abs().max()), 1e-6)
        weights = lstm_from_torch(reference)
        np.testing.assert_allclose(reorder_gates(weights[2], "ifgo", "igfo"), folded, atol=1e-7)


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


class Files(unittest.TestCase):
    def test_round_trip_self_test_and_cli(self):
        module = small()
        rows = np.arange(1, ITEMS)
        catalogue = Catalogue(ITEMS, external_ids=7000 + 2 * rows, item_rows=rows, padding_row=0)
        model = read_model(model_bytes(describe_multi_interest(module, catalogue)))
        config = model["config"]
        self.assertEqual(model["architecture"], "sdm")
        for key, value in (("lstm_gate_order", "igfo"), ("lstm_layers", 2), ("attention_heads", 4),
                           ("short_length", SHORT), ("long_length", LONG), ("normalize_items", True),
                           ("long_attention_weights", ["long_attention.0.weight", "long_attention.1.weight"])):
            self.assertEqual(config[key], value, key)
        self.assertAlmostEqual(config["lstm_forget_bias"], 1.0)
        self.assertAlmostEqual(config["attention_norm_epsilon"], 1e-9)
        self.assertAlmostEqual(config["attention_mask_value"], -4294967296.0)
        self.assertEqual([f["name"] for f in config["short_fields"]], ["short_item", "short_category"])
        self.assertEqual([f["ids"] for f in config["long_fields"]], ["item", "vocabulary"])
        for sample in model["self_test"]:
            np.testing.assert_allclose(sample["expected"], module.user_vectors(sample["inputs"], catalogue),
                                       atol=1e-6)
        with tempfile.TemporaryDirectory() as directory:
            path = lambda name: os.path.join(directory, name)  # noqa: E731
            torch.save(module.state_dict(), path("sdm.pt"))
            with open(path("sdm.json"), "w") as file:
                json.dump(module.options(), file)
            status, out, err = run(["convert", "--arch", "sdm", "--spec", path("sdm.json"), "--weights",
                                    path("sdm.pt"), "--lstm-forget-bias", "0.5", "-o", path("sdm.reclite")])
            self.assertEqual(status, 0, err)
            self.assertAlmostEqual(read_model_file(path("sdm.reclite"))["config"]["lstm_forget_bias"], 0.5)
            status, out, _ = run(["inspect", path("sdm.reclite")])
            self.assertEqual(status, 0)
            for text in ("architecture sdm", "sdm: variant deepmatch", "gate order igfo, forget bias 0.5",
                         "short short_item", "long long_category"):
                self.assertIn(text, out)
            status, _, err = run(["convert", "--arch", "sdm", "--layout", "torch_rechub", "--weights",
                                  path("sdm.pt"), "-o", path("x.reclite")])
            self.assertEqual(status, 2)
            self.assertIn("no layout torch_rechub", err)
            del_state = module.state_dict()
            del_state.pop("gate.bias")
            torch.save(del_state, path("broken.pt"))
            status, _, err = run(["convert", "--arch", "sdm", "--spec", path("sdm.json"), "--weights",
                                  path("broken.pt"), "-o", path("x.reclite")])
            self.assertEqual(status, 2)
            self.assertIn("missing key 'gate.bias'", err)


class Fixtures(unittest.TestCase):
    def test_generator_writes_the_documented_files(self):
        torch.set_num_threads(1)
        with tempfile.TemporaryDirectory() as directory:
            names = fixtures.generate(directory, [("mind", "fun_rec"), ("sdm", "deepmatch")])
            self.assertEqual(names, ["mind_fun_rec_random", "mind_fun_rec_trained", "sdm_deepmatch_random",
                                     "sdm_deepmatch_trained"])
            with open(os.path.join(directory, "mind_fun_rec_trained.expected.json")) as file:
                document = json.load(file)
            self.assertEqual([len(u["request"]["history"]["ids"]) for u in document["users"]],
                             list(fixtures.HISTORY_LENGTHS))
            self.assertEqual([u["active_interests"] for u in document["users"]], [1, 1, 1, 2, 2, 3, 3, 4, 4])
            top = document["top_k"][8]
            self.assertEqual(len(top["item_ids"]), 100)
            self.assertTrue(all(a >= b for a, b in zip(top["scores"], top["scores"][1:])))
            self.assertNotIn(7000, top["item_ids"])
            vectors = np.array(document["users"][8]["user_vectors"])
            model = read_model_file(os.path.join(directory, "mind_fun_rec_trained.reclite"))
            items = next(t["array"] for t in model["tensors"] if t["name"] == "catalogue.item_vectors")
            entry = list(model["catalogue"]["external_ids"]).index(top["item_ids"][0])
            self.assertAlmostEqual(top["scores"][0], float(np.max(vectors[:4] @ items[entry].astype(np.float64))))
            with open(os.path.join(directory, "sdm_deepmatch_random.expected.json")) as file:
                sdm = json.load(file)
            self.assertEqual({(len(u["request"]["short_item"]["ids"]), len(u["request"]["long_item"]["ids"]))
                              for u in sdm["users"]}, set(fixtures.SDM_LENGTHS))
            self.assertEqual(sdm["interests"], 1)


if __name__ == "__main__":
    unittest.main()
