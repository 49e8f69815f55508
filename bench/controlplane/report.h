// The result file of the control-plane benchmark (bench/results/controlplane.json): the
// metrics every run must carry, and a check that a file has each of them as a number.
#pragma once

#include <string>
#include <vector>

#include "kube/client.h"

namespace switchboard::bench {

// "bulk.ready_and_applied_seconds", ...: the numbers a result must hold (dotted paths).
const std::vector<std::string>& required_metrics();

// The value at a dotted path, or nullptr.
const kube::Object* at_path(const kube::Object& root, const std::string& path);

// Reads `path` and checks it is JSON with every required metric a number; false with
// every problem in `problems`.
bool verify_result_file(const std::string& path, std::vector<std::string>& problems);

// A verified result as Markdown: the setup, the machine and load, and one table of the
// measurements with the goals met or missed.
std::string summary_markdown(const kube::Object& result);

// `value` as indented JSON text, numbers written as short as they round-trip to what was
// measured (2.045, not 2.0449999999999999).
std::string to_json_text(const kube::Object& value);

// Nearest-rank percentile (p in 0..100) of `values`; 0 when empty. With 50 samples p99 is
// the largest.
double percentile(std::vector<double> values, double p);

}  // namespace switchboard::bench
