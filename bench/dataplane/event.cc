#include "bench/dataplane/event.h"

#include <charconv>
#include <cstring>
#include <ctime>

namespace switchboard::bench {

namespace {

constexpr std::string_view kHead = "{\"id\":\"ord-";
constexpr size_t kSeqDigits = 12;
constexpr std::string_view kTs = "\",\"ts\":";
constexpr std::string_view kBodyKept =
    ",\"customer\":{\"tier\":\"gold\",\"region\":\"eu-west\"},\"amount\":120.5,\"currency\":\"EUR\","
    "\"items\":[{\"sku\":\"A-1\",\"qty\":2}],\"debug\":true,\"pad\":\"";
constexpr std::string_view kBodyDropped =
    ",\"customer\":{\"tier\":\"gold\",\"region\":\"eu-west\"},\"amount\":80.25,\"currency\":\"EUR\","
    "\"items\":[{\"sku\":\"A-1\",\"qty\":2}],\"debug\":true,\"pad\":\"";
static_assert(kBodyKept.size() == kBodyDropped.size(), "both kinds of event must be the same size");
constexpr std::string_view kTail = "\"}";
constexpr size_t kMaxTsDigits = 16;  // 2^53 ns is 104 days of uptime; later ts still work, wider

}  // namespace

size_t min_event_size() {
  return kHead.size() + kSeqDigits + kTs.size() + kMaxTsDigits + kBodyKept.size() + kTail.size();
}

void append_event(std::string& out, uint64_t seq, int64_t ts_ns, size_t size) {
  size_t start = out.size();
  out.append(kHead);
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, seq);
  size_t n = static_cast<size_t>(end - digits);
  out.append(n < kSeqDigits ? kSeqDigits - n : 0, '0');
  out.append(digits, n);
  out.append(kTs);
  auto [tend, tec] = std::to_chars(digits, digits + sizeof digits, ts_ns);
  out.append(digits, static_cast<size_t>(tend - digits));
  out.append(passes_filter(seq) ? kBodyKept : kBodyDropped);
  size_t used = out.size() - start + kTail.size();
  out.append(size > used ? size - used : 0, 'x');
  out.append(kTail);
}

bool read_event(std::string_view p, uint64_t& seq, int64_t& ts_ns) {
  static constexpr std::string_view kId = "\"id\":\"ord-";
  static constexpr std::string_view kTsKey = "\"ts\":";
  const void* id = ::memmem(p.data(), p.size(), kId.data(), kId.size());
  const void* ts = ::memmem(p.data(), p.size(), kTsKey.data(), kTsKey.size());
  if (id == nullptr || ts == nullptr) return false;
  const char* end = p.data() + p.size();
  const char* s = static_cast<const char*>(id) + kId.size();
  auto r1 = std::from_chars(s, end, seq);
  const char* t = static_cast<const char*>(ts) + kTsKey.size();
  auto r2 = std::from_chars(t, end, ts_ns);
  return r1.ec == std::errc() && r2.ec == std::errc();
}

int64_t monotonic_ns() {
  timespec t{};
  ::clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

}  // namespace switchboard::bench
