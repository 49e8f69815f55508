// A NATS connection that speaks the text protocol directly on a socket. The load
// generator writes a whole batch of PUBs with one write() and reads MSGs on the thread
// that waits for them, with no client library's buffering, flusher timer or thread
// handoff in between: what it measures is the system under test, not a client.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::bench {

class WireConnection {
 public:
  WireConnection() = default;
  WireConnection(const WireConnection&) = delete;
  WireConnection& operator=(const WireConnection&) = delete;
  ~WireConnection();

  // nats://HOST:PORT (or HOST:PORT). Reads INFO, sends CONNECT, waits for the PONG of a PING.
  bool connect(const std::string& url, std::string& error);
  bool subscribe(std::string_view subject, int sid, std::string& error);
  // A PING/PONG round trip: the server has processed everything sent before it.
  bool round_trip(int timeout_ms, std::string& error);
  bool write_all(std::string_view data, std::string& error);

  // Waits up to timeout_ms for input, then hands each complete message's payload to
  // on_message(payload) and answers server PINGs. False when the connection failed.
  template <class OnMessage>
  bool poll(int timeout_ms, OnMessage&& on_message, std::string& error) {
    if (!fill(timeout_ms, error)) return false;
    return parse(on_message, error);
  }

  // Answers a server PING without waiting (a publisher that never reads still must).
  bool service(std::string& error);

 private:
  bool fill(int timeout_ms, std::string& error);
  // Control lines other than MSG/HMSG: PING, PONG, +OK, -ERR, INFO.
  bool control(std::string_view line, std::string& error);

  template <class OnMessage>
  bool parse(OnMessage& on_message, std::string& error);

  int fd_ = -1;
  std::vector<char> buf_ = std::vector<char>(1 << 20);
  size_t begin_ = 0, end_ = 0;  // unparsed bytes are buf_[begin_, end_)
  uint64_t pongs_ = 0;
};

// Parses "MSG <subject> <sid> [reply] <bytes>" or "HMSG <subject> <sid> [reply] <hdr> <total>":
// the payload length and the header length to skip.
bool parse_msg_line(std::string_view line, size_t& header_bytes, size_t& total_bytes);

template <class OnMessage>
bool WireConnection::parse(OnMessage& on_message, std::string& error) {
  for (;;) {
    const char* base = buf_.data() + begin_;
    size_t avail = end_ - begin_;
    const void* cr = avail > 1 ? ::memchr(base, '\r', avail - 1) : nullptr;
    if (cr == nullptr) break;
    size_t line_len = static_cast<size_t>(static_cast<const char*>(cr) - base);
    std::string_view line(base, line_len);
    if (line.starts_with("MSG ") || line.starts_with("HMSG ")) {
      size_t hdr = 0, total = 0;
      if (!parse_msg_line(line, hdr, total) || hdr > total) {
        error = "malformed message line: " + std::string(line.substr(0, 80));
        return false;
      }
      size_t need = line_len + 2 + total + 2;
      if (avail < need) {
        if (need > buf_.size()) buf_.resize(need * 2);
        break;
      }
      on_message(std::string_view(base + line_len + 2 + hdr, total - hdr));
      begin_ += need;
    } else {
      if (!control(line, error)) return false;
      begin_ += line_len + 2;
    }
  }
  if (begin_ == end_) {
    begin_ = end_ = 0;
  } else if (begin_ > buf_.size() / 2) {
    ::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  return true;
}

}  // namespace switchboard::bench
