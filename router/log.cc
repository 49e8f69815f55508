#include "router/log.h"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <iostream>

#include "core/json/document.h"

namespace switchboard::router {

namespace {

constexpr auto kWindow = std::chrono::seconds(1);

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != b[i]) return false;
  }
  return true;
}

// Error texts can quote event bytes, which need not be UTF-8; a line with invalid UTF-8 is
// not JSON, and collectors drop or mangle it. Each bad byte becomes U+FFFD.
void append_json_string(std::string& out, std::string_view s) {
  if (json::valid_utf8(s)) {
    json::append_quoted(out, s);
    return;
  }
  std::string clean;
  clean.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size();) {
    const auto lead = static_cast<unsigned char>(s[i]);
    size_t len = lead < 0x80 ? 1 : lead >= 0xC2 && lead <= 0xDF ? 2
                                 : lead >= 0xE0 && lead <= 0xEF ? 3
                                 : lead >= 0xF0 && lead <= 0xF4 ? 4
                                                                : 0;
    if (len != 0 && i + len <= s.size() && json::valid_utf8(s.substr(i, len))) {
      clean.append(s, i, len);
      i += len;
    } else {
      clean += "\xEF\xBF\xBD";
      ++i;
    }
  }
  json::append_quoted(out, clean);
}

}  // namespace

LogField::LogField(std::string_view key, double value) : key_(key) {
  if (std::isnan(value)) {
    text_ = "NaN";
  } else if (std::isinf(value)) {
    text_ = value > 0 ? "Infinity" : "-Infinity";
  } else {
    literal_ = true;
    digits_len_ = static_cast<uint8_t>(
        std::to_chars(digits_, digits_ + sizeof digits_, value).ptr - digits_);
  }
}

std::string_view level_name(LogLevel level) {
  switch (level) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warn: return "warn";
    case LogLevel::Error: return "error";
  }
  return "info";
}

std::optional<LogLevel> parse_log_level(std::string_view text) {
  if (iequals(text, "debug")) return LogLevel::Debug;
  if (iequals(text, "info")) return LogLevel::Info;
  if (iequals(text, "warn") || iequals(text, "warning")) return LogLevel::Warn;
  if (iequals(text, "error")) return LogLevel::Error;
  return std::nullopt;
}

std::string format_rfc3339_ms(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(t).time_since_epoch().count();
  // Floor, not truncate, so times before 1970 still get a millisecond part in [0, 999].
  const auto secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  const auto milli = static_cast<int>(ms - secs * 1000);
  const auto tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[96];  // what -Wformat-truncation computes for any int fields
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, milli);
  return buf;
}

Logger::Logger(LoggerOptions options)
    : options_(std::move(options)),
      sink_(options_.sink != nullptr ? options_.sink : &std::cerr),
      level_(options_.level) {
  if (!options_.wall_clock) options_.wall_clock = [] { return std::chrono::system_clock::now(); };
  if (!options_.steady_clock) {
    options_.steady_clock = [] { return std::chrono::steady_clock::now(); };
  }
}

void Logger::set_level(LogLevel level) { level_.store(level, std::memory_order_relaxed); }
LogLevel Logger::level() const { return level_.load(std::memory_order_relaxed); }
bool Logger::enabled(LogLevel level) const { return level >= this->level(); }

std::string Logger::format(LogLevel level, std::string_view msg,
                           std::initializer_list<LogField> fields, uint64_t suppressed) const {
  std::string line;
  line.reserve(96 + msg.size());
  line += "{\"ts\":\"";
  line += format_rfc3339_ms(options_.wall_clock());
  line += "\",\"level\":\"";
  line += level_name(level);
  line += "\",\"msg\":";
  append_json_string(line, msg);
  for (const LogField& f : fields) {
    line += ',';
    append_json_string(line, f.key());
    line += ':';
    if (f.literal()) {
      line += f.text();
    } else {
      append_json_string(line, f.text());
    }
  }
  if (suppressed > 0) {
    line += ",\"suppressed\":";
    line += std::to_string(suppressed);
  }
  line += '}';
  return line;
}

void Logger::write(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields,
                   uint64_t suppressed) {
  std::string line = format(level, msg, fields, suppressed);
  line += '\n';
  // One write per line under the lock, so lines from different threads never interleave.
  std::lock_guard lock(mu_);
  sink_->write(line.data(), static_cast<std::streamsize>(line.size()));
  sink_->flush();
}

void Logger::log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields) {
  if (!enabled(level)) return;
  write(level, msg, fields, 0);
}

void Logger::log_limited(std::string_view key, LogLevel level, std::string_view msg,
                         std::initializer_list<LogField> fields) {
  // A disabled level must not use up the key's allowance.
  if (!enabled(level)) return;
  uint64_t suppressed = 0;
  if (!allow(key, &suppressed)) return;
  write(level, msg, fields, suppressed);
}

Logger::Window& Logger::window_locked(std::string_view key,
                                      std::chrono::steady_clock::time_point now) {
  if (auto it = windows_.find(key); it != windows_.end()) return it->second;
  if (windows_.size() >= options_.max_keys && now - last_prune_ >= kWindow) {
    // A key idle for a whole window has nothing left to limit. Its pending suppressed
    // count, if any, is dropped with it: a rare loss, and only of a count.
    last_prune_ = now;
    std::erase_if(windows_, [&](const auto& entry) { return now - entry.second.start >= kWindow; });
  }
  if (windows_.size() >= options_.max_keys) return overflow_;
  Window& w = windows_[std::string(key)];
  w.start = now;
  return w;
}

bool Logger::allow(std::string_view key, uint64_t* suppressed) {
  if (suppressed != nullptr) *suppressed = 0;
  if (options_.per_key_per_second == 0) return true;
  const auto now = options_.steady_clock();
  std::lock_guard lock(mu_);
  Window& w = window_locked(key, now);
  if (now - w.start >= kWindow) {
    w.start = now;
    w.used = 0;
  }
  if (w.used >= options_.per_key_per_second) {
    ++w.suppressed;
    return false;
  }
  ++w.used;
  if (suppressed != nullptr) *suppressed = w.suppressed;
  w.suppressed = 0;
  return true;
}

}  // namespace switchboard::router
