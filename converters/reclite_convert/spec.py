"""The feature spec JSON (docs/converter.md): what a state_dict cannot tell, turned into a reference module.

A layout passes its library's defaults (`SpecDefaults`); the spec file overrides them key by key.
`module_to_spec` is the inverse, so a module built in Python can be written out and converted by the CLI.
"""

import json
from dataclasses import dataclass, field as dataclass_field
from typing import Any, Dict, List

from reclite_convert.errors import ConversionError
from reclite_convert.modules.features import CategoricalFeature, DenseFeature, HistoryFeature
from reclite_convert.modules.two_tower import DSSM, FMTwoTower, TowerOptions, YoutubeDNN

ARCHITECTURES = ("dssm", "youtube_dnn", "fm_two_tower")


@dataclass
class SpecDefaults:
    """Values a checkpoint layout implies when the spec does not say (ours: conventions of DeepMatch ≥ v0.3)."""

    tower: Dict[str, Any] = dataclass_field(default_factory=lambda: {
        "widths": [64, 32], "activation": "relu", "last_activation": "none", "batch_norm": False,
        "batch_norm_eps": 1e-5})
    history: Dict[str, Any] = dataclass_field(default_factory=lambda: {
        "pooling": "mean", "padding_id": 0, "mean_epsilon": 0.0, "ids": "item"})
    l2_normalize: bool = True
    normalize_items: bool = True
    temperature: float = 1.0


_FIELD_KEYS = {
    "categorical": {"kind", "name", "vocabulary_size", "embedding_dim", "embedding_name", "ids"},
    "history": {"kind", "name", "max_length", "embedding_name", "pooling", "padding_id", "mean_epsilon", "ids"},
    "dense": {"kind", "name", "width"},
}
_TOWER_KEYS = {"widths", "activation", "last_activation", "activations", "batch_norm", "batch_norm_eps"}
_TOP_KEYS = {"architecture", "user_fields", "item_fields", "item_field", "user_tower", "item_tower",
             "l2_normalize", "temperature", "normalize_items", "embedding_dim", "catalogue", "comment"}


