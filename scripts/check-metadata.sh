#!/usr/bin/env bash
# Metadata checks, run by `make test` (tools from requirements/dev.txt, on PATH via .venv/bin):
#   - action.yml against GitHub's action metadata schema;
#   - our workflows and the example user workflows against the workflow schema;
#   - zizmor (offline) on both: our workflows with zizmor's defaults (every action pinned by
#     commit SHA); the examples likewise, except that they may use this action by its major
#     tag (`org/s3-cloudfront-deploy@v1`, as the README documents it);
#   - hadolint on the Dockerfile, failing at warning level.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in check-jsonschema zizmor hadolint; do
    if ! command -v "$tool" >/dev/null; then
        echo "check-metadata: \`$tool\` not found: install requirements/dev.txt (\`make test\` does)" >&2
        exit 1
    fi
done

workflows=(.github/workflows/*.yml)
examples=(docs/examples/*.yml)
failed=0
step() {
    echo "+ $*"
    "$@" || failed=1
}

step check-jsonschema --builtin-schema vendor.github-actions action.yml
step check-jsonschema --builtin-schema vendor.github-workflows "${workflows[@]}" "${examples[@]}"

step zizmor --offline --no-config --quiet --no-progress "${workflows[@]}"
config=$(mktemp)
trap 'rm -f "$config"' EXIT
cat >"$config" <<'YAML'
rules:
  unpinned-uses:
    config:
      policies:
        "org/s3-cloudfront-deploy": ref-pin
        "*": hash-pin
YAML
step zizmor --offline --config "$config" --quiet --no-progress "${examples[@]}"

step hadolint --failure-threshold warning Dockerfile

if ((failed)); then
    echo "check-metadata: FAILED (see above)" >&2
    exit 1
fi
echo "check-metadata: OK"
