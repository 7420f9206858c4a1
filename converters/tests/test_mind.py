"""MIND reference module: against a float64 numpy computation, K', masks, label-aware attention, layouts, files."""

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
from reclite_convert.errors import ConversionError
from reclite_convert.layouts import torch_rechub
from reclite_convert.layouts.common import state_dict_to_numpy
from reclite_convert.model_spec import describe_multi_interest
from reclite_convert.modules.mind import VARIANTS, MIND, active_interest_count
from reclite_convert.reader import read_model, read_model_file
from reclite_convert.writer import model_bytes
from reclite_convert import mind_sdm_fixtures as fixtures

ITEMS, HIDDEN, K, T = 40, 8, 4, 6
USER_FIELDS = [{"kind": "categorical", "name": "user_id", "vocabulary_size": 5, "embedding_dim": 3},
               {"kind": "dense", "name": "activity", "width": 2}]
SIDE = [{"name": "history_category", "table": "category", "vocabulary_size": 7}]


def small(variant, seed=0, **kwargs):
    torch.manual_seed(seed)
    side = SIDE if VARIANTS[variant].behaviour_combine != "item_only" or kwargs.get("behaviour_combine") else []
    module = MIND(ITEMS, HIDDEN, interests=K, max_length=T, variant=variant, side_histories=side,
                  user_fields=USER_FIELDS, head_widths=[12, HIDDEN], initial_logits_seed=seed, **kwargs)
    fixtures.randomize(module, torch.Generator().manual_seed(seed))
    return module.eval()


def request_for(module, rows, user=2, activity=(0.5, -1.0)):
    request = {module.history_field: {"ids": list(rows)}, "user_id": {"ids": [user]},
               "activity": {"values": list(activity)}}
    for field in module.history_fields[1:]:
        request[field.name] = {"ids": [1 + r % 6 for r in rows]}
    return request


def numpy_mind(module, request):
    """MIND for one request in float64, written from the schema comments with explicit loops."""
    p = {k: v.double().numpy() for k, v in module.state_dict().items()}
    s = module.settings
    rows = request[module.history_field]["ids"][-T:]
    n = len(rows)
    slots = list(range(n)) if s.padding_side == "right" else list(range(T - n, T))
    behaviours = np.zeros((T, HIDDEN))
    fields = module.history_fields if s.behaviour_combine != "item_only" else module.history_fields[:1]
    for field in fields:
        table = p[f"embeddings.{field.table}.weight"]
        ids = request[field.name]["ids"][-T:]
        column = np.array([table[field.padding_id]] * T)
        for slot, value in zip(slots, ids):
            column[slot] = table[value]
        behaviours += column
    if s.behaviour_combine == "mean":
        behaviours /= len(fields)
    mapped = behaviours @ p["bilinear.weight"].T
    active = max(1, min(K, int(math.floor(math.log2(n + 1))))) if s.dynamic_interests else K
    pads = [t for t in range(T) if t not in slots]
    logits = p["initial_logits"].copy()
    for iteration in range(s.routing_iterations):
        masked = logits.copy()
        if s.dynamic_interests:
            masked[active:, :] = s.inactive_logit
        if s.routing_padding == "logit_before_softmax":
            masked[:, pads] = s.pad_logit
        axis = 1 if s.routing_softmax == "over_behaviours" else 0
        weights = np.exp(masked - masked.max(axis=axis, keepdims=True))
        weights /= weights.sum(axis=axis, keepdims=True)
        if s.routing_padding == "zero_after_softmax":
            weights[:, pads] = 0.0
        capsules = np.zeros((K, HIDDEN))
        for k in range(K):
            z = sum(weights[k, t] * mapped[t] for t in range(T))
            norm2 = float(z @ z)
            capsules[k] = norm2 / (1 + norm2) * z / math.sqrt(norm2 + s.squash_epsilon)
        if iteration + 1 < s.routing_iterations or s.update_logits_on_last_iteration:
            logits = logits + capsules @ mapped.T
    other = np.concatenate([p["embeddings.user_id.weight"][request["user_id"]["ids"][0]],
                            np.array(request["activity"]["values"], dtype=np.float32).astype(np.float64)])
    out = np.zeros((K, HIDDEN))
    for k in range(K):
        x = np.concatenate([other, capsules[k]])
        x = np.maximum(x @ p["head.0.weight"].T + p["head.0.bias"], 0)
        x = x @ p["head.1.weight"].T + p["head.1.bias"]
        if s.head_l2_normalize:
            x = x / max(np.linalg.norm(x), 1e-12)
        out[k] = x if (k < active or not (s.dynamic_interests and s.mask_inactive_interests)) else 0.0
    return out, active


