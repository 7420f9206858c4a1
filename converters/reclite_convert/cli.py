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

ARCHITECTURES = ("dssm", "youtube_dnn", "fm_two_tower", "sasrec", "mind", "sdm")
LAYOUT_NAMES = ("reclite", "torch_rechub", "recbole", "pmixer")
SASREC_ONLY_LAYOUTS = ("recbole", "pmixer")


def _sasrec_options(args):
    from reclite_convert.modules.sasrec import SasRecOptions

    return SasRecOptions(variant=args.variant, heads=args.heads, layer_norm_epsilon=args.layer_norm_epsilon,
                         activation=args.activation, max_length=args.max_length, history_field=args.history_field,
                         padding_row=0 if args.padding_row is None else args.padding_row)


def build_sasrec_module(layout: str, path: str, options):
    """Our SASRec reference module from a checkpoint in `layout` (the layout's keys and defaults)."""
    from reclite_convert.layouts.common import load_weights

    if layout == "recbole":
        from reclite_convert.layouts import recbole
        weights, saved = recbole.load_checkpoint(path)
        return recbole.build_sasrec(weights, options, path, saved)
    weights = load_weights(path)
    if layout == "pmixer":
        from reclite_convert.layouts import pmixer
        return pmixer.build_sasrec(weights, options, path)
    if layout == "torch_rechub":
        from reclite_convert.layouts import torch_rechub
        return torch_rechub.build_sasrec(weights, options, path)
    from reclite_convert.modules.sasrec import VARIANTS, build_from_weights
    if options.variant is None:
        raise ConversionError(f"option --variant: required for layout reclite ({', '.join(VARIANTS)})")
    return build_from_weights(weights, options.variant, options, path)


def _convert_sasrec(args) -> int:
    from reclite_convert.catalogue import Catalogue, load_item_ids
    from reclite_convert.model_spec import describe_sasrec
    from reclite_convert.writer import write_model

    if args.spec or args.item_features:
        raise ConversionError("--arch sasrec takes no --spec or --item-features: its settings are options "
                              "(--variant, --heads, ...) and its only item feature is the item id")
    module = build_sasrec_module(args.layout, args.weights, _sasrec_options(args))
    external_ids, item_rows = (None, None)
    if args.item_ids:
        external_ids, item_rows = load_item_ids(args.item_ids, module.item_rows, module.padding_row)
    catalogue = Catalogue(module.item_rows, external_ids, item_rows, module.padding_row)
    settings = module.options()
    metadata = {"source": os.path.basename(args.weights), "layout": args.layout,
                "options": json.dumps(dict(settings, arch="sasrec", layout=args.layout,
                                           item_ids=os.path.basename(args.item_ids) if args.item_ids else None,
                                           self_test=not args.no_self_test), sort_keys=True)}
    description = describe_sasrec(module, catalogue, metadata, self_test=not args.no_self_test)
    size = write_model(description, args.output)
    print(f"{args.output}: sasrec ({args.layout}) variant {settings['variant']}, heads {module.heads}, hidden "
          f"{module.hidden_size}, inner {module.inner_size}, layers {len(module.layers)}, max_length "
          f"{module.max_length}, activation {module.activation}, layer_norm_epsilon {module.layer_norm_epsilon:g}, "
          f"history field '{module.history_field}'; {len(description.tensors)} tensors, {len(catalogue)} catalogue "
          f"items, {len(description.self_test)} self-test samples, {size} bytes")
    return 0


# MIND / SDM options: (argparse dest, setting name). Settings override the variant's (docs/converter.md).
_MIND_SETTINGS = ("routing_softmax", "routing_padding", "padding_side", "squash_epsilon", "dynamic_interests",
                  "mask_inactive_interests", "update_logits_on_last_iteration", "behaviour_combine",
                  "routing_iterations", "pad_logit", "inactive_logit", "head_l2_normalize", "normalize_items",
                  "label_attention_power")
_SDM_SETTINGS = {"lstm_gate_order": "lstm_gate_order", "lstm_forget_bias": "lstm_forget_bias",
                 "lstm_layers": "lstm_layers", "heads": "attention_heads", "layer_norm_epsilon":
                 "attention_norm_epsilon", "mask_value": "attention_mask_value", "normalize_items": "normalize_items"}


def _flag(value: Optional[str]) -> Optional[bool]:
    return None if value is None else value == "true"


