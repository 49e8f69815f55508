// Runs the test cases embedded in named transforms: input event in, expected payload (or
// expected error) out. The controller runs them on every change; `check` runs them on a
// laptop.
#pragma once

#include <string>
#include <vector>

#include "core/route/processor.h"
#include "core/route/table.h"

namespace switchboard::route {

struct TransformTestResult {
  std::string transform;
  std::string test;
  bool passed = false;
  std::string difference;  // for a failed test: where and how the output differs
};

std::vector<TransformTestResult> run_transform_tests(const RouteTable& table, Processor& processor);

// Compares two JSON texts as values (object key order ignored, numbers by value). Returns
// an empty string when equal, else a description of the first difference with its path.
std::string json_difference(std::string_view expected, std::string_view actual);

}  // namespace switchboard::route
