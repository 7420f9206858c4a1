import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

from reclite_convert.cli import main
from reclite_convert.reader import read_model_file
from reclite_convert.spec import module_to_spec
from tests import support

CONVERTERS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


class ConvertAndInspect(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.TemporaryDirectory()
        self.addCleanup(self.directory.cleanup)
        self.module = support.small_dssm()
        self.path = lambda name: os.path.join(self.directory.name, name)
        with open(self.path("spec.json"), "w") as file:
            json.dump(module_to_spec(self.module), file)
        torch.save(self.module.state_dict(), self.path("model.pt"))
        np.save(self.path("ids.npy"), 1000 + 7 * np.arange(1, support.ITEMS))
        np.savez(self.path("items.npz"), category=support.catalogue().item_features["category"])

    def convert(self, *extra):
        return run(["convert", "--arch", "dssm", "--spec", self.path("spec.json"), "--weights", self.path("model.pt"),
                    "--item-ids", self.path("ids.npy"), "--item-features", self.path("items.npz"),
                    "-o", self.path("out.reclite"), *extra])

    def test_convert_then_inspect(self):
        status, out, err = self.convert()
        self.assertEqual(status, 0, err)
        model = read_model_file(self.path("out.reclite"))
        self.assertEqual(model["catalogue"]["external_ids"][0], 1007)
        self.assertEqual(model["metadata"]["source"], "model.pt")
        status, out, _ = run(["inspect", self.path("out.reclite"), "--tensors"])
        self.assertEqual(status, 0)
        for text in ("RCLT", "format 1.0", "architecture dssm", "catalogue: 59 items", "user_tower.0.weight",
                     "self-test: ", "all checksums match"):
            self.assertIn(text, out)
        status, out, _ = run(["inspect", self.path("out.reclite"), "--json"])
        summary = json.loads(out)
        self.assertEqual(summary["catalogue"]["entries"], 59)
        self.assertEqual(summary["architecture"], "dssm")

    def test_inspect_reports_a_bad_checksum(self):
        self.assertEqual(self.convert()[0], 0)
        model = read_model_file(self.path("out.reclite"))
        table = next(t for t in model["tensors"] if t["name"] == "embedding.item_id")
        with open(self.path("out.reclite"), "rb") as file:
            data = bytearray(file.read())
        data[table["offset"] + 5] ^= 0x10
        with open(self.path("bad.reclite"), "wb") as file:
            file.write(bytes(data))
        status, out, _ = run(["inspect", self.path("bad.reclite")])
        self.assertEqual(status, 1)
        self.assertIn("BAD CHECKSUM: embedding.item_id", out)

    def test_errors_exit_2_naming_the_key(self):
        state = self.module.state_dict()
        del state["user_tower.layers.0.linear.bias"]
        torch.save(state, self.path("model.pt"))
        status, _, err = self.convert()
        self.assertEqual(status, 2)
        self.assertIn("missing key 'user_tower.layers.0.linear.bias'", err)

    def test_duplicate_external_ids_exit_2(self):
        ids = 1000 + 7 * np.arange(1, support.ITEMS)
        ids[3] = ids[4]
        np.save(self.path("ids.npy"), ids)
        status, _, err = self.convert()
        self.assertEqual(status, 2)
        self.assertIn("is given to more than one item", err)

    def test_torch_rechub_npz(self):
        from tests.test_layouts import RECHUB_DSSM_SPEC, rechub_dssm
        from reclite_convert.layouts.common import state_dict_to_numpy
        np.savez(self.path("rechub.npz"), **state_dict_to_numpy(rechub_dssm().state_dict()))
        with open(self.path("rechub.json"), "w") as file:
            json.dump(RECHUB_DSSM_SPEC, file)
        np.savez(self.path("items.npz"), category=np.arange(30) % 4)
        status, out, err = run(["convert", "--arch", "dssm", "--layout", "torch_rechub", "--spec",
                                self.path("rechub.json"), "--weights", self.path("rechub.npz"),
                                "--item-features", self.path("items.npz"), "-o", self.path("rechub.reclite")])
        self.assertEqual(status, 0, err)
        model = read_model_file(self.path("rechub.reclite"))
        self.assertEqual(model["metadata"]["layout"], "torch_rechub")
        self.assertEqual([l["activation"] for l in model["config"]["user_tower"]["layers"]], ["relu", "relu"])
        self.assertEqual(model["config"]["user_tower"]["inputs"][1]["pooling"], "mean_over_window")

    def test_module_entry_point(self):
        result = subprocess.run([sys.executable, "-m", "reclite_convert", "inspect", self.path("missing.reclite")],
                                cwd=CONVERTERS, capture_output=True, text=True,
                                env=dict(os.environ, PYTHONPATH=CONVERTERS))
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("missing.reclite", result.stderr)


if __name__ == "__main__":
    unittest.main()