def _multi_interest_overrides(args) -> Dict[str, Any]:
    if args.arch == "mind":
        overrides = {name: getattr(args, name) for name in _MIND_SETTINGS}
        for name in ("dynamic_interests", "mask_inactive_interests", "update_logits_on_last_iteration",
                     "head_l2_normalize", "normalize_items"):
            overrides[name] = _flag(overrides[name])
        overrides.update(interests=args.interests, max_length=args.max_length, history_field=args.history_field,
                         initial_logits_seed=args.initial_logits_seed, initial_logits_std=args.initial_logits_std)
    else:
        overrides = {setting: getattr(args, dest) for dest, setting in _SDM_SETTINGS.items()}
        overrides["normalize_items"] = _flag(overrides["normalize_items"])
    return {k: v for k, v in overrides.items() if v is not None}


def build_multi_interest_module(args):
    """Our MIND or SDM module from --weights in --layout, with --spec (reclite layout) and the options."""
    from reclite_convert.layouts.common import load_weights

    if args.layout not in ("reclite", "torch_rechub") or (args.arch == "sdm" and args.layout != "reclite"):
        raise ConversionError(f"--arch {args.arch} has no layout {args.layout} (mind: reclite, torch_rechub; "
                              f"sdm: reclite)")
    if args.item_features:
        raise ConversionError(f"--arch {args.arch} takes no --item-features: the item vectors are item-table rows")
    weights = load_weights(args.weights)
    overrides = _multi_interest_overrides(args)
    if args.layout == "torch_rechub":
        from reclite_convert.layouts import torch_rechub
        if args.spec:
            raise ConversionError("layout torch_rechub takes no --spec for mind: give options (--max-length, ...)")
        options = dict(overrides, variant=args.variant, item_feature=args.item_feature,
                       user_features=args.user_features.split(",") if args.user_features else None,
                       initial_logits=args.initial_logits)
        return torch_rechub.build_mind(weights, options, args.weights)
    if not args.spec:
        raise ConversionError(f"--arch {args.arch} --layout reclite needs --spec: the module's options as JSON "
                              f"(module.options())")
    from reclite_convert.spec import load_spec
    options = load_spec(args.spec)
    if args.variant is not None and args.variant != options.get("variant"):
        # a new variant brings its own defaults: drop the settings the spec wrote for the old one
        from reclite_convert.modules import mind, sdm
        settings = mind.SETTING_NAMES if args.arch == "mind" else tuple(sdm.VARIANTS["reclite"])
        options = {k: v for k, v in options.items() if k not in settings}
        options["variant"] = args.variant
    options.update(overrides)
    if args.arch == "mind":
        from reclite_convert.modules.mind import build_from_weights
        initial = args.initial_logits
        if initial is not None and not initial.endswith(".npy"):
            options["initial_logits"] = initial
        module = build_from_weights(options, weights, args.weights)
        if initial is not None:
            import torch
            from reclite_convert.layouts.torch_rechub import initial_logits_array
            fresh = module.draw_initial_logits().numpy() if not initial.endswith(".npy") else \
                initial_logits_array(initial, module)
            module.initial_logits.copy_(torch.from_numpy(np.ascontiguousarray(fresh, dtype=np.float32)))
        return module
    from reclite_convert.modules.sdm import build_from_weights
    return build_from_weights(options, weights, args.weights)


def _convert_multi_interest(args) -> int:
    from reclite_convert.catalogue import Catalogue, load_item_ids
    from reclite_convert.model_spec import describe_multi_interest
    from reclite_convert.writer import write_model

    module = build_multi_interest_module(args)
    external_ids, item_rows = (None, None)
    if args.item_ids:
        external_ids, item_rows = load_item_ids(args.item_ids, module.item_rows, module.padding_row)
    catalogue = Catalogue(module.item_rows, external_ids, item_rows, module.padding_row)
    settings = module.options()
    metadata = {"source": os.path.basename(args.weights), "layout": args.layout,
                "options": json.dumps({"arch": args.arch, "layout": args.layout,
                                       "spec": os.path.basename(args.spec) if args.spec else None,
                                       "item_ids": os.path.basename(args.item_ids) if args.item_ids else None,
                                       "self_test": not args.no_self_test}, sort_keys=True)}
    description = describe_multi_interest(module, catalogue, metadata, self_test=not args.no_self_test)
    size = write_model(description, args.output)
    shown = ", ".join(f"{k} {v}" for k, v in sorted(settings.items())
                      if not isinstance(v, (list, dict)) and k not in ("item_rows",))
    print(f"{args.output}: {args.arch} ({args.layout}) {shown}; {len(description.tensors)} tensors, "
          f"{len(catalogue)} catalogue items, {len(description.self_test)} self-test samples, {size} bytes")
    return 0


