// switchboard-nats: a small NATS client for the demo and the end-to-end tests, speaking the
// same JSON Lines event format as `switchboard-router test`.
//
//   switchboard-nats pub --nats URL [--events FILE] [--interval DURATION]
//   switchboard-nats sub --nats URL --subject S [--subject S...] [--count N] [--timeout DURATION]
//   switchboard-nats free-port
//
// pub reads {"subject", "headers", "data" | "raw"} lines (stdin by default) and publishes
// each; sub prints one such line per message received, until --count messages or
// --timeout of silence.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/json/document.h"
#include "core/route/spec_yaml.h"
#include "router/nats_client.h"

using switchboard::router::NatsClient;
using switchboard::router::NatsConfig;
using switchboard::router::NatsHeaders;
using switchboard::router::NatsMessage;
namespace json = switchboard::json;

namespace {

int usage() {
  std::cerr << "usage: switchboard-nats pub --nats URL [--events FILE] [--interval DURATION]\n"
               "       switchboard-nats sub --nats URL --subject S [--subject S...] [--count N] "
               "[--timeout DURATION]\n";
  return 2;
}

std::string line_for(const NatsMessage& m) {
  std::string out = "{\"subject\":";
  json::append_quoted(out, m.subject);
  out += ",\"headers\":{";
  for (size_t i = 0; i < m.headers->size(); ++i) {
    if (i) out += ',';
    json::append_quoted(out, (*m.headers)[i].first);
    out += ':';
    json::append_quoted(out, (*m.headers)[i].second);
  }
  out += '}';
  json::Document d;
  if (d.parse(m.data)) {
    out += ",\"data\":";
    out += m.data;
  } else {
    out += ",\"raw\":";
    json::append_quoted(out, m.data);
  }
  return out + "}";
}

}  // namespace

// A free port on 127.0.0.1, for scripts that start servers.
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return 1;
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::cout << ntohs(addr.sin_port) << "\n";
  ::close(fd);
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  std::string cmd = argv[1];
  if (cmd == "free-port") return free_port();
  NatsConfig cfg;
  cfg.name = "switchboard-nats";
  std::string events_path;
  std::vector<std::string> subjects;
  int64_t count = -1, timeout_ms = 5000, interval_ms = 0;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return usage();
    std::string v = argv[++i];
    if (a == "--nats") cfg.urls = {v};
    else if (a == "--events") events_path = v;
    else if (a == "--subject") subjects.push_back(v);
    else if (a == "--count") count = std::stoll(v);
    else if (a == "--timeout") {
      if (!switchboard::route::parse_duration_ms(v, timeout_ms)) return usage();
    } else if (a == "--interval") {
      if (!switchboard::route::parse_duration_ms(v, interval_ms)) return usage();
    } else return usage();
  }
  NatsClient nc;
  std::string error;
  if (!nc.connect(cfg, error)) {
    std::cerr << "error: " << error << "\n";
    return 1;
  }
  if (cmd == "pub") {
    std::ifstream file;
    std::istream* in = &std::cin;
    if (!events_path.empty()) {
      file.open(events_path);
      if (!file) {
        std::cerr << "error: cannot read " << events_path << "\n";
        return 1;
      }
      in = &file;
    }
    std::string line;
    int sent = 0, bad = 0;
    while (std::getline(*in, line)) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      json::Document d;
      if (!d.parse(line) || d.node(0).type != json::Type::Object) {
        ++bad;
        continue;
      }
      uint32_t s = d.find_member(0, "subject"), h = d.find_member(0, "headers");
      uint32_t data = d.find_member(0, "data"), raw = d.find_member(0, "raw");
      if (s == 0) {
        ++bad;
        continue;
      }
      NatsHeaders headers;
      if (h != 0 && d.node(h).type == json::Type::Object) {
        uint32_t k = json::Document::first_child(h);
        for (uint32_t n = 0; n < d.node(h).count; ++n) {
          uint32_t v = d.node(k).next;
          headers.emplace_back(d.string_value(k), d.string_value(v));
          k = d.node(v).next;
        }
      }
      std::string payload = raw != 0 ? std::string(d.string_value(raw)) : data != 0 ? std::string(d.raw(data)) : "";
      if (!nc.publish(d.string_value(s), headers, payload, error)) {
        std::cerr << "error: " << error << "\n";
        return 1;
      }
      ++sent;
      if (interval_ms > 0) {
        nc.flush(1000);
        std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
      }
    }
    if (!nc.flush(5000)) {
      std::cerr << "error: could not deliver to the server (not connected?)\n";
      return 1;
    }
    if (bad > 0) std::cerr << bad << " lines were not events\n";
    return bad > 0 ? 1 : 0;
  }
  if (cmd == "sub") {
    if (subjects.empty()) return usage();
    std::mutex mu;
    std::condition_variable cv;
    int64_t received = 0;
    auto last = std::chrono::steady_clock::now();
    for (const auto& s : subjects) {
      if (nc.subscribe(s, "", [&](const NatsMessage& m) {
            std::string text = line_for(m);
            std::lock_guard lock(mu);
            std::cout << text << std::endl;
            ++received;
            last = std::chrono::steady_clock::now();
            cv.notify_all();
          }, error) == 0) {
        std::cerr << "error: " << error << "\n";
        return 1;
      }
    }
    nc.flush(5000);
    std::cerr << "subscribed" << std::endl;
    std::unique_lock lock(mu);
    while (count < 0 || received < count) {
      if (cv.wait_until(lock, last + std::chrono::milliseconds(timeout_ms)) == std::cv_status::timeout &&
          std::chrono::steady_clock::now() >= last + std::chrono::milliseconds(timeout_ms)) {
        break;
      }
    }
    lock.unlock();
    nc.drain(1000);
    return count < 0 || received >= count ? 0 : 1;
  }
  return usage();
}
