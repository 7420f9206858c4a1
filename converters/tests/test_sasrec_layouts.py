"""SASRec layouts (RecBole, pmixer, torch-rechub), the model-file round trip, the CLI and the fixtures."""

import contextlib
import io
import json
import math
import os
import tempfile
import unittest

import numpy as np
import torch

from reclite_convert import sasrec_fixtures as fixtures
from reclite_convert.catalogue import Catalogue
from reclite_convert.cli import main
from reclite_convert.errors import ConversionError
from reclite_convert.layouts import pmixer, recbole, torch_rechub
from reclite_convert.layouts.common import state_dict_to_numpy
from reclite_convert.model_spec import describe_sasrec
from reclite_convert.modules.sasrec import VARIANTS, SASRec, SasRecOptions
from reclite_convert.reader import read_model
from reclite_convert.writer import model_bytes

ITEMS, MAX_LENGTH, HIDDEN, HEADS, LAYERS = 30, 6, 16, 2, 2


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


def library(variant, seed=0):
    torch.manual_seed(seed)
    if variant == "recbole":
        module = fixtures.RecBoleStyleSASRec(ITEMS, MAX_LENGTH, HIDDEN, HEADS, 24, LAYERS)
    elif variant == "torch_rechub":
        module = fixtures.RechubStyleSASRec(ITEMS, MAX_LENGTH, HIDDEN, HEADS, LAYERS)
    else:
        generation = {"pmixer_v1": 1, "pmixer_v2": 2}.get(variant, 3)
        module = fixtures.PmixerStyleSASRec(ITEMS - 1, MAX_LENGTH, HIDDEN, HEADS, LAYERS, generation,
                                            variant == "pmixer_v3_pre_norm")
    fixtures.randomize(module, torch.Generator().manual_seed(seed))
    return module


def weights_of(module):
    return state_dict_to_numpy(module.state_dict())


# The schema fields each variant must set (the table), pinned here so a change is a decision.
EXPECTED_CONFIG = {
    "recbole": dict(block_style="post_norm", padding_side="right", embedding_scale=1.0, position_offset=0,
                    pads_use_position_zero=False, embedding_norm_weight="embedding_norm.weight",
                    mask_padding_keys=True, mask_value=-10000.0, zero_padding_rows=False, activation="gelu_erf",
                    final_norm_weight=None, layer_norm_epsilon=1e-12),
    "pmixer_v1": dict(block_style="query_norm", padding_side="left", embedding_scale=math.sqrt(HIDDEN),
                      position_offset=0, pads_use_position_zero=False, embedding_norm_weight=None,
                      mask_padding_keys=False, mask_value=-math.inf, zero_padding_rows=True, activation="relu",
                      final_norm_weight="final_norm.weight", layer_norm_epsilon=1e-8),
}
EXPECTED_CONFIG["torch_rechub"] = EXPECTED_CONFIG["pmixer_v1"]
EXPECTED_CONFIG["pmixer_v2"] = dict(EXPECTED_CONFIG["pmixer_v1"], position_offset=1, pads_use_position_zero=True,
                                    zero_padding_rows=False)
EXPECTED_CONFIG["pmixer_v3"] = dict(EXPECTED_CONFIG["pmixer_v2"], block_style="post_norm")
EXPECTED_CONFIG["pmixer_v3_pre_norm"] = dict(EXPECTED_CONFIG["pmixer_v2"], block_style="pre_norm")