def _convert(args) -> int:
    if args.arch == "sasrec":
        return _convert_sasrec(args)
    if args.arch in ("mind", "sdm"):
        return _convert_multi_interest(args)
    if args.layout in SASREC_ONLY_LAYOUTS:
        raise ConversionError(f"layout {args.layout} has only --arch sasrec")
    if not args.spec:
        raise ConversionError(f"--arch {args.arch} needs --spec (the feature spec JSON)")
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


def _describe_sasrec(config: Dict[str, Any], lines: List[str]) -> None:
    lines.append(f"  sasrec: variant {config['variant']}, history field '{config['history_field']}', "
                 f"heads {config['heads']}, hidden_size {config['hidden_size']}, inner_size {config['inner_size']}, "
                 f"layers {len(config['layers'])}, max_length {config['max_length']}")
    lines.append(f"    activation {config['activation']}, layer_norm_epsilon {config['layer_norm_epsilon']:g}, "
                 f"block_style {config['block_style']}, padding_side {config['padding_side']}, "
                 f"padding_row {config['padding_row']}")
    lines.append(f"    embedding: {config['item_embedding']} * {config['embedding_scale']:g} + "
                 f"{config['position_embedding']} (position_offset {config['position_offset']}, "
                 f"pads_use_position_zero {config['pads_use_position_zero']}), embedding_norm "
                 f"{config['embedding_norm_weight'] or 'none'}, zero_padding_rows {config['zero_padding_rows']}")
    lines.append(f"    attention: mask_padding_keys {config['mask_padding_keys']}, mask_value "
                 f"{config['mask_value']:g}, final_norm {config['final_norm_weight'] or 'none'}")
    for index, layer in enumerate(config["layers"]):
        lines.append(f"    layer {index}: {layer['query_weight']}, {layer['key_weight']}, {layer['value_weight']}, "
                     f"{layer['output_weight'] or 'no output projection'}, {layer['inner_weight']}, "
                     f"{layer['outer_weight']}")


def _describe_mind(config: Dict[str, Any], lines: List[str]) -> None:
    lines.append(f"  mind: variant {config['variant']}, interests {config['interests']}, hidden_size "
                 f"{config['hidden_size']}, max_length {config['max_length']}, padding_side {config['padding_side']}, "
                 f"behaviour_combine {config['behaviour_combine']}")
    for field in config["history_fields"]:
        lines.append("    history " + _describe_field(field))
    lines.append(f"    routing: {config['routing_iterations']} iterations, softmax {config['routing_softmax']}, "
                 f"padding {config['routing_padding']} (pad_logit {config['pad_logit']:g}), squash_epsilon "
                 f"{config['squash_epsilon']:g}, update_logits_on_last_iteration "
                 f"{config['update_logits_on_last_iteration']}, bilinear {config['bilinear_weight']}, initial logits "
                 f"{config['initial_logits']}")
    lines.append(f"    interests: dynamic_interests {config['dynamic_interests']} (inactive_logit "
                 f"{config['inactive_logit']:g}), mask_inactive_interests {config['mask_inactive_interests']}, "
                 f"label_attention_power {config['label_attention_power']:g}")
    for field in config["user_fields"]:
        lines.append("    user " + _describe_field(field))
    for index, layer in enumerate(config["head_layers"]):
        lines.append(f"    head {index}: {layer['weight']} + {layer['bias']} -> {layer['activation']}")
    lines.append(f"    head_l2_normalize {config['head_l2_normalize']}; item vectors: rows of "
                 f"{config['item_embedding']}, normalize_items {config['normalize_items']}")


