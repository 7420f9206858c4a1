"""Command line: convert, inspect, build-index (docs/converter.md).

Exit status: 0 success, 2 a ConversionError (bad spec, weights or file; the message names the key), 1 a
self-check that failed (inspect --verify-crc with a bad checksum).
"""

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Optional

import numpy as np

from reclite_convert import __version__
from reclite_convert.errors import ConversionError

ARCHITECTURES = ("dssm", "youtube_dnn", "fm_two_tower")


def _convert(args) -> int:
    from reclite_convert.catalogue import Catalogue, load_item_ids
    from reclite_convert.layouts import LAYOUTS
    from reclite_convert.layouts.common import load_weights
    from reclite_convert.model_spec import describe
    from reclite_convert.spec import load_spec
    from reclite_convert.writer import write_model

    spec = load_spec(args.spec)
    weights = load_weights(args.weights)
    module = LAYOUTS[args.layout].build_module(args.arch, spec, weights, args.weights)
    catalogue_options = spec.get("catalogue", {})
    if not isinstance(catalogue_options, dict) or set(catalogue_options) - {"padding_row"}:
        raise ConversionError(f"{args.spec}: 'catalogue' must be an object with at most the key 'padding_row'")
    padding_row = catalogue_options.get("padding_row", 0)
    vocabulary_size = module.item_field.vocabulary_size
    external_ids, item_rows = (None, None)
    if args.item_ids:
        external_ids, item_rows = load_item_ids(args.item_ids, vocabulary_size, padding_row)
    item_features = None
    if args.item_features:
        try:
            with np.load(args.item_features, allow_pickle=False) as archive:
                item_features = {key: archive[key] for key in archive.files}
        except (OSError, ValueError) as error:
            raise ConversionError(f"{args.item_features}: cannot read as .npz: {error}") from error
    catalogue = Catalogue(vocabulary_size, external_ids, item_rows, padding_row, item_features)
    metadata = {"source": os.path.basename(args.weights), "layout": args.layout,
                "options": json.dumps({"arch": args.arch, "layout": args.layout,
                                       "spec": os.path.basename(args.spec),
                                       "item_ids": os.path.basename(args.item_ids) if args.item_ids else None,
                                       "self_test": not args.no_self_test}, sort_keys=True)}
    description = describe(module, catalogue, metadata, self_test=not args.no_self_test)
    size = write_model(description, args.output)
    print(f"{args.output}: {args.arch} ({args.layout}), {len(description.tensors)} tensors, "
          f"{len(catalogue)} catalogue items, {len(description.self_test)} self-test samples, {size} bytes")
    return 0


def _json_ready(model: Dict[str, Any]) -> Dict[str, Any]:
    tensors = [{k: v for k, v in t.items() if k != "array"} for t in model["tensors"]]
    catalogue = model["catalogue"]
    return {
        "identifier": model["identifier"], "format_major": model["format_major"],
        "format_minor": model["format_minor"], "producer": model["producer"],
        "architecture": model["architecture"], "config": model["config"],
        "catalogue": None if catalogue is None else {
            "entries": int(len(catalogue["external_ids"])), "feature_values": catalogue["feature_values"],
            "item_vectors": catalogue["item_vectors"]},
        "self_test": len(model["self_test"]), "metadata": model["metadata"], "tensors": tensors}


def _describe_tower(name: str, tower: Dict[str, Any], lines: List[str]) -> None:
    lines.append(f"  {name}: l2_normalize={tower['l2_normalize']} temperature={tower['temperature']:g}")
    for field in tower["inputs"]:
        lines.append("    input " + _describe_field(field))
    for index, layer in enumerate(tower["layers"]):
        lines.append(f"    layer {index}: {layer['weight']} + {layer['bias']} -> {layer['activation']}")


def _describe_field(field: Dict[str, Any]) -> str:
    if field["kind"] == "dense":
        return f"{field['name']}: dense width {field['width']}"
    text = f"{field['name']}: {field['kind']} ids={field['ids']} {field['embedding']} [{field['vocabulary_size']}]"
    if field["kind"] == "history":
        text += (f" max_length={field['max_length']} pooling={field['pooling']} "
                 f"mean_epsilon={field['mean_epsilon']:g} padding_row={field['padding_row']}")
    if field.get("linear"):
        text += f" linear={field['linear']}"
    return text


