// switchboard-controller: reads flags, then runs the controller (controller/manager.cc).
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "controller/manager.h"
#include "controller/options.h"

int main(int argc, char** argv) {
  using namespace switchboard::controller;
  std::vector<std::string> args(argv + 1, argv + argc);
  ControllerOptions options;
  std::string error;
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return v == nullptr ? std::string() : std::string(v);
  };
  if (!parse_controller_options(args, env, options, error)) {
    std::cerr << "switchboard-controller: " << error << "\n\n" << kControllerUsage;
    return 2;
  }
  if (options.help) {
    std::cout << kControllerUsage;
    return 0;
  }
  return run_controller(options);
}