class AgainstNumpy(unittest.TestCase):
    def test_every_variant_matches_a_float64_computation(self):
        lengths = [0, 1, 2, 3, 5, T, T + 3]
        for variant in VARIANTS:
            module = small(variant)
            for length in lengths:
                rows = [1 + (7 * i) % (ITEMS - 1) for i in range(length)]
                request = request_for(module, rows)
                with self.subTest(variant=variant, length=length):
                    want, active = numpy_mind(module, request)
                    got = module.user_vectors(request)
                    self.assertEqual(module.active_interests(request), active)
                    np.testing.assert_allclose(got, want, atol=2e-5, rtol=0)

    def test_sum_combination_and_settings_overrides(self):
        module = small("deepmatch_v020", behaviour_combine="sum", routing_softmax="over_capsules",
                       padding_side="left", squash_epsilon=1e-3, routing_iterations=2)
        request = request_for(module, [3, 9, 4, 22])
        np.testing.assert_allclose(module.user_vectors(request), numpy_mind(module, request)[0], atol=2e-5)


class Behaviours(unittest.TestCase):
    def test_active_interest_count_for_n_0_to_20(self):
        want = [1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4]
        self.assertEqual([active_interest_count(n, 4) for n in range(21)], want)
        # DeepMatch's float32 expression gives the same counts
        deepmatch = [int(max(1, min(4, np.float32(np.log1p(np.float32(n))) / np.float32(math.log(2)))))
                     for n in range(21)]
        self.assertEqual(deepmatch, want)
        self.assertEqual([active_interest_count(n, 2) for n in (0, 3, 100)], [1, 2, 2])
        module = small("deepmatch_v020")
        for n in range(21):
            self.assertEqual(module.active_interests(request_for(module, [1 + i % 30 for i in range(n)])),
                             active_interest_count(min(n, T), K))

    def test_inactive_interests_are_zero_when_masked_and_not_otherwise(self):
        rows = [4, 5, 6]  # n = 3: K' = 2
        for variant, zeroed in (("deepmatch_v020", True), ("deepmatch_head", True), ("fun_rec", False),
                                ("torch_rechub", False)):
            module = small(variant)
            vectors = module.user_vectors(request_for(module, rows))
            with self.subTest(variant=variant):
                self.assertEqual(bool(np.all(vectors[2:] == 0)), zeroed)
                self.assertTrue(np.all(np.abs(vectors[:2]).sum(axis=1) > 0))

    def test_fun_rec_inactive_capsules_are_the_mean_of_the_valid_mapped_behaviours(self):
        module = small("fun_rec", mask_inactive_interests=False)
        rows, valid, counts = module.windows([{"history": [4, 5, 6], "history_category": [1, 2, 3]}])
        mapped = module.bilinear(module.behaviours(rows))
        with torch.no_grad():
            capsules = module.route(mapped, valid, module.active_counts(counts))
            mean = mapped[0][valid[0]].mean(dim=0)
            squared = (mean * mean).sum()
            want = squared / (1 + squared) * mean / torch.sqrt(squared + 1e-9)
        np.testing.assert_allclose(capsules[0, 3].numpy(), want.numpy(), atol=1e-6)

    def test_padding_side_matters_with_a_random_snapshot(self):
        right, left = small("deepmatch_v020"), small("deepmatch_v020", padding_side="left")
        request = request_for(right, [3, 8])
        self.assertGreater(float(np.abs(right.user_vectors(request) - left.user_vectors(request)).max()), 1e-4)

    def test_results_do_not_depend_on_the_batch_or_on_earlier_calls(self):
        module = small("fun_rec")
        first = module.user_vectors(request_for(module, [3, 8, 9]))
        requests = [request_for(module, [5, 6, 7, 8, 9, 10]), request_for(module, [3, 8, 9])]
        interests, _ = module.encode(requests)
        np.testing.assert_array_equal(interests[1].numpy(), first)
        np.testing.assert_array_equal(module.user_vectors(request_for(module, [3, 8, 9])), first)

    def test_label_aware_attention(self):
        for variant in ("deepmatch_v020", "deepmatch_head"):
            module = small(variant)
            request = request_for(module, [3, 8, 9])  # K' = 2
            active = module.active_interests(request)
            self.assertEqual(active, 2)
            vectors = module.user_vectors(request).astype(np.float64)[:active]
            target = module.item_table()[17].detach().double().numpy()
            dots = vectors @ target
            got = module.label_aware_vector(request, 17)
            with self.subTest(variant=variant):
                if module.settings.label_attention_power >= 100:
                    np.testing.assert_array_equal(got, vectors[int(np.argmax(dots))].astype(np.float32))
                else:
                    weights = np.exp(dots - dots.max())
                    np.testing.assert_allclose(got, (weights / weights.sum()) @ vectors, atol=1e-5)

    def test_history_fields_of_different_lengths_fail(self):
        module = small("fun_rec")
        request = request_for(module, [3, 4])
        request["history_category"]["ids"] = [1]
        with self.assertRaisesRegex(ConversionError, "history_category"):
            module.user_vectors(request)


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


