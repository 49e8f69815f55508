// switchboard-router: the data plane binary. `run` moves events between NATS subjects;
// `check` and `test` try routes on a laptop with the same routing core.
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "router/dry_run.h"
#include "router/run.h"

namespace {

constexpr const char* kUsage = R"(usage: switchboard-router COMMAND [OPTIONS]

commands:
  run   --routes FILE --nats URL ...      route events between NATS subjects (run --help)
  check --routes FILE                  validate routes and transforms, run the transform tests
  test  --routes FILE [--events FILE] [--explain]
                                       route events (JSON Lines, stdin by default) and print
                                       one JSON line per outcome

options may also come from the environment: SWITCHBOARD_ROUTES, SWITCHBOARD_EVENTS.
)";

}  // namespace

int main(int argc, char** argv) {
  using switchboard::router::DryRunOptions;
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  std::string command = argv[1];
  if (command == "run") {
    std::vector<std::string> args(argv + 2, argv + argc);
    if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
      std::cout << switchboard::router::kRunUsage;
      return 0;
    }
    switchboard::router::RunOptions run;
    std::string error;
    if (!switchboard::router::parse_run_options(args, run, error)) {
      std::cerr << "error: " << error << "\n" << switchboard::router::kRunUsage;
      return 2;
    }
    return switchboard::router::run_router(run);
  }
  DryRunOptions opts;
  if (const char* e = std::getenv("SWITCHBOARD_ROUTES")) opts.routes_path = e;
  if (const char* e = std::getenv("SWITCHBOARD_EVENTS")) opts.events_path = e;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* flag) -> bool {
      if (i + 1 >= argc) {
        std::cerr << "error: " << flag << " needs a value\n";
        return false;
      }
      return true;
    };
    if (a == "--routes") {
      if (!value("--routes")) return 2;
      opts.routes_path = argv[++i];
    } else if (a == "--events") {
      if (!value("--events")) return 2;
      opts.events_path = argv[++i];
    } else if (a == "--explain") {
      opts.explain = true;
    } else {
      std::cerr << "error: unknown option '" << a << "'\n" << kUsage;
      return 2;
    }
  }
  if (command == "check") return switchboard::router::run_check(opts, std::cout, std::cerr);
  if (command == "test") return switchboard::router::run_test(opts, std::cin, std::cout, std::cerr);
  std::cerr << "error: unknown command '" << command << "'\n" << kUsage;
  return 2;
}