def _inspect(args) -> int:
    from reclite_convert.reader import read_model_file

    model = read_model_file(args.file)
    summary = _json_ready(model)
    bad = [t["name"] for t in summary["tensors"] if not t["crc_ok"]]
    if args.json:
        if not args.tensors:
            summary["tensors"] = len(summary["tensors"])
        print(json.dumps(summary, indent=2, sort_keys=True))
        return 1 if bad else 0
    lines = [f"{args.file}",
             f"  identifier {summary['identifier']}, format {summary['format_major']}.{summary['format_minor']}, "
             f"producer '{summary['producer']}'",
             f"  architecture {summary['architecture']}"]
    config = summary["config"]
    for tower in ("user_tower", "item_tower"):
        if tower in config:
            _describe_tower(tower, config[tower], lines)
    if "item_embedding" in config:
        lines.append(f"  item vectors: rows of {config['item_embedding']}, normalize_items="
                     f"{config['normalize_items']}")
    if "embedding_dim" in config:
        lines.append(f"  fm: embedding_dim {config['embedding_dim']}")
        for side in ("user_fields", "item_fields"):
            for field in config[side]:
                lines.append(f"    {side[:-7]} field " + _describe_field(field))
    catalogue = summary["catalogue"]
    if catalogue:
        lines.append(f"  catalogue: {catalogue['entries']} items, feature_values={catalogue['feature_values']}, "
                     f"item_vectors={catalogue['item_vectors']}")
    targets = [s["target"] for s in model["self_test"]]
    lines.append(f"  self-test: {len(targets)} samples ({targets.count('user_vector')} user, "
                 f"{targets.count('item_vector')} item)")
    for key, value in summary["metadata"].items():
        lines.append(f"  metadata {key} = {value if len(value) < 100 else value[:97] + '...'}")
    total = sum(t["bytes"] for t in summary["tensors"])
    lines.append(f"  tensors: {len(summary['tensors'])}, {total} bytes, "
                 f"{'all checksums match' if not bad else 'BAD CHECKSUM: ' + ', '.join(bad)}")
    if args.tensors:
        width = max([len(t["name"]) for t in summary["tensors"]] + [4])
        lines.append(f"    {'name':<{width}}  dtype  {'shape':<14} {'bytes':>10}  crc")
        for tensor in summary["tensors"]:
            shape = "[" + ", ".join(str(s) for s in tensor["shape"]) + "]"
            lines.append(f"    {tensor['name']:<{width}}  {tensor['dtype']:<5}  {shape:<14} {tensor['bytes']:>10}  "
                         f"{'ok' if tensor['crc_ok'] else 'BAD'}")
    print("\n".join(lines))
    return 1 if bad else 0


def _build_index(argv: List[str]) -> int:
    try:
        from reclite_convert import index_builder
    except ImportError as error:
        print(f"reclite_convert build-index: not available ({error})", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="reclite_convert build-index",
                                     description="Build an hnswlib item index for a model file.")
    index_builder.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return int(index_builder.run(args) or 0)
    except ConversionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reclite_convert", description="Write and inspect reclite model files.")
    parser.add_argument("--version", action="version", version=f"reclite_convert {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    convert = commands.add_parser("convert", help="convert PyTorch weights into a .reclite model file")
    convert.add_argument("--arch", required=True, choices=ARCHITECTURES)
    convert.add_argument("--layout", default="reclite", choices=("reclite", "torch_rechub"))
    convert.add_argument("--spec", required=True, help="feature spec JSON (docs/converter.md)")
    convert.add_argument("--weights", required=True, help="state_dict: .pt/.pth (torch.save) or .npz")
    convert.add_argument("--item-ids", help=".npy of external item ids: [entries] in row order without the "
                                            "padding row, or [entries, 2] of (item row, external id)")
    convert.add_argument("--item-features", help=".npz of item-side field values, one array per field, "
                                                 "indexed by item row")
    convert.add_argument("--no-self-test", action="store_true", help="write no self-test samples")
    convert.add_argument("-o", "--output", required=True)
    inspect = commands.add_parser("inspect", help="print a model file's header, config and tensors")
    inspect.add_argument("file")
    inspect.add_argument("--tensors", action="store_true", help="list every tensor")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    commands.add_parser("build-index", help="build an hnswlib index (see build-index --help)", add_help=False)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "build-index":
        return _build_index(argv[1:])
    args = make_parser().parse_args(argv)
    try:
        if args.command == "convert":
            return _convert(args)
        return _inspect(args)
    except ConversionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
