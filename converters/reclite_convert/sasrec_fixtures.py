"""SASRec model fixtures for the C++ tests: `/usr/bin/python3 -m reclite_convert.sasrec_fixtures --out DIR`.

For every public variant (recbole, pmixer_v1, pmixer_v2, pmixer_v3, pmixer_v3_pre_norm, torch_rechub), with random
and with briefly trained weights, a library-style module (below: written from models.md §1, with the library's
own module structure and key names) produces a state_dict in that library's layout. It is converted through the
variant's own layout (RecBole: from a saved {'state_dict', 'config'} dict) into NAME.reclite, and the expected
outputs come from the library-style module, checked against the converted reference module. Files:

  NAME.reclite, NAME.expected.json =
    {"name", "variant", "model_file", "max_length", "hidden_size", "heads", "tolerance": 1e-5,
     "history_field": "<name>",
     "users": [{"history": [external item ids, most recent last], "user_vector": [...]}],
     "top_k": [{"user": index, "k": 100, "item_ids": [...], "scores": [...]}]}
  manifest.json = {"fixtures": [NAME, ...]}

History lengths: (0 for the left-padded variants,) 1, 2, max-1, max, max+7, then random ones; top_k covers users
0-4: exact inner products (float64 over float32 vectors) with every catalogue item vector, ties to the lower
entry. External ids are 5000 + 3 * row; row 0 (padding) is not in the catalogue. Deterministic: fixed seeds, one
torch thread.
"""

import argparse
import json
import math
import os
import tempfile
import time
from typing import List, Sequence

import numpy as np
import torch
from torch import nn

from reclite_convert.catalogue import Catalogue
from reclite_convert.layouts import pmixer, recbole, torch_rechub
from reclite_convert.layouts.common import load_weights
from reclite_convert.model_spec import describe_sasrec
from reclite_convert.modules.sasrec import SasRecOptions, synthetic_sequences, train_next_item
from reclite_convert.writer import write_model

ITEM_ROWS = 300      # row 0 = padding
HIDDEN = 32
HEADS = 2
LAYERS = 2
MAX_LENGTH = 20
RECBOLE_INNER = 64   # pmixer and torch-rechub have no inner size: their Conv1d FFN is d -> d
TOP_K = 100
TOLERANCE = 1e-5
HISTORY_FIELD = "history"
RECHUB_FEATURE = "seq"   # torch-rechub names tables by feature: item_emb.embed_dict.seq.weight
VARIANTS = ("recbole", "pmixer_v1", "pmixer_v2", "pmixer_v3", "pmixer_v3_pre_norm", "torch_rechub")


def external_id(row):
    return 5000 + 3 * row


# --- library-style modules: the libraries' module trees (so their state_dict keys), forward as they write it ---
class RecBoleStyleSASRec(nn.Module):
    """RecBole's SASRec: BERT-style post-LN encoder, right padding, additive -10000 mask, output at n-1."""

    class Attention(nn.Module):
        def __init__(self, hidden, heads, eps):
            super().__init__()
            self.heads, self.head_size = heads, hidden // heads
            self.query, self.key, self.value = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden), \
                nn.Linear(hidden, hidden)
            self.dense = nn.Linear(hidden, hidden)
            self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

        def heads_first(self, x):
            return x.view(x.shape[0], x.shape[1], self.heads, self.head_size).permute(0, 2, 1, 3)

        def forward(self, x, mask):
            q, k, v = self.heads_first(self.query(x)), self.heads_first(self.key(x)), self.heads_first(self.value(x))
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_size) + mask
            context = torch.matmul(nn.Softmax(dim=-1)(scores), v).permute(0, 2, 1, 3).contiguous()
            context = context.view(x.shape[0], x.shape[1], -1)
            return self.LayerNorm(self.dense(context) + x)

    class FeedForward(nn.Module):
        def __init__(self, hidden, inner, eps, act):
            super().__init__()
            self.dense_1, self.dense_2 = nn.Linear(hidden, inner), nn.Linear(inner, hidden)
            self.LayerNorm = nn.LayerNorm(hidden, eps=eps)
            self.act = act

        def forward(self, x):
            h = self.dense_1(x)
            h = h * 0.5 * (1.0 + torch.erf(h / math.sqrt(2.0))) if self.act == "gelu" else torch.relu(h)
            return self.LayerNorm(self.dense_2(h) + x)

    class Layer(nn.Module):
        def __init__(self, hidden, heads, inner, eps, act):
            super().__init__()
            self.multi_head_attention = RecBoleStyleSASRec.Attention(hidden, heads, eps)
            self.feed_forward = RecBoleStyleSASRec.FeedForward(hidden, inner, eps, act)

        def forward(self, x, mask):
            return self.feed_forward(self.multi_head_attention(x, mask))

    class Encoder(nn.Module):
        def __init__(self, layers, *args):
            super().__init__()
            self.layer = nn.ModuleList(RecBoleStyleSASRec.Layer(*args) for _ in range(layers))

    def __init__(self, n_items, max_length, hidden, heads, inner, layers, hidden_act="gelu", eps=1e-12):
        super().__init__()
        self.max_length = max_length
        self.item_embedding = nn.Embedding(n_items, hidden, padding_idx=0)
        self.position_embedding = nn.Embedding(max_length, hidden)
        self.trm_encoder = RecBoleStyleSASRec.Encoder(layers, hidden, heads, inner, eps, hidden_act)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)
        self.config = {"n_heads": heads, "hidden_act": hidden_act, "layer_norm_eps": eps,
                       "MAX_ITEM_LIST_LENGTH": max_length, "hidden_size": hidden, "inner_size": inner,
                       "n_layers": layers}

    def forward(self, item_seq, item_seq_len):
        positions = torch.arange(item_seq.shape[1]).unsqueeze(0).expand_as(item_seq)
        x = self.LayerNorm(self.item_embedding(item_seq) + self.position_embedding(positions))
        keep = (item_seq != 0).unsqueeze(1).unsqueeze(2)
        keep = torch.tril(keep.expand(-1, -1, item_seq.shape[1], -1))
        mask = torch.where(keep, 0.0, -10000.0)
        for layer in self.trm_encoder.layer:
            x = layer(x, mask)
        return x[torch.arange(len(item_seq_len)), item_seq_len - 1]

    def user_vector(self, histories):
        rows = [list(h)[-self.max_length:] for h in histories]
        padded = torch.tensor([r + [0] * (self.max_length - len(r)) for r in rows], dtype=torch.long)
        return self.forward(padded, torch.tensor([len(r) for r in rows]))

    def item_table(self):
        return self.item_embedding.weight


