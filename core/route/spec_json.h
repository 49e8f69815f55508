// Reading route specs from JSON with the project's own parser (core/json): the same
// shapes, rules and error messages as the YAML loader (spec_yaml.h), both walking the
// rules in spec_reader.h. For text that is JSON by construction, above all the canonical
// table the controller writes into a router's ConfigMap: core/json reads it many times
// faster than yaml-cpp. Positions are line:column of the JSON text.
//
// JSON is stricter on types than YAML: a number or boolean field takes a JSON number or
// boolean, or a string holding a decimal integer or true/false (as the YAML loader does
// with a quoted scalar); YAML's other spellings (yes/no, 0x1f) are YAML's alone.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/route/spec.h"

namespace switchboard::route {

// One JSON document: {"routes": [...], "transforms": [...]} (the canonical table), or one
// Kubernetes object (EventRoute, EventTransform). Returns false when anything is wrong;
// `errors` then lists every problem found.
bool load_json(std::string_view text, const std::string& file, RouteSet& out, std::vector<SpecError>& errors);

}  // namespace switchboard::route