class FilesAndLayouts(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.TemporaryDirectory()
        self.addCleanup(self.directory.cleanup)
        self.path = lambda name: os.path.join(self.directory.name, name)
        rows = np.arange(1, ITEMS)
        self.catalogue = Catalogue(ITEMS, external_ids=7000 + 2 * rows, item_rows=rows, padding_row=0)

    def test_round_trip_and_self_test(self):
        module = small("fun_rec")
        model = read_model(model_bytes(describe_multi_interest(module, self.catalogue)))
        config = model["config"]
        self.assertEqual(model["architecture"], "mind")
        for key, value in (("variant", "fun_rec"), ("padding_side", "left"), ("behaviour_combine", "mean"),
                           ("routing_softmax", "over_behaviours"), ("routing_padding", "logit_before_softmax"),
                           ("interests", K), ("max_length", T), ("dynamic_interests", True),
                           ("mask_inactive_interests", False), ("update_logits_on_last_iteration", True),
                           ("initial_logits", "routing.initial_logits"), ("item_embedding", "embedding.item")):
            self.assertEqual(config[key], value, key)
        self.assertAlmostEqual(config["pad_logit"], -4294967296.0)
        self.assertAlmostEqual(config["squash_epsilon"], 1e-9)
        self.assertEqual([f["name"] for f in config["history_fields"]], ["history", "history_category"])
        self.assertEqual([f["name"] for f in config["user_fields"]], ["user_id", "activity"])
        tensors = {t["name"]: t["array"] for t in model["tensors"]}
        np.testing.assert_array_equal(tensors["routing.initial_logits"], module.initial_logits.numpy())
        np.testing.assert_array_equal(tensors["catalogue.item_vectors"][0], module.item_table()[1].detach().numpy())
        self.assertEqual(len(model["self_test"]), 5)
        for sample in model["self_test"]:
            vectors = module.user_vectors(sample["inputs"], self.catalogue).reshape(-1)
            np.testing.assert_allclose(sample["expected"], vectors, atol=1e-6)
            self.assertEqual(len(sample["expected"]), K * HIDDEN)

    def test_torch_rechub_layout_keys_and_shapes(self):
        module = small("torch_rechub")
        state = state_dict_to_numpy({f"embedding.embed_dict.user_id.weight": module.embeddings["user_id"].weight,
                                     "embedding.embed_dict.item.weight": module.embeddings["item"].weight,
                                     "capsule.linear.weight": module.bilinear.weight,
                                     "capsule.relu.0.weight": torch.zeros(HIDDEN, HIDDEN),
                                     "convert_user_weight": torch.zeros(3 + HIDDEN, HIDDEN)})
        options = {"max_length": T, "interests": K}
        built = torch_rechub.build_mind(state, options, "m.pt")
        self.assertEqual(built.history_field, "hist_item")
        self.assertEqual([f.name for f in built.user_fields], ["user_id"])
        self.assertFalse(built.settings.dynamic_interests)
        self.assertEqual(built.settings.padding_side, "left")
        for mutate, message in (
                (lambda s: s.pop("capsule.linear.weight"), "missing key 'capsule.linear.weight'"),
                (lambda s: s.pop("convert_user_weight"), "missing key 'convert_user_weight'"),
                (lambda s: s.__setitem__("extra.weight", np.zeros(2)), "unexpected key 'extra.weight'"),
                (lambda s: s.__setitem__("convert_user_weight", np.zeros((HIDDEN, HIDDEN), np.float32)),
                 r"'convert_user_weight': expected shape \[11, 8\]")):
            broken = dict(state)
            mutate(broken)
            with self.subTest(message=message), self.assertRaisesRegex(ConversionError, message):
                torch_rechub.build_mind(broken, options, "m.pt")
        with self.assertRaisesRegex(ConversionError, "missing key 'embedding.embed_dict.age.weight'"):
            torch_rechub.build_mind(state, dict(options, user_features=["age"]), "m.pt")
        with self.assertRaisesRegex(ConversionError, "--max-length"):
            torch_rechub.build_mind(state, {"interests": K}, "m.pt")

    def test_torch_rechub_style_module_matches_the_converted_one(self):
        torch.set_num_threads(1)
        world = fixtures.World()
        with tempfile.TemporaryDirectory() as scratch:
            name = fixtures.write_fixture(self.directory.name, scratch, world, "mind", "torch_rechub", False, 5)
        with open(self.path(f"{name}.expected.json")) as file:
            document = json.load(file)
        self.assertEqual([u["active_interests"] for u in document["users"]], [K] * len(document["users"]))
        model = read_model_file(self.path(f"{name}.reclite"))
        self.assertEqual(model["config"]["variant"], "torch_rechub")
        self.assertTrue(model["config"]["head_l2_normalize"])
        self.assertEqual(model["metadata"]["layout"], "torch_rechub")

    def test_cli_convert_and_inspect_reclite_and_torch_rechub(self):
        module = small("deepmatch_head")
        torch.save(module.state_dict(), self.path("mind.pt"))
        with open(self.path("mind.json"), "w") as file:
            json.dump(module.options(), file)
        status, out, err = run(["convert", "--arch", "mind", "--spec", self.path("mind.json"), "--weights",
                                self.path("mind.pt"), "--squash-epsilon", "1e-7", "--padding-side", "left",
                                "--mask-inactive-interests", "false", "-o", self.path("mind.reclite")])
        self.assertEqual(status, 0, err)
        config = read_model_file(self.path("mind.reclite"))["config"]
        self.assertEqual((config["padding_side"], config["mask_inactive_interests"]), ("left", False))
        self.assertAlmostEqual(config["squash_epsilon"], 1e-7)
        self.assertEqual(config["routing_softmax"], "over_capsules")
        status, out, _ = run(["inspect", self.path("mind.reclite")])
        self.assertEqual(status, 0)
        for text in ("architecture mind", "mind: variant deepmatch_head", "softmax over_capsules",
                     "squash_epsilon 1e-07", "mask_inactive_interests False", "label_attention_power 100",
                     "history history: history ids=item", "head 1: head.1.weight"):
            self.assertIn(text, out)
        status, out, _ = run(["inspect", self.path("mind.reclite"), "--json"])
        self.assertEqual(json.loads(out)["config"]["interests"], K)
        # a new variant brings its defaults; initial logits can be replaced
        np.save(self.path("logits.npy"), np.ones((1, K, T), np.float32))
        status, out, err = run(["convert", "--arch", "mind", "--spec", self.path("mind.json"), "--weights",
                                self.path("mind.pt"), "--variant", "deepmatch_v020", "--initial-logits",
                                self.path("logits.npy"), "-o", self.path("old.reclite")])
        self.assertEqual(status, 0, err)
        model = read_model_file(self.path("old.reclite"))
        self.assertEqual(model["config"]["routing_softmax"], "over_behaviours")
        logits = next(t["array"] for t in model["tensors"] if t["name"] == "routing.initial_logits")
        np.testing.assert_array_equal(logits, np.ones((K, T), np.float32))
        # torch-rechub checkpoint
        rechub = small("torch_rechub")
        state = {"embedding.embed_dict.user_id.weight": rechub.embeddings["user_id"].weight.detach(),
                 "embedding.embed_dict.movie_id.weight": rechub.embeddings["item"].weight.detach(),
                 "capsule.linear.weight": rechub.bilinear.weight.detach(),
                 "convert_user_weight": torch.rand(3 + HIDDEN, HIDDEN)}
        torch.save(state, self.path("rechub.pt"))
        status, out, err = run(["convert", "--arch", "mind", "--layout", "torch_rechub", "--weights",
                                self.path("rechub.pt"), "--max-length", str(T), "--initial-logits", "zeros",
                                "-o", self.path("rechub.reclite")])
        self.assertEqual(status, 0, err)
        model = read_model_file(self.path("rechub.reclite"))
        self.assertEqual(model["config"]["history_fields"][0]["name"], "hist_movie_id")
        logits = next(t["array"] for t in model["tensors"] if t["name"] == "routing.initial_logits")
        self.assertTrue(np.all(logits == 0))
        status, _, err = run(["convert", "--arch", "mind", "--layout", "torch_rechub", "--weights",
                              self.path("rechub.pt"), "-o", self.path("x.reclite")])
        self.assertEqual(status, 2)
        self.assertIn("--max-length", err)
        status, _, err = run(["convert", "--arch", "mind", "--weights", self.path("mind.pt"), "-o",
                              self.path("x.reclite")])
        self.assertEqual(status, 2)
        self.assertIn("--spec", err)


if __name__ == "__main__":
    unittest.main()