class Layouts(unittest.TestCase):
    def test_recbole_reads_heads_activation_epsilon_and_length_from_the_saved_config(self):
        module = library("recbole")
        saved = {"n_heads": 4, "hidden_act": "relu", "layer_norm_eps": 1e-6, "MAX_ITEM_LIST_LENGTH": MAX_LENGTH}
        built = recbole.build_sasrec(weights_of(module), SasRecOptions(), "ckpt", saved)
        self.assertEqual((built.heads, built.activation, built.layer_norm_epsilon), (4, "relu", 1e-6))
        built = recbole.build_sasrec(weights_of(module), SasRecOptions(heads=8), "ckpt", saved)
        self.assertEqual(built.heads, 8)
        built = recbole.build_sasrec(weights_of(module), SasRecOptions(), "ckpt")  # bare: RecBole's defaults
        self.assertEqual((built.heads, built.activation, built.layer_norm_epsilon), (2, "gelu_erf", 1e-12))

    def test_recbole_checkpoint_dict_and_bare_state_dict(self):
        module = library("recbole")
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "SASRec.pth")
            torch.save({"config": {"n_heads": 2, "MAX_ITEM_LIST_LENGTH": MAX_LENGTH}, "epoch": 1,
                        "state_dict": module.state_dict(), "other_parameter": None}, path)
            weights, saved = recbole.load_checkpoint(path)
            self.assertEqual(saved, {"n_heads": 2, "MAX_ITEM_LIST_LENGTH": MAX_LENGTH})
            torch.save(module.state_dict(), path)
            bare, saved = recbole.load_checkpoint(path)
            self.assertEqual(saved, {})
            self.assertEqual(set(weights), set(bare))

    def test_recbole_length_in_config_must_match_the_position_table(self):
        with self.assertRaisesRegex(ConversionError, "position_embedding.weight' has 6 rows"):
            recbole.build_sasrec(weights_of(library("recbole")), SasRecOptions(), "ckpt",
                                 {"MAX_ITEM_LIST_LENGTH": 50})

    def test_recbole_swish_is_refused_by_name(self):
        with self.assertRaisesRegex(ConversionError, "hidden_act 'swish'"):
            recbole.build_sasrec(weights_of(library("recbole")), SasRecOptions(), "ckpt", {"hidden_act": "swish"})

    def test_missing_layer_key_is_named_in_the_library_spelling(self):
        cases = [("recbole", "trm_encoder.layer.1.feed_forward.dense_2.weight",
                  lambda w: recbole.build_sasrec(w, SasRecOptions(), "ckpt")),
                 ("pmixer_v2", "attention_layers.1.in_proj_weight",
                  lambda w: pmixer.build_sasrec(w, SasRecOptions(variant="v2", heads=2), "ckpt")),
                 ("pmixer_v1", "forward_layers.0.conv1.bias",
                  lambda w: pmixer.build_sasrec(w, SasRecOptions(variant="v1", heads=2), "ckpt")),
                 ("torch_rechub", "last_layernorm.weight",
                  lambda w: torch_rechub.build_sasrec(w, SasRecOptions(heads=2), "ckpt"))]
        for variant, key, build in cases:
            with self.subTest(key=key):
                weights = weights_of(library(variant))
                del weights[key]
                with self.assertRaisesRegex(ConversionError, f"missing key '{key}'"):
                    build(weights)

    def test_unexpected_key(self):
        weights = weights_of(library("pmixer_v1"))
        weights["extra.weight"] = np.zeros(3, np.float32)
        with self.assertRaisesRegex(ConversionError, "unexpected key 'extra.weight'"):
            pmixer.build_sasrec(weights, SasRecOptions(variant="v1", heads=2), "ckpt")

    def test_heads_not_dividing_hidden_names_the_option(self):
        with self.assertRaisesRegex(ConversionError, "option --heads: 3 heads do not divide the hidden size 16"):
            pmixer.build_sasrec(weights_of(library("pmixer_v1")), SasRecOptions(variant="v1", heads=3), "ckpt")
        with self.assertRaisesRegex(ConversionError, "option --heads"):
            recbole.build_sasrec(weights_of(library("recbole")), SasRecOptions(), "ckpt", {"n_heads": 5})

    def test_pmixer_needs_a_variant_that_fits_the_position_table(self):
        v1 = weights_of(library("pmixer_v1"))
        with self.assertRaisesRegex(ConversionError, "option --variant: required"):
            pmixer.build_sasrec(v1, SasRecOptions(), "ckpt")
        with self.assertRaisesRegex(ConversionError, "key 'pos_emb.weight': row 0 is not zero"):
            pmixer.build_sasrec(v1, SasRecOptions(variant="v3"), "ckpt")
        with self.assertRaisesRegex(ConversionError, "'pos_emb.weight' has 6 rows; variant pmixer_v1 with max "
                                                     "length 5 needs 5"):
            pmixer.build_sasrec(v1, SasRecOptions(variant="v1", max_length=5), "ckpt")
        v2 = weights_of(library("pmixer_v2"))
        with self.assertRaisesRegex(ConversionError, "'pos_emb.weight' has 7 rows; variant pmixer_v2 with max "
                                                     "length 7 needs 8"):
            pmixer.build_sasrec(v2, SasRecOptions(variant="v2", max_length=7), "ckpt")
        built = pmixer.build_sasrec(v2, SasRecOptions(variant="pmixer_v2", heads=2), "ckpt")
        self.assertEqual(built.max_length, MAX_LENGTH)
        with self.assertRaisesRegex(ConversionError, "variants v1, v2, v3, v3_pre_norm"):
            pmixer.build_sasrec(v2, SasRecOptions(variant="v4"), "ckpt")

    def test_pmixer_defaults_and_conv_weights(self):
        module = library("pmixer_v3")
        built = pmixer.build_sasrec(weights_of(module), SasRecOptions(variant="v3"), "ckpt")
        self.assertEqual((built.heads, built.activation, built.layer_norm_epsilon, built.inner_size), (1, "relu",
                                                                                                        1e-8, HIDDEN))
        np.testing.assert_array_equal(built.layers[1].inner.weight.detach().numpy(),
                                      module.forward_layers[1].conv1.weight.detach().numpy()[:, :, 0])
        np.testing.assert_array_equal(built.layers[0].key.weight.detach().numpy(),
                                      module.attention_layers[0].in_proj_weight.detach().numpy()[HIDDEN:2 * HIDDEN])

    def test_torch_rechub_history_field_is_the_sequence_feature(self):
        built = torch_rechub.build_sasrec(weights_of(library("torch_rechub")), SasRecOptions(heads=2), "ckpt")
        self.assertEqual((built.history_field, built.variant.name), ("seq", "torch_rechub"))
        with self.assertRaisesRegex(ConversionError, "item_emb.embed_dict.clicks.weight"):
            torch_rechub.build_sasrec(weights_of(library("torch_rechub")), SasRecOptions(history_field="clicks"),
                                      "ckpt")


