// Structured logs: one JSON object per line on stderr, which is what the cluster's log
// collector picks up and parses without a custom format.
//
//   {"ts":"2024-05-01T12:00:00.123Z","level":"warn","msg":"event failed","route":"orders","reason":"filter"}
//
// A bad event can fail once per message, thousands of times a second; the per-key limiter
// lets the first few lines through and folds the rest into a "suppressed" count.
#pragma once

#include <atomic>
#include <charconv>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace switchboard::router {

enum class LogLevel : uint8_t { Debug, Info, Warn, Error };

std::string_view level_name(LogLevel level);
// "debug", "info", "warn" (or "warning"), "error", in any case; nullopt for anything else.
std::optional<LogLevel> parse_log_level(std::string_view text);

// One key/value on a log line. Strings are written as JSON strings, numbers and booleans
// as JSON literals. A Field only borrows its key and string value, so it must not outlive
// the call it is passed to.
class LogField {
 public:
  LogField(std::string_view key, std::string_view value) : key_(key), text_(value) {}
  LogField(std::string_view key, const char* value) : key_(key), text_(value) {}
  LogField(std::string_view key, const std::string& value) : key_(key), text_(value) {}
  // A template so that pointers and other types do not quietly convert to bool.
  template <typename T>
    requires std::same_as<T, bool>
  LogField(std::string_view key, T value)
      : key_(key), text_(value ? "true" : "false"), literal_(true) {}
  template <std::integral T>
    requires(!std::same_as<T, bool> && !std::same_as<T, char>)
  LogField(std::string_view key, T value) : key_(key), literal_(true) {
    digits_len_ = static_cast<uint8_t>(
        std::to_chars(digits_, digits_ + sizeof digits_, value).ptr - digits_);
  }
  // Shortest text that reads back as the same double. NaN and infinities have no JSON
  // literal, so they are written as the strings "NaN", "Infinity" and "-Infinity".
  LogField(std::string_view key, double value);

  std::string_view key() const { return key_; }
  // Read through here, not a stored view: a copied LogField must not point into the
  // digits of the one it was copied from.
  std::string_view text() const {
    return digits_len_ ? std::string_view(digits_, digits_len_) : text_;
  }
  bool literal() const { return literal_; }  // written without quotes

 private:
  std::string_view key_;
  std::string_view text_;
  bool literal_ = false;
  uint8_t digits_len_ = 0;
  char digits_[32] = {};  // holds a number's text, so a field never allocates
};

struct LoggerOptions {
  std::ostream* sink = nullptr;  // null: std::cerr
  LogLevel level = LogLevel::Info;
  // Lines each rate-limit key may write per one-second window; 0 turns the limiter off.
  uint32_t per_key_per_second = 5;
  // Keys tracked at once. Keys should be bounded (route + reason), but if a caller builds
  // them from event data this keeps the limiter's memory bounded anyway: keys idle for a
  // window are forgotten, and past the cap new keys share one window.
  size_t max_keys = 4096;
  // Injectable for tests: the time written in "ts", and the time the limiter counts in.
  std::function<std::chrono::system_clock::time_point()> wall_clock;
  std::function<std::chrono::steady_clock::time_point()> steady_clock;
};

class Logger {
 public:
  explicit Logger(LoggerOptions options = {});

  void set_level(LogLevel level);
  LogLevel level() const;
  bool enabled(LogLevel level) const;

  // Writes one line if `level` is enabled. Keys should not repeat "ts", "level", "msg" or
  // "suppressed": the line would carry the key twice.
  void log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields = {});
  void debug(std::string_view msg, std::initializer_list<LogField> fields = {}) {
    log(LogLevel::Debug, msg, fields);
  }
  void info(std::string_view msg, std::initializer_list<LogField> fields = {}) {
    log(LogLevel::Info, msg, fields);
  }
  void warn(std::string_view msg, std::initializer_list<LogField> fields = {}) {
    log(LogLevel::Warn, msg, fields);
  }
  void error(std::string_view msg, std::initializer_list<LogField> fields = {}) {
    log(LogLevel::Error, msg, fields);
  }

  // The rate limiter on its own: true when a line under `key` may be written now. When it
  // returns true, the count of calls under the key refused since the last allowed one goes
  // to *suppressed (if given) and restarts from zero.
  bool allow(std::string_view key, uint64_t* suppressed = nullptr);

  // log() behind allow(key). The first line after a suppressed run carries
  // "suppressed":N, so the reader knows how much was dropped.
  void log_limited(std::string_view key, LogLevel level, std::string_view msg,
                   std::initializer_list<LogField> fields = {});

  // The line log() would write, without the newline. For tests and for callers that batch.
  std::string format(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields,
                     uint64_t suppressed = 0) const;

 private:
  struct Window {
    std::chrono::steady_clock::time_point start;
    uint32_t used = 0;
    uint64_t suppressed = 0;
  };

  void write(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields,
             uint64_t suppressed);
  Window& window_locked(std::string_view key, std::chrono::steady_clock::time_point now);

  LoggerOptions options_;
  std::ostream* sink_;
  std::atomic<LogLevel> level_;
  std::mutex mu_;  // one line at a time on the sink; guards windows_
  std::map<std::string, Window, std::less<>> windows_;
  Window overflow_;  // shared by keys that arrive while windows_ is full
  std::chrono::steady_clock::time_point last_prune_{};
};

// RFC 3339 in UTC with milliseconds: 2024-05-01T12:00:00.123Z.
std::string format_rfc3339_ms(std::chrono::system_clock::time_point t);

}  // namespace switchboard::router
