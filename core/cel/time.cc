#include "core/cel/time.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace switchboard::cel::time {

bool timestamp_in_range(Time t) {
  return t.seconds >= kMinTimestampSeconds && t.seconds <= kMaxTimestampSeconds;
}

bool duration_in_range(Time d) {
  return d.seconds >= -kMaxDurationSeconds && d.seconds <= kMaxDurationSeconds;
}

Time normalize_duration(int64_t seconds, int64_t nanos) {
  seconds += nanos / 1'000'000'000;
  nanos %= 1'000'000'000;
  if (seconds > 0 && nanos < 0) {
    --seconds;
    nanos += 1'000'000'000;
  } else if (seconds < 0 && nanos > 0) {
    ++seconds;
    nanos -= 1'000'000'000;
  }
  return Time{seconds, static_cast<int32_t>(nanos)};
}

Time normalize_timestamp(int64_t seconds, int64_t nanos) {
  seconds += nanos / 1'000'000'000;
  nanos %= 1'000'000'000;
  if (nanos < 0) {
    --seconds;
    nanos += 1'000'000'000;
  }
  return Time{seconds, static_cast<int32_t>(nanos)};
}

namespace {

// Durations are summed in nanoseconds; 128 bits leave room to detect overflow.
__extension__ typedef __int128 i128;

// Days since 1970-01-01 of a proleptic Gregorian date, and back. The 400-year cycle
// ("era") keeps the arithmetic exact for every year CEL allows.
int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t year_of_era = y - era * 400;
  int64_t day_of_year = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

void civil_from_days(int64_t z, int64_t& y, int& m, int& d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t day_of_era = z - era * 146097;
  int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  y = year_of_era + era * 400;
  int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  int64_t mp = (5 * day_of_year + 2) / 153;
  d = static_cast<int>(day_of_year - (153 * mp + 2) / 5 + 1);
  m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  y += m <= 2;
}

bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int days_in_month(int64_t y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

bool digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

// "+05:30" / "-08:00" / "05:30" → seconds east of UTC.
std::optional<int64_t> parse_fixed_offset(std::string_view tz) {
  int sign = 1;
  size_t i = 0;
  if (!tz.empty() && (tz[0] == '+' || tz[0] == '-')) {
    sign = tz[0] == '-' ? -1 : 1;
    i = 1;
  }
  int h = 0, m = 0;
  if (tz.size() != i + 5 || tz[i + 2] != ':' || !digits(tz, i, 2, h) || !digits(tz, i + 3, 2, m) ||
      m > 59 || h > 23) {
    return std::nullopt;
  }
  return sign * (h * 3600 + m * 60);
}

// A time zone read from the system's TZif files: transition times and the offsets
// that apply from each.
struct Zone {
  std::vector<int64_t> transitions;
  std::vector<int32_t> offsets;  // offset after transitions[i]
  int32_t initial_offset = 0;

  int32_t offset_at(int64_t t) const {
    auto it = std::upper_bound(transitions.begin(), transitions.end(), t);
    if (it == transitions.begin()) return initial_offset;
    return offsets[static_cast<size_t>(it - transitions.begin() - 1)];
  }
};

int64_t be(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  if (n == 4) return static_cast<int32_t>(static_cast<uint32_t>(v));
  return static_cast<int64_t>(v);
}

// IANA names use these characters only. Anything else is refused before the name becomes a
// path: a NUL would end the path early ("America/New_York\0x" would load New York), and
// without '.' neither ".." nor the database's own index files can be reached.
bool plausible_zone_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name[0] == '/') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
           c == '_' || c == '-' || c == '+';
  });
}