class RoundTrip(unittest.TestCase):
    def test_every_variant_writes_its_schema_fields_tensors_catalogue_and_samples(self):
        for variant in VARIANTS:
            with self.subTest(variant=variant):
                torch.manual_seed(1)
                module = SASRec(ITEMS, MAX_LENGTH, HIDDEN, HEADS, 24, LAYERS, variant=variant).eval()
                rows = np.arange(1, ITEMS)
                catalogue = Catalogue(ITEMS, external_ids=5000 + 3 * rows, item_rows=rows)
                description = describe_sasrec(module, catalogue, {"source": "test"})
                model = read_model(model_bytes(description))
                self.assertEqual(model["architecture"], "sasrec")
                config = model["config"]
                for key, value in EXPECTED_CONFIG[variant].items():
                    if isinstance(value, float):
                        self.assertAlmostEqual(config[key], value, delta=abs(value) * 1e-6, msg=key)
                    else:
                        self.assertEqual(config[key], value, key)
                self.assertEqual((config["variant"], config["max_length"], config["hidden_size"], config["heads"],
                                  config["inner_size"], len(config["layers"]), config["padding_row"]),
                                 (variant, MAX_LENGTH, HIDDEN, HEADS, 24, LAYERS, 0))
                tensors = {t["name"]: t for t in model["tensors"]}
                self.assertTrue(all(t["crc_ok"] and t["offset"] % 64 == 0 for t in tensors.values()))
                self.assertEqual(tensors[config["position_embedding"]]["shape"],
                                 [MAX_LENGTH + EXPECTED_CONFIG[variant]["position_offset"], HIDDEN])
                layer = config["layers"][1]
                for part in ("query", "key", "value", "output", "inner", "outer"):
                    np.testing.assert_array_equal(tensors[layer[f"{part}_weight"]]["array"],
                                                  getattr(module.layers[1], part).weight.detach().numpy())
                self.assertEqual(tensors[layer["inner_weight"]]["shape"], [24, HIDDEN])
                np.testing.assert_array_equal(model["catalogue"]["external_ids"], 5000 + 3 * rows)
                np.testing.assert_array_equal(model["catalogue"]["item_rows"], rows)
                np.testing.assert_array_equal(tensors[model["catalogue"]["item_vectors"]]["array"],
                                              module.item_embedding.weight.detach().numpy()[1:])
                samples = model["self_test"]
                lengths = [len(s["inputs"]["history"]["ids"]) for s in samples]
                self.assertEqual(0 in lengths, variant != "recbole")
                self.assertIn(MAX_LENGTH + 7, lengths)
                for sample in samples:
                    self.assertEqual((sample["target"], list(sample["inputs"])), ("user_vector", ["history"]))
                    history = catalogue.rows_of(sample["inputs"]["history"]["ids"]).tolist()
                    with torch.no_grad():
                        want = module.user_vector([history])[0].numpy()
                    np.testing.assert_allclose(sample["expected"], want, atol=1e-6)
                    self.assertAlmostEqual(sample["tolerance"], 1e-5)


