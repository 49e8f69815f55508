// Reading route specs from YAML. Two shapes are accepted, so that the file a user tries
// on a laptop is the file they `kubectl apply`:
//   - a document with `routes:` and/or `transforms:` lists;
//   - Kubernetes objects (kind EventRoute or EventTransform, apiVersion
//     switchboard.dev/v1alpha1), one per document, `metadata.name` naming them.
// An unknown field is an error, never ignored.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/route/spec.h"

namespace switchboard::route {

// Returns false when anything is wrong; `errors` then lists every problem found.
bool load_yaml(std::string_view text, const std::string& file, RouteSet& out,
               std::vector<SpecError>& errors);
bool load_yaml_file(const std::string& path, RouteSet& out, std::vector<SpecError>& errors);

// Parses one EventRoute spec (the `spec` object alone) or EventTransform spec: the
// controller's entry points. `name` comes from metadata.
bool load_route_spec_yaml(std::string_view text, const std::string& name, RouteSpec& out,
                          std::vector<SpecError>& errors);

// Duration text ("30s", "1m30s", "250ms") to milliseconds; false when invalid.
bool parse_duration_ms(std::string_view text, int64_t& ms);

}  // namespace switchboard::route
