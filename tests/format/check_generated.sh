#!/usr/bin/env bash
# The checked-in FlatBuffers code equals what flatc generates from schemas/ now.
set -euo pipefail
source_dir=$1
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$source_dir/scripts/generate-schema" "$scratch"
diff -r "$source_dir/include/reclite/format/model_generated.h" "$scratch/include/reclite/format/model_generated.h"
for generated in "$scratch"/include/reclite/format/*_generated.h; do
  diff "$generated" "$source_dir/include/reclite/format/$(basename "$generated")"
done
diff -r "$scratch/converters/generated" "$source_dir/converters/generated"
echo "generated code is current"