class PointWiseFeedForward(nn.Module):
    """pmixer's / torch-rechub's FFN: two Conv1d(d, d, 1); the residual is inside before V3."""

    def __init__(self, hidden, residual):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv1d(hidden, hidden, kernel_size=1), nn.Conv1d(hidden, hidden, kernel_size=1)
        self.residual = residual

    def forward(self, inputs):
        outputs = self.conv2(torch.relu(self.conv1(inputs.transpose(-1, -2)))).transpose(-1, -2)
        return outputs + inputs if self.residual else outputs


class PmixerStyleSASRec(nn.Module):
    """SASRec.pytorch's SASRec at code generation 1, 2 or 3 (norm_first only for 3): nn.MultiheadAttention."""

    def __init__(self, item_num, maxlen, hidden, heads, blocks, generation=1, norm_first=False):
        super().__init__()
        self.maxlen, self.generation, self.norm_first = maxlen, generation, norm_first
        self.item_emb = nn.Embedding(item_num + 1, hidden, padding_idx=0)
        self.pos_emb = nn.Embedding(maxlen + (0 if generation == 1 else 1), hidden,
                                    padding_idx=None if generation == 1 else 0)
        self.attention_layernorms, self.attention_layers = nn.ModuleList(), nn.ModuleList()
        self.forward_layernorms, self.forward_layers = nn.ModuleList(), nn.ModuleList()
        for _ in range(blocks):
            self.attention_layernorms.append(nn.LayerNorm(hidden, eps=1e-8))
            self.attention_layers.append(nn.MultiheadAttention(hidden, heads, 0.0))
            self.forward_layernorms.append(nn.LayerNorm(hidden, eps=1e-8))
            self.forward_layers.append(PointWiseFeedForward(hidden, residual=generation < 3))
        self.last_layernorm = nn.LayerNorm(hidden, eps=1e-8)

    def embed(self, log_seqs):
        seqs = self.item_emb(log_seqs) * self.item_emb.embedding_dim ** 0.5
        if self.generation == 1:
            seqs = seqs + self.pos_emb(torch.arange(log_seqs.shape[1]).expand_as(log_seqs))
            return seqs * (log_seqs != 0).unsqueeze(-1)
        positions = torch.arange(1, log_seqs.shape[1] + 1).expand_as(log_seqs) * (log_seqs != 0)
        return seqs + self.pos_emb(positions)

    def log2feats(self, log_seqs):
        seqs = self.embed(log_seqs)
        timeline_mask = log_seqs == 0
        length = seqs.shape[1]
        attention_mask = ~torch.tril(torch.ones((length, length), dtype=torch.bool))
        for i in range(len(self.attention_layers)):
            seqs = torch.transpose(seqs, 0, 1)
            if self.generation < 3:
                q = self.attention_layernorms[i](seqs)
                outputs, _ = self.attention_layers[i](q, seqs, seqs, attn_mask=attention_mask)
                seqs = torch.transpose(q + outputs, 0, 1)
                seqs = self.forward_layers[i](self.forward_layernorms[i](seqs))
                if self.generation == 1:
                    seqs = seqs * ~timeline_mask.unsqueeze(-1)
            elif self.norm_first:
                x = self.attention_layernorms[i](seqs)
                outputs, _ = self.attention_layers[i](x, x, x, attn_mask=attention_mask)
                seqs = torch.transpose(seqs + outputs, 0, 1)
                seqs = seqs + self.forward_layers[i](self.forward_layernorms[i](seqs))
            else:
                outputs, _ = self.attention_layers[i](seqs, seqs, seqs, attn_mask=attention_mask)
                seqs = torch.transpose(self.attention_layernorms[i](seqs + outputs), 0, 1)
                seqs = self.forward_layernorms[i](seqs + self.forward_layers[i](seqs))
        return self.last_layernorm(seqs)

    def windows(self, histories):
        rows = [list(h)[-self.maxlen:] for h in histories]
        return torch.tensor([[0] * (self.maxlen - len(r)) + r for r in rows], dtype=torch.long)

    def user_vector(self, histories):
        return self.log2feats(self.windows(histories))[:, -1, :]

    def item_table(self):
        return self.item_emb.weight


