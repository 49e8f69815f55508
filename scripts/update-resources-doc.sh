#!/usr/bin/env bash
# Regenerates the field tables of docs/resources.md from crds/. The renderer is the unit
# test that checks the page (tests/unit/crd_schema_test.cc), so the page and the check
# cannot drift apart.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
cmake --build "$BUILD" --target switchboard_unit_tests
SWITCHBOARD_UPDATE_DOCS=1 "$BUILD/bin/switchboard_unit_tests" --gtest_filter='CrdDocs.*'
