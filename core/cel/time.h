// Timestamps and durations as CEL defines them: RFC 3339 text, years 0001 to 9999,
// durations within ±10,000 years, and time zones by IANA name or fixed offset.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/cel/value.h"

namespace switchboard::cel::time {

constexpr int64_t kMinTimestampSeconds = -62135596800;  // 0001-01-01T00:00:00Z
constexpr int64_t kMaxTimestampSeconds = 253402300799;  // 9999-12-31T23:59:59Z
constexpr int64_t kMaxDurationSeconds = 315576000000;   // 10,000 years

bool timestamp_in_range(Time t);
bool duration_in_range(Time d);

// Normalises so that nanos is in range and has the sign of seconds (durations) or is
// non-negative (timestamps).
Time normalize_duration(int64_t seconds, int64_t nanos);
Time normalize_timestamp(int64_t seconds, int64_t nanos);

std::optional<Time> parse_timestamp(std::string_view text);  // RFC 3339
std::string format_timestamp(Time t);                        // RFC 3339, UTC, trimmed nanos
std::optional<Time> parse_duration(std::string_view text);   // "1h2m3.5s", "-30ms", ...
std::string format_duration(Time d);                         // "3730s", "1.5s"

struct Civil {
  int64_t year;
  int month;        // 1..12
  int day;          // 1..31
  int hour, minute, second;
  int day_of_week;  // 0 = Sunday
  int day_of_year;  // 0-based
};

// The civil time of `t` in zone `tz` ("UTC", "America/New_York", "+05:30", "-08:00").
// Returns nullopt for an unknown zone.
std::optional<Civil> to_civil(Time t, std::string_view tz);

}  // namespace switchboard::cel::time