std::shared_ptr<const Zone> load_zone(const std::string& name) {
  if (!plausible_zone_name(name)) return nullptr;
  std::ifstream in("/usr/share/zoneinfo/" + name, std::ios::binary);
  if (!in) return nullptr;
  std::vector<unsigned char> data;
  try {
    // A directory ("America") opens, and libstdc++ then throws on the first read.
    data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } catch (const std::exception&) {
    return nullptr;
  }
  auto header = [&](size_t at, int64_t counts[6]) {
    if (data.size() < at + 44 || data[at] != 'T' || data[at + 1] != 'Z' || data[at + 2] != 'i' ||
        data[at + 3] != 'f') {
      return false;
    }
    for (int i = 0; i < 6; ++i) counts[i] = be(&data[at + 20 + 4 * static_cast<size_t>(i)], 4);
    return true;
  };
  int64_t c[6];
  if (!header(0, c)) return nullptr;
  size_t at = 0;
  int width = 4;
  if (data[4] >= '2') {
    // Skip the 32-bit block; the 64-bit one follows with its own header.
    size_t v1 = static_cast<size_t>(c[3] * 5 + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0]);
    at = 44 + v1;
    if (!header(at, c)) return nullptr;
    width = 8;
  }
  size_t timecnt = static_cast<size_t>(c[3]), typecnt = static_cast<size_t>(c[4]);
  size_t p = at + 44;
  size_t need = timecnt * static_cast<size_t>(width) + timecnt + typecnt * 6;
  if (data.size() < p + need || typecnt == 0) return nullptr;
  auto zone = std::make_shared<Zone>();
  std::vector<int32_t> type_offsets(typecnt);
  std::vector<bool> type_dst(typecnt);
  size_t types_at = p + timecnt * static_cast<size_t>(width) + timecnt;
  for (size_t i = 0; i < typecnt; ++i) {
    type_offsets[i] = static_cast<int32_t>(be(&data[types_at + i * 6], 4));
    type_dst[i] = data[types_at + i * 6 + 4] != 0;
  }
  zone->initial_offset = type_offsets[0];
  for (size_t i = 0; i < typecnt; ++i) {
    if (!type_dst[i]) {
      zone->initial_offset = type_offsets[i];
      break;
    }
  }
  for (size_t i = 0; i < timecnt; ++i) {
    zone->transitions.push_back(be(&data[p + i * static_cast<size_t>(width)], width));
    size_t idx = data[p + timecnt * static_cast<size_t>(width) + i];
    if (idx >= typecnt) return nullptr;
    zone->offsets.push_back(type_offsets[idx]);
  }
  return zone;
}

std::shared_ptr<const Zone> zone_named(std::string_view name) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const Zone>, std::less<>> cache;
  std::lock_guard lock(mu);
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  auto zone = load_zone(std::string(name));
  // Only zones that exist are remembered: names come from events, and caching every
  // unknown one would grow the cache without bound.
  if (zone) cache.emplace(std::string(name), zone);
  return zone;
}

}  // namespace

std::optional<Time> parse_timestamp(std::string_view s) {
  int y, mo, d, h, mi, sec;
  if (!digits(s, 0, 4, y) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't') || !digits(s, 11, 2, h) ||
      s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' || !digits(s, 17, 2, sec)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60) {
    return std::nullopt;
  }
  size_t i = 19;
  int64_t nanos = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t start = i;
    int64_t scale = 100'000'000;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (i - start < 9) {
        nanos += (s[i] - '0') * scale;
        scale /= 10;
      }
      ++i;
    }
    if (i == start || i - start > 9) return std::nullopt;
  }
  if (i >= s.size()) return std::nullopt;
  int64_t offset = 0;
  if (s[i] == 'Z' || s[i] == 'z') {
    ++i;
  } else {
    auto off = parse_fixed_offset(s.substr(i, 6));
    if (!off || (s[i] != '+' && s[i] != '-')) return std::nullopt;
    offset = *off;
    i += 6;
  }
  if (i != s.size()) return std::nullopt;
  int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset;
  Time t{secs, static_cast<int32_t>(nanos)};
  if (!timestamp_in_range(t)) return std::nullopt;
  return t;
}

std::string format_timestamp(Time t) {
  int64_t days = t.seconds >= 0 ? t.seconds / 86400 : (t.seconds - 86399) / 86400;
  int64_t rem = t.seconds - days * 86400;
  int64_t y;
  int m, d;
  civil_from_days(days, y, m, d);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02d-%02dT%02d:%02d:%02d", static_cast<long long>(y), m, d,
                static_cast<int>(rem / 3600), static_cast<int>(rem / 60 % 60),
                static_cast<int>(rem % 60));
  std::string out = buf;
  if (t.nanos != 0) {
    std::snprintf(buf, sizeof buf, ".%09d", t.nanos);
    std::string frac = buf;
    while (frac.back() == '0') frac.pop_back();
    out += frac;
  }
  out += 'Z';
  return out;
}

