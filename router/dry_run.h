// The dry-run commands of switchboard-router: a user's first contact. They load and compile
// routes exactly as the router does, with no NATS and no Kubernetes.
//
//   check --routes FILE                      validate, run transform tests
//   test  --routes FILE [--events FILE] [--explain]
//                                            route JSON Lines events, print outcomes
#pragma once

#include <iosfwd>
#include <string>

namespace switchboard::router {

struct DryRunOptions {
  std::string routes_path;
  std::string events_path;  // empty: standard input
  bool explain = false;
};

// Both return a process exit code: 0 success, 1 invalid routes or failed tests or a bad
// input line, 2 usage.
int run_check(const DryRunOptions& opts, std::ostream& out, std::ostream& err);
int run_test(const DryRunOptions& opts, std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace switchboard::router