class RechubStyleSASRec(PmixerStyleSASRec):
    """torch-rechub's SASRec: pmixer V1's math; the item table lives in an EmbeddingLayer's embed_dict."""

    def __init__(self, vocab_size, max_len, embed_dim, heads, blocks, feature=RECHUB_FEATURE):
        super().__init__(vocab_size - 1, max_len, embed_dim, heads, blocks, generation=1)
        table = self.item_emb
        del self.item_emb
        self.item_emb = nn.Module()
        self.item_emb.embed_dict = nn.ModuleDict({feature: table})
        self.position_emb = self.pos_emb
        del self.pos_emb
        self.feature = feature

    def embed(self, log_seqs):
        seqs = self.item_emb.embed_dict[self.feature](log_seqs) * self.item_table().shape[1] ** 0.5
        seqs = seqs + self.position_emb(torch.arange(log_seqs.shape[1]).expand_as(log_seqs))
        return seqs * (log_seqs != 0).unsqueeze(-1)

    def item_table(self):
        return self.item_emb.embed_dict[self.feature].weight


def make_library_module(variant: str, layers: int):
    if variant == "recbole":
        return RecBoleStyleSASRec(ITEM_ROWS, MAX_LENGTH, HIDDEN, HEADS, RECBOLE_INNER, layers)
    if variant == "torch_rechub":
        return RechubStyleSASRec(ITEM_ROWS, MAX_LENGTH, HIDDEN, HEADS, layers)
    generation = {"pmixer_v1": 1, "pmixer_v2": 2}.get(variant, 3)
    return PmixerStyleSASRec(ITEM_ROWS - 1, MAX_LENGTH, HIDDEN, HEADS, layers, generation,
                             norm_first=variant == "pmixer_v3_pre_norm")


def randomize(module: nn.Module, generator: torch.Generator) -> None:
    """Random weights of a modest scale, LayerNorm gains and biases included, so every parameter matters.

    Padding rows stay as the library keeps them: RecBole's item row 0 is random (it re-initialises every
    Embedding), pmixer's V2/V3 pos_emb row 0 is zero (padding_idx), pmixer's item_emb row 0 is left random
    (V1 initialised it with xavier; its output never depends on it except through pads, which is the point).
    """
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if name.endswith("bias"):
                parameter.normal_(0.0, 0.1, generator=generator)
            elif parameter.dim() == 1:
                parameter.uniform_(0.6, 1.4, generator=generator)
            else:
                std = 0.5 if "emb" in name else 1.0 / math.sqrt(parameter.shape[1])
                parameter.normal_(0.0, std, generator=generator)
        if isinstance(module, PmixerStyleSASRec) and not isinstance(module, RechubStyleSASRec) \
                and module.generation > 1:
            module.pos_emb.weight[0].zero_()
    module.eval()


def library_state_dict(module: nn.Module, directory: str, variant: str):
    """Save the library's checkpoint as the library does, then load it as a user would (through the layout)."""
    path = os.path.join(directory, f"{variant}.pt")
    if variant == "recbole":
        torch.save({"config": dict(module.config), "epoch": 3, "state_dict": module.state_dict()}, path)
        weights, saved = recbole.load_checkpoint(path)
        return recbole.build_sasrec(weights, SasRecOptions(history_field=HISTORY_FIELD), path, saved)
    torch.save(module.state_dict(), path)
    weights = load_weights(path)
    if variant == "torch_rechub":
        return torch_rechub.build_sasrec(weights, SasRecOptions(heads=HEADS), path)
    return pmixer.build_sasrec(weights, SasRecOptions(variant=variant, heads=HEADS, history_field=HISTORY_FIELD),
                               path)