def load_spec(path: str) -> Dict[str, Any]:
    try:
        with open(path, "r", encoding="utf-8") as file:
            spec = json.load(file)
    except OSError as error:
        raise ConversionError(f"{path}: cannot read the spec: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise ConversionError(f"{path}: not valid JSON: {error}") from error
    if not isinstance(spec, dict):
        raise ConversionError(f"{path}: the spec must be a JSON object")
    return spec


def _check_keys(where: str, found: Dict[str, Any], allowed: set) -> None:
    unknown = sorted(set(found) - allowed)
    if unknown:
        raise ConversionError(f"spec {where}: unknown key '{unknown[0]}' (allowed: {', '.join(sorted(allowed))})")


def _require(where: str, found: Dict[str, Any], key: str):
    if key not in found:
        raise ConversionError(f"spec {where}: missing key '{key}'")
    return found[key]


def parse_field(where: str, entry: Dict[str, Any], defaults: SpecDefaults):
    if not isinstance(entry, dict):
        raise ConversionError(f"spec {where}: a field must be a JSON object")
    kind = entry.get("kind", "categorical")
    if kind not in _FIELD_KEYS:
        raise ConversionError(f"spec {where}: kind must be categorical, history or dense, got '{kind}'")
    _check_keys(where, entry, _FIELD_KEYS[kind])
    name = _require(where, entry, "name")
    where = f"{where} ('{name}')"
    try:
        if kind == "categorical":
            return CategoricalFeature(name=name, vocabulary_size=int(_require(where, entry, "vocabulary_size")),
                                      embedding_dim=int(_require(where, entry, "embedding_dim")),
                                      embedding_name=entry.get("embedding_name"),
                                      ids=entry.get("ids", "vocabulary"))
        if kind == "history":
            values = dict(defaults.history)
            values.update({k: v for k, v in entry.items() if k != "kind"})
            return HistoryFeature(name=name, max_length=int(_require(where, entry, "max_length")),
                                  embedding_name=_require(where, entry, "embedding_name"),
                                  pooling=values["pooling"], padding_id=int(values["padding_id"]),
                                  mean_epsilon=float(values["mean_epsilon"]), ids=values["ids"])
        return DenseFeature(name=name, width=int(_require(where, entry, "width")))
    except ValueError as error:
        raise ConversionError(f"spec {where}: {error}") from error


def parse_fields(key: str, entries, defaults: SpecDefaults) -> List:
    if not isinstance(entries, list) or not entries:
        raise ConversionError(f"spec '{key}': expected a non-empty list of fields")
    fields = [parse_field(f"{key}[{i}]", entry, defaults) for i, entry in enumerate(entries)]
    names = [f.name for f in fields]
    for name in names:
        if names.count(name) > 1:
            raise ConversionError(f"spec '{key}': field name '{name}' appears twice")
    return fields


def parse_tower(key: str, entry, defaults: SpecDefaults) -> TowerOptions:
    entry = entry or {}
    _check_keys(f"'{key}'", entry, _TOWER_KEYS)
    values = dict(defaults.tower)
    values.update(entry)
    options = TowerOptions(widths=[int(w) for w in values["widths"]], activation=values["activation"],
                           last_activation=values["last_activation"], activations=values.get("activations"),
                           batch_norm=values["batch_norm"], batch_norm_eps=float(values["batch_norm_eps"]))
    try:
        options.layer_activations()
        options.layer_batch_norm()
    except ValueError as error:
        raise ConversionError(f"spec '{key}': {error}") from error
    return options


def module_from_spec(architecture: str, spec: Dict[str, Any], defaults: SpecDefaults = None):
    """Build the (untrained) reference module a spec describes."""
    defaults = defaults or SpecDefaults()
    _check_keys("top level", spec, _TOP_KEYS)
    declared = spec.get("architecture")
    if declared is not None and declared != architecture:
        raise ConversionError(f"spec says architecture '{declared}' but '{architecture}' was asked for")
    if architecture not in ARCHITECTURES:
        raise ConversionError(f"unknown architecture '{architecture}', expected one of {ARCHITECTURES}")
    user_fields = parse_fields("user_fields", _require("top level", spec, "user_fields"), defaults)
    l2_normalize = bool(spec.get("l2_normalize", defaults.l2_normalize))
    temperature = float(spec.get("temperature", defaults.temperature))
    if not temperature > 0:
        raise ConversionError(f"spec 'temperature': must be positive, got {temperature}")
    try:
        if architecture == "dssm":
            item_fields = parse_fields("item_fields", _require("top level", spec, "item_fields"), defaults)
            return DSSM(user_fields, item_fields, parse_tower("user_tower", spec.get("user_tower"), defaults),
                        parse_tower("item_tower", spec.get("item_tower"), defaults), l2_normalize, temperature)
        if architecture == "youtube_dnn":
            item_field = parse_field("item_field", _require("top level", spec, "item_field"), defaults)
            return YoutubeDNN(user_fields, item_field, parse_tower("user_tower", spec.get("user_tower"), defaults),
                              l2_normalize, temperature,
                              bool(spec.get("normalize_items", defaults.normalize_items)))
        item_fields = parse_fields("item_fields", _require("top level", spec, "item_fields"), defaults)
        embedding_dim = int(spec.get("embedding_dim", user_fields[0].embedding_dim))
        return FMTwoTower(user_fields, item_fields, embedding_dim)
    except ValueError as error:
        raise ConversionError(f"spec: {error}") from error


def field_to_spec(field) -> Dict[str, Any]:
    if isinstance(field, CategoricalFeature):
        entry = {"kind": "categorical", "name": field.name, "vocabulary_size": field.vocabulary_size,
                 "embedding_dim": field.embedding_dim, "ids": field.ids}
        if field.embedding_name:
            entry["embedding_name"] = field.embedding_name
        return entry
    if isinstance(field, HistoryFeature):
        return {"kind": "history", "name": field.name, "max_length": field.max_length,
                "embedding_name": field.embedding_name, "pooling": field.pooling, "padding_id": field.padding_id,
                "mean_epsilon": field.mean_epsilon, "ids": field.ids}
    return {"kind": "dense", "name": field.name, "width": field.width}


def tower_to_spec(options: TowerOptions) -> Dict[str, Any]:
    return {"widths": [int(w) for w in options.widths], "activations": options.layer_activations(),
            "batch_norm": options.layer_batch_norm(), "batch_norm_eps": options.batch_norm_eps}


def module_to_spec(module) -> Dict[str, Any]:
    """The spec JSON (as a dict) that rebuilds `module` with module_from_spec."""
    spec: Dict[str, Any] = {"architecture": module.architecture,
                            "user_fields": [field_to_spec(f) for f in module.user_fields]}
    if isinstance(module, FMTwoTower):
        spec["item_fields"] = [field_to_spec(f) for f in module.item_fields]
        spec["embedding_dim"] = module.embedding_dim
        return spec
    spec["user_tower"] = tower_to_spec(module.user_tower.options)
    spec["l2_normalize"] = module.user_tower.l2_normalize
    spec["temperature"] = module.user_tower.temperature
    if isinstance(module, DSSM):
        spec["item_fields"] = [field_to_spec(f) for f in module.item_fields]
        spec["item_tower"] = tower_to_spec(module.item_tower.options)
    else:
        spec["item_field"] = field_to_spec(module.item_field)
        spec["normalize_items"] = module.normalize_items
    return spec