class CommandLine(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.TemporaryDirectory()
        self.addCleanup(self.directory.cleanup)
        self.path = lambda name: os.path.join(self.directory.name, name)

    def test_pmixer_convert_then_inspect_prints_the_settings(self):
        torch.save(library("pmixer_v3_pre_norm").state_dict(), self.path("pmixer.pt"))
        np.save(self.path("ids.npy"), 5000 + 3 * np.arange(1, ITEMS))
        status, out, err = run(["convert", "--arch", "sasrec", "--layout", "pmixer", "--variant", "v3_pre_norm",
                                "--heads", "2", "--weights", self.path("pmixer.pt"), "--item-ids",
                                self.path("ids.npy"), "-o", self.path("out.reclite")])
        self.assertEqual(status, 0, err)
        self.assertIn("variant pmixer_v3_pre_norm, heads 2", out)
        status, out, _ = run(["inspect", self.path("out.reclite")])
        self.assertEqual(status, 0)
        for text in ("architecture sasrec", "variant pmixer_v3_pre_norm", "heads 2", "layer_norm_epsilon 1e-08",
                     "block_style pre_norm", "padding_side left", "mask_value -inf", f"catalogue: {ITEMS - 1} items",
                     "self-test: 5 samples", "all checksums match"):
            self.assertIn(text, out)
        status, out, _ = run(["inspect", self.path("out.reclite"), "--json"])
        self.assertEqual(json.loads(out)["config"]["variant"], "pmixer_v3_pre_norm")

    def test_recbole_convert_uses_the_saved_config(self):
        module = library("recbole")
        torch.save({"config": dict(module.config), "state_dict": module.state_dict()}, self.path("recbole.pth"))
        status, out, err = run(["convert", "--arch", "sasrec", "--layout", "recbole", "--weights",
                                self.path("recbole.pth"), "-o", self.path("out.reclite")])
        self.assertEqual(status, 0, err)
        status, out, _ = run(["inspect", self.path("out.reclite")])
        for text in ("variant recbole", "heads 2", "layer_norm_epsilon 1e-12", "activation gelu_erf",
                     "padding_side right", "mask_value -10000", "embedding_norm embedding_norm.weight"):
            self.assertIn(text, out)

    def test_errors_exit_2_naming_the_option(self):
        torch.save(library("pmixer_v1").state_dict(), self.path("pmixer.pt"))
        status, _, err = run(["convert", "--arch", "sasrec", "--layout", "pmixer", "--weights",
                              self.path("pmixer.pt"), "-o", self.path("out.reclite")])
        self.assertEqual(status, 2)
        self.assertIn("--variant", err)
        status, _, err = run(["convert", "--arch", "sasrec", "--layout", "pmixer", "--variant", "v1", "--heads",
                              "3", "--weights", self.path("pmixer.pt"), "-o", self.path("out.reclite")])
        self.assertEqual(status, 2)
        self.assertIn("option --heads", err)
        status, _, err = run(["convert", "--arch", "dssm", "--layout", "pmixer", "--weights",
                              self.path("pmixer.pt"), "-o", self.path("out.reclite")])
        self.assertEqual(status, 2)


class Fixtures(unittest.TestCase):
    def test_one_fixture_is_self_consistent(self):
        torch.set_num_threads(1)
        sequences = fixtures.synthetic_sequences(fixtures.ITEM_ROWS, users=30, length=40, seed=3)
        with tempfile.TemporaryDirectory() as directory:
            name = fixtures.write_fixture(directory, directory, "pmixer_v2", False, 5, sequences)
            with open(os.path.join(directory, f"{name}.expected.json")) as file:
                expected = json.load(file)
            with open(os.path.join(directory, f"{name}.reclite"), "rb") as file:
                model = read_model(file.read())
        self.assertEqual([len(u["history"]) for u in expected["users"]][:6], [0, 1, 2, 19, 20, 27])
        self.assertEqual(expected["history_field"], model["config"]["history_field"])
        vectors = next(t["array"] for t in model["tensors"] if t["name"] == "catalogue.item_vectors")
        ids = model["catalogue"]["external_ids"]
        self.assertNotIn(5000, ids)  # row 0 is padding, not an item
        user = np.array(expected["users"][1]["user_vector"], np.float32).astype(np.float64)
        scores = vectors.astype(np.float64) @ user
        top = expected["top_k"][1]
        self.assertEqual(top["item_ids"][0], int(ids[int(np.argmax(scores))]))
        self.assertEqual(len(top["item_ids"]), 100)
        self.assertTrue(all(a >= b for a, b in zip(top["scores"], top["scores"][1:])))


if __name__ == "__main__":
    unittest.main()