def histories(variant: str, rng: np.random.Generator, sequences: Sequence[Sequence[int]]) -> List[List[int]]:
    """Item rows per user: lengths (0,) 1, 2, max-1, max, max+7, then random; taken from the sequence log."""
    lengths = ([0] if variant != "recbole" else []) + [1, 2, MAX_LENGTH - 1, MAX_LENGTH, MAX_LENGTH + 7]
    lengths += [int(rng.integers(1, MAX_LENGTH + 8)) for _ in range(5)]
    result = []
    for length in lengths:
        sequence = sequences[int(rng.integers(0, len(sequences)))]
        start = int(rng.integers(0, len(sequence) - length + 1)) if length <= len(sequence) else 0
        rows = list(sequence[start:start + length])
        rows += [int(r) for r in rng.integers(1, ITEM_ROWS, size=length - len(rows))]
        result.append(rows)
    return result


def write_fixture(directory: str, scratch: str, variant: str, trained: bool, seed: int,
                  sequences: Sequence[Sequence[int]]) -> str:
    name = f"sasrec_{variant}_{'trained' if trained else 'random'}"
    torch.manual_seed(seed)
    layers = 1 if trained else LAYERS
    library = make_library_module(variant, layers)
    randomize(library, torch.Generator().manual_seed(seed))
    if trained:
        train_next_item(library, sequences, steps=150, batch_size=64, learning_rate=0.01, seed=seed)
    library.eval()
    module = library_state_dict(library, scratch, variant)
    rows = np.arange(1, ITEM_ROWS)
    catalogue = Catalogue(ITEM_ROWS, external_ids=external_id(rows), item_rows=rows, padding_row=0)
    description = describe_sasrec(module, catalogue, {"fixture": name, "layout": variant.split("_v")[0],
                                                      "source": "reclite_convert.sasrec_fixtures"})
    write_model(description, os.path.join(directory, f"{name}.reclite"))
    rng = np.random.default_rng(seed + 1)
    user_rows = histories(variant, rng, sequences)
    with torch.inference_mode():
        expected = library.user_vector(user_rows).float().numpy()
        ours = module.user_vector(user_rows).float().numpy()
    worst = float(np.abs(expected - ours).max())
    if worst > 2e-6:
        raise AssertionError(f"{name}: the converted reference module differs from the library by {worst}")
    items = next(t.array for t in description.tensors if t.name == "catalogue.item_vectors")
    scores = expected[:5].astype(np.float64) @ items.astype(np.float64).T
    top = []
    for user in range(5):
        order = np.lexsort((np.arange(len(catalogue)), -scores[user]))[:TOP_K]
        top.append({"user": user, "k": TOP_K, "item_ids": [int(catalogue.external_ids[e]) for e in order],
                    "scores": [float(scores[user, e]) for e in order]})
    document = {
        "name": name, "variant": variant, "model_file": f"{name}.reclite", "max_length": MAX_LENGTH,
        "hidden_size": HIDDEN, "heads": HEADS, "tolerance": TOLERANCE, "history_field": module.history_field,
        "users": [{"history": [int(external_id(r)) for r in rows], "user_vector": [float(v) for v in vector]}
                  for rows, vector in zip(user_rows, expected)],
        "top_k": top,
    }
    with open(os.path.join(directory, f"{name}.expected.json"), "w", encoding="utf-8") as file:
        json.dump(document, file, indent=1)
        file.write("\n")
    return name


def generate(directory: str) -> List[str]:
    os.makedirs(directory, exist_ok=True)
    torch.set_num_threads(1)  # the same float reductions on every machine
    sequences = synthetic_sequences(ITEM_ROWS, users=200, length=40, seed=11)
    names = []
    with tempfile.TemporaryDirectory() as scratch:
        for index, variant in enumerate(VARIANTS):
            for trained in (False, True):
                names.append(write_fixture(directory, scratch, variant, trained, 700 + 10 * index + int(trained),
                                           sequences))
    with open(os.path.join(directory, "manifest.json"), "w", encoding="utf-8") as file:
        json.dump({"fixtures": names}, file, indent=1)
        file.write("\n")
    return names


def main() -> int:
    parser = argparse.ArgumentParser(prog="reclite_convert.sasrec_fixtures", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory to create and fill")
    args = parser.parse_args()
    start = time.time()
    names = generate(args.out)
    print(f"{args.out}: {len(names)} SASRec fixtures in {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