std::optional<Time> parse_duration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  bool negative = false;
  size_t i = 0;
  if (s[0] == '-' || s[0] == '+') {
    negative = s[0] == '-';
    i = 1;
  }
  if (i == s.size()) return std::nullopt;
  if (s.substr(i) == "0") return Time{0, 0};
  // Accumulate in nanoseconds with 128-bit headroom; check the range at the end.
  i128 total = 0;
  while (i < s.size()) {
    size_t start = i;
    i128 whole = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      whole = whole * 10 + (s[i] - '0');
      if (whole > static_cast<i128>(1) << 80) return std::nullopt;
      ++i;
    }
    i128 frac = 0, frac_scale = 1;
    bool has_frac = false;
    if (i < s.size() && s[i] == '.') {
      has_frac = true;
      ++i;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        if (frac_scale < 1'000'000'000'000'000'000) {
          frac = frac * 10 + (s[i] - '0');
          frac_scale *= 10;
        }
        ++i;
      }
    }
    if (i == start || (i == start + 1 && has_frac)) return std::nullopt;
    size_t unit_start = i;
    while (i < s.size() && !(s[i] >= '0' && s[i] <= '9') && s[i] != '.') ++i;
    std::string_view unit = s.substr(unit_start, i - unit_start);
    int64_t ns;
    if (unit == "h") ns = 3'600'000'000'000;
    else if (unit == "m") ns = 60'000'000'000;
    else if (unit == "s") ns = 1'000'000'000;
    else if (unit == "ms") ns = 1'000'000;
    else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") ns = 1'000;
    else if (unit == "ns") ns = 1;
    else return std::nullopt;
    total += whole * ns + frac * ns / frac_scale;
    if (total > static_cast<i128>(kMaxDurationSeconds + 1) * 1'000'000'000) return std::nullopt;
  }
  if (negative) total = -total;
  auto seconds = static_cast<int64_t>(total / 1'000'000'000);
  auto nanos = static_cast<int64_t>(total % 1'000'000'000);
  Time d = normalize_duration(seconds, nanos);
  if (!duration_in_range(d)) return std::nullopt;
  return d;
}

std::string format_duration(Time d) {
  std::string out;
  bool negative = d.seconds < 0 || d.nanos < 0;
  uint64_t secs = d.seconds < 0 ? static_cast<uint64_t>(-d.seconds) : static_cast<uint64_t>(d.seconds);
  int32_t nanos = d.nanos < 0 ? -d.nanos : d.nanos;
  if (negative) out += '-';
  out += std::to_string(secs);
  if (nanos != 0) {
    char buf[16];
    std::snprintf(buf, sizeof buf, ".%09d", nanos);
    std::string frac = buf;
    while (frac.back() == '0') frac.pop_back();
    out += frac;
  }
  out += 's';
  return out;
}

std::optional<Civil> to_civil(Time t, std::string_view tz) {
  int64_t offset = 0;
  if (tz.empty() || tz == "UTC" || tz == "Z") {
    offset = 0;
  } else if (auto fixed = parse_fixed_offset(tz)) {
    offset = *fixed;
  } else {
    auto zone = zone_named(tz);
    if (!zone) return std::nullopt;
    offset = zone->offset_at(t.seconds);
  }
  int64_t local = t.seconds + offset;
  int64_t days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
  int64_t rem = local - days * 86400;
  Civil c{};
  civil_from_days(days, c.year, c.month, c.day);
  c.hour = static_cast<int>(rem / 3600);
  c.minute = static_cast<int>(rem / 60 % 60);
  c.second = static_cast<int>(rem % 60);
  int64_t dow = (days + 4) % 7;  // 1970-01-01 was a Thursday
  c.day_of_week = static_cast<int>(dow < 0 ? dow + 7 : dow);
  c.day_of_year = static_cast<int>(days - days_from_civil(c.year, 1, 1));
  return c;
}

}  // namespace switchboard::cel::time