def _describe_sdm(config: Dict[str, Any], lines: List[str]) -> None:
    lines.append(f"  sdm: variant {config['variant']}, units {config['units']}, short_length {config['short_length']}, "
                 f"long_length {config['long_length']}")
    for kind in ("user_fields", "short_fields", "long_fields"):
        for field in config[kind]:
            lines.append(f"    {kind[:-7]} " + _describe_field(field))
    lines.append(f"    lstm: gate order {config['lstm_gate_order']}, forget bias {config['lstm_forget_bias']:g}, "
                 f"layers {config['lstm_layers']} (one shared cell, residual after the first)")
    lines.append(f"    attention: heads {config['attention_heads']}, mask_value {config['attention_mask_value']:g}, "
                 f"norm epsilon {config['attention_norm_epsilon']:g}")
    lines.append(f"    item vectors: rows of {config['item_embedding']}, normalize_items {config['normalize_items']}")


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
    if "item_embedding" in config and "normalize_items" in config and summary["architecture"] == "youtube_dnn":
        lines.append(f"  item vectors: rows of {config['item_embedding']}, normalize_items="
                     f"{config['normalize_items']}")
    if "block_style" in config:
        _describe_sasrec(config, lines)
    if summary["architecture"] == "mind" and "routing_softmax" in config:
        _describe_mind(config, lines)
    if summary["architecture"] == "sdm" and "lstm_gate_order" in config:
        _describe_sdm(config, lines)
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
    convert.add_argument("--layout", default="reclite", choices=LAYOUT_NAMES,
                         help="whose keys the weights use (recbole and pmixer: sasrec only)")
    convert.add_argument("--spec", help="feature spec JSON (docs/converter.md); not for sasrec")
    convert.add_argument("--weights", required=True, help="state_dict: .pt/.pth (torch.save) or .npz; RecBole: "
                                                          "its saved checkpoint dict")
    sasrec = convert.add_argument_group("sasrec", "what a SASRec checkpoint cannot tell (defaults: the layout's "
                                                  "library; RecBole: its saved config)")
    sasrec.add_argument("--variant", help="recbole | pmixer: v1, v2, v3, v3_pre_norm (required) | torch_rechub | "
                                          "reclite: any of recbole, pmixer_v1, pmixer_v2, pmixer_v3, "
                                          "pmixer_v3_pre_norm, torch_rechub (required)")
    sasrec.add_argument("--heads", type=int, help="attention heads (RecBole 2, pmixer and torch-rechub 1)")
    sasrec.add_argument("--layer-norm-epsilon", "--eps", dest="layer_norm_epsilon", type=float,
                        help="LayerNorm epsilon (RecBole 1e-12, pmixer and torch-rechub 1e-8)")
    sasrec.add_argument("--activation", help="feed-forward activation: relu, gelu (erf), tanh, sigmoid "
                                             "(RecBole gelu, others relu)")
    sasrec.add_argument("--max-length", type=int, help="training window; checked against the position table")
    sasrec.add_argument("--history-field", help="name of the request's history field (default 'history'; "
                                                "torch-rechub: the sequence feature's name)")
    sasrec.add_argument("--padding-row", type=int, help="item row used for padding (default 0)")
    multi = convert.add_argument_group("mind and sdm", "settings the tensors cannot tell (defaults: the variant's, "
                                                       "docs/converter.md; reclite layout: the --spec options)")
    booleans = dict(choices=("true", "false"), default=None)
    multi.add_argument("--interests", type=int, help="MIND: K interests (torch-rechub default 4)")
    multi.add_argument("--routing-softmax", choices=("over_behaviours", "over_capsules"))
    multi.add_argument("--routing-padding", choices=("logit_before_softmax", "zero_after_softmax"))
    multi.add_argument("--routing-iterations", type=int, help="MIND: routing iterations (3)")
    multi.add_argument("--padding-side", choices=("right", "left"), help="MIND: where pads go in the window")
    multi.add_argument("--squash-epsilon", type=float, help="MIND: 1e-8 (DeepMatch <= 0.2.0) or 1e-9")
    multi.add_argument("--pad-logit", type=float, help="MIND: logit of padded behaviours (-2^32+1)")
    multi.add_argument("--inactive-logit", type=float, help="MIND: logit of inactive capsules (-2^31)")
    multi.add_argument("--dynamic-interests", **booleans, help="MIND: K' = max(1, min(K, floor(log2(n+1))))")
    multi.add_argument("--mask-inactive-interests", **booleans, help="MIND: zero h_k for k >= K'")
    multi.add_argument("--update-logits-on-last-iteration", **booleans)
    multi.add_argument("--behaviour-combine", choices=("item_only", "sum", "mean"))
    multi.add_argument("--head-l2-normalize", **booleans)
    multi.add_argument("--normalize-items", **booleans)
    multi.add_argument("--label-attention-power", "--power", dest="label_attention_power", type=float,
                       help="MIND: p of (h.e)^p; >= 100 means hard argmax")
    multi.add_argument("--initial-logits", help="MIND: frozen routing logits: zeros, normal, truncated_normal "
                                                "(drawn with --initial-logits-seed/-std) or a .npy [K, T] / [1, K, T]")
    multi.add_argument("--initial-logits-seed", type=int)
    multi.add_argument("--initial-logits-std", type=float)
    multi.add_argument("--item-feature", help="torch_rechub MIND: the item feature (default: the last table)")
    multi.add_argument("--user-features", help="torch_rechub MIND: user features in order, comma separated "
                                               "(default: the other tables in file order)")
    multi.add_argument("--lstm-gate-order", choices=("ifgo", "igfo", "ifco"), help="SDM")
    multi.add_argument("--lstm-forget-bias", type=float, help="SDM: added to the forget gate at run time")
    multi.add_argument("--lstm-layers", type=int, help="SDM: layers of the shared cell")
    multi.add_argument("--mask-value", type=float, help="SDM: masked attention logits (-2^32+1)")
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
