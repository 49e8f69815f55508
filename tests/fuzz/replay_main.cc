// Replays fuzz inputs without libFuzzer: each file named on the command line, and each file
// in a folder named there, goes once through the target's LLVMFuzzerTestOneInput. Built in
// every build that is not a fuzzing build, so that the seed corpus and every input a fuzzer
// ever crashed on (tests/fuzz/regressions) run with the other tests, under the sanitizers
// too (make test-sanitize). A failed FUZZ_CHECK aborts, which fails the test.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

int replay(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", file.c_str());
    return 1;
  }
  const std::string input((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // A copy in a buffer of its own size, so that the sanitizers see a read past the end.
  std::vector<uint8_t> bytes(input.begin(), input.end());
  LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path arg(argv[i]);
    std::error_code ec;
    if (std::filesystem::is_directory(arg, ec)) {
      for (const auto& entry : std::filesystem::directory_iterator(arg)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
    } else if (std::filesystem::exists(arg, ec)) {
      files.push_back(arg);
    }
    // A folder that does not exist yet (no regression for this target) is no input.
  }
  if (files.empty()) {
    std::fprintf(stderr, "no inputs to replay\n");
    return 1;
  }
  std::sort(files.begin(), files.end());
  int failed = 0;
  for (const auto& f : files) failed += replay(f);
  std::printf("replayed %zu inputs\n", files.size() - static_cast<size_t>(failed));
  return failed == 0 ? 0 : 1;
}
