"""The `reclite` command-line tool (examples/reclite.cpp) on the converter's fixtures: what a shipping check or a
demo sees. Run by ctest as `cli/reclite` with the tool's path and the fixture directory:

    python3 tests/cli/test_reclite_cli.py RECLITE_BINARY FIXTURE_DIR
"""
import glob
import json
import os
import subprocess
import sys
import tempfile
import unittest

BINARY = ""
FIXTURES = ""


def run(*arguments):
    done = subprocess.run([BINARY, *arguments], capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout, done.stderr


def load_json(path):
    with open(path) as handle:
        return json.load(handle)


class Commands(unittest.TestCase):
    def setUp(self):
        self.scratch = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.scratch.cleanup()

    def scratch_file(self, name, content):
        path = os.path.join(self.scratch.name, name)
        with open(path, "wb" if isinstance(content, bytes) else "w") as handle:
            handle.write(content)
        return path

    def test_usage_errors_exit_2(self):
        self.assertEqual(run()[0], 2)
        self.assertEqual(run("no-such-command")[0], 2)
        self.assertEqual(run("recall", "--model")[0], 2)
        model = os.path.join(FIXTURES, "sasrec", "sasrec_recbole_trained.reclite")
        code, _, err = run("sequence", "--model", model, "--history", "1,x")
        self.assertEqual(code, 2, err)

    def test_inspect_verify_passes_on_every_fixture(self):
        models = sorted(glob.glob(os.path.join(FIXTURES, "**", "*.reclite"), recursive=True))
        self.assertGreaterEqual(len(models), 30)
        for model in models:
            code, out, err = run("inspect", model, "--verify")
            self.assertEqual(code, 0, f"{model}: {err}")
            self.assertIn("self-test: passed", out, model)

    def test_bad_files_fail_with_the_file_named(self):
        code, _, err = run("inspect", "/nonexistent/model.reclite")
        self.assertEqual(code, 1)
        self.assertIn("/nonexistent/model.reclite", err)
        with open(os.path.join(FIXTURES, "dssm_trained.reclite"), "rb") as handle:
            data = handle.read()
        truncated = self.scratch_file("truncated.reclite", data[: len(data) // 2])
        code, _, err = run("inspect", truncated, "--verify")
        self.assertEqual(code, 1)
        self.assertIn("truncated.reclite", err)
        flipped = bytearray(data)
        flipped[len(flipped) - 100] ^= 0x40  # inside the last tensor: its CRC-32 no longer matches
        corrupt = self.scratch_file("corrupt.reclite", bytes(flipped))
        code, _, err = run("inspect", corrupt, "--verify")
        self.assertEqual(code, 1)
        self.assertIn("corrupt.reclite", err)

    def test_mind_encode_and_multi_interest_recall_equal_pytorch(self):
        name = "mind_reclite_trained"
        model = os.path.join(FIXTURES, "multi_interest", name + ".reclite")
        expected = load_json(os.path.join(FIXTURES, "multi_interest", name + ".expected.json"))
        users = expected["users"]
        for top in expected["top_k"][:5]:
            user = users[top["user"]]
            request = self.scratch_file("user.json", json.dumps(user["request"]))
            code, out, err = run("encode", "--model", model, "--user", request)
            self.assertEqual(code, 0, err)
            got = json.loads(out)["user_vector"]
            want = [value for row in user["user_vectors"] for value in row]
            self.assertEqual(len(got), len(want))
            self.assertLessEqual(max(abs(a - b) for a, b in zip(got, want)), expected["tolerance"])

            code, out, err = run("recall", "--model", model, "--exact", "--user", request, "-k", str(top["k"]),
                                 "--keep-seen")
            self.assertEqual(code, 0, err)
            result = json.loads(out)
            self.assertEqual(result["interests"], user["active_interests"])
            items = result["items"]
            self.assertEqual(len(items), len(top["item_ids"]))
            for rank, (item, score) in enumerate(zip(items, top["scores"])):
                self.assertLessEqual(abs(item["score"] - score), 1e-5, rank)
            # Ids equal except where float32 and float64 scores order a near-tie differently.
            same = sum(a["item_id"] == b for a, b in zip(items, top["item_ids"]))
            self.assertGreaterEqual(same, len(items) - 2)

    def test_quota_caps_each_interest(self):
        name = "mind_reclite_trained"
        model = os.path.join(FIXTURES, "multi_interest", name + ".reclite")
        expected = load_json(os.path.join(FIXTURES, "multi_interest", name + ".expected.json"))
        user = max(expected["users"], key=lambda u: u["active_interests"])
        self.assertGreaterEqual(user["active_interests"], 2)
        request = self.scratch_file("user.json", json.dumps(user["request"]))

        def recall(quota):
            code, out, err = run("recall", "--model", model, "--exact", "--user", request, "-k", "20", "--quota", quota)
            self.assertEqual(code, 0, err)
            items = json.loads(out)["items"]
            self.assertEqual(len(items), 20)
            self.assertEqual(len({item["item_id"] for item in items}), len(items))
            counts = {}
            for item in items:
                counts[item["interest"]] = counts.get(item["interest"], 0) + 1
            return max(counts.values())

        self.assertGreater(recall("0"), 6)  # one interest dominates without a quota (12 of 20 when written)
        self.assertLessEqual(recall("6"), 6)

    def test_sequence_appends_equal_the_full_encode_and_states_round_trip(self):
        name = "sasrec_recbole_trained"
        model = os.path.join(FIXTURES, "sasrec", name + ".reclite")
        expected = load_json(os.path.join(FIXTURES, "sasrec", name + ".expected.json"))
        window = expected["max_length"]
        user = next(u for u in expected["users"] if len(u["history"]) == window)
        history, later = user["history"][: window // 2], user["history"][window // 2:]
        saved = os.path.join(self.scratch.name, "state.bin")
        code, out, err = run("sequence", "--model", model, "--history", ",".join(map(str, history)),
                             "--append", ",".join(map(str, later)), "--save", saved)
        self.assertEqual(code, 0, err)
        result = json.loads(out)
        self.assertEqual([a["path"] for a in result["appends"]], ["incremental"] * len(later))
        self.assertEqual(result["appends"][-1]["length"], window)
        got = result["user_vector"]
        self.assertLessEqual(max(abs(a - b) for a, b in zip(got, user["user_vector"])), expected["tolerance"])

        code, out, err = run("sequence", "--model", model, "--restore", saved)
        self.assertEqual(code, 0, err)
        restored = json.loads(out)
        self.assertEqual(restored["length"], window)
        self.assertLessEqual(max(abs(a - b) for a, b in zip(restored["user_vector"], got)), 1e-6)

        with open(saved, "rb") as handle:
            data = bytearray(handle.read())
        data[30] ^= 1
        code, _, err = run("sequence", "--model", model, "--restore", self.scratch_file("bad.bin", bytes(data)))
        self.assertEqual(code, 1)
        self.assertIn("corrupt_state", err)
        self.assertIn("bad.bin", err)
        other = os.path.join(FIXTURES, "sasrec", "sasrec_recbole_random.reclite")
        code, _, err = run("sequence", "--model", other, "--restore", saved)
        self.assertEqual(code, 1)
        self.assertIn("state_model_mismatch", err)


if __name__ == "__main__":
    BINARY, FIXTURES = sys.argv[1], sys.argv[2]
    unittest.main(argv=sys.argv[:1], verbosity=2)
