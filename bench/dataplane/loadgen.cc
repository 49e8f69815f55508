// switchboard-bench-loadgen: drives one relay (or none) on a NATS server and measures it.
//
//   switchboard-bench-loadgen run --nats URL --publish SUBJ --receive SUBJ --size BYTES
//       --system ID [--rep N] [--expect all|half] [--pid PID] [--server-pid PID]
//       [--seconds S] [--warmup S] [--latency-seconds S] [--window EVENTS]
//       [--baseline-subject SUBJ] [--no-latency] [--rate EVENTS_PER_S] [--rates R,R,...]
//   switchboard-bench-loadgen stream --nats URL --name STREAM --subject SUBJ [--delete]
//   switchboard-bench-loadgen event --size BYTES
//
// `run` prints one JSON object (see docs/benchmarks.md, "Data plane"):
//  1. probe: publishes until the first event comes out (the relay is up and subscribed);
//  2. throughput: publishes as fast as the relay takes events, never more than --window
//     events ahead of the last one that came out, so nothing queues without bound and no
//     one is cut off as a slow consumer; after --warmup, counts events in (processed) and
//     out per second for --seconds, and the CPU time of --pid and --server-pid;
//  3. latency: publishes at half the rate just measured (or --rate), each event stamped
//     with its send time, and records (receive time - send time) of every event for
//     --latency-seconds;
//  4. baseline: the same rate straight to --baseline-subject, which the receiver also
//     gets, with no relay in between: what the relay adds is the difference; with
//     --rates, phases 3 and 4 again at each of those fixed rates ("ladder");
//  5. the peak resident memory (VmHWM) of --pid.
// `stream` makes a fresh file-store stream (deleting an old one of that name); `event`
// prints one event (for `nats bench --payload`, so that it sends the same bytes).
#include <nats/nats.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/dataplane/event.h"
#include "bench/dataplane/wire.h"

namespace switchboard::bench {
namespace {

int usage() {
  std::cerr << "usage: switchboard-bench-loadgen run --nats URL --publish SUBJ --receive SUBJ --size BYTES\n"
               "           --system ID [--rep N] [--expect all|half] [--pid PID] [--server-pid PID]\n"
               "           [--seconds S] [--warmup S] [--latency-seconds S] [--window EVENTS]\n"
               "           [--baseline-subject SUBJ] [--no-latency] [--rate EVENTS_PER_S] [--rates R,R,...]\n"
               "       switchboard-bench-loadgen stream --nats URL --name STREAM --subject SUBJ [--delete]\n"
               "       switchboard-bench-loadgen event --size BYTES\n";
  return 2;
}

// ---- process accounting -------------------------------------------------------------

// utime + stime of a whole process (all threads), in seconds; -1 when it cannot be read.
double process_cpu_seconds(long pid) {
  if (pid <= 0) return -1;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // The command name may hold spaces and parentheses: fields are counted after the last ')'.
  size_t close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; rest >> field; ++i) {  // field 3 is the state
    if (i == 14) utime = std::stoull(field);
    if (i == 15) {
      stime = std::stoull(field);
      return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
    }
  }
  return -1;
}

double self_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

// Peak resident set size (VmHWM) in KiB; -1 when unknown.
long peak_rss_kib(long pid) {
  if (pid <= 0) return -1;
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

// ---- the receiving side -------------------------------------------------------------

struct Receiver {
  WireConnection conn;
  std::atomic<int64_t> last_seq{-1};  // highest sequence number seen
  std::atomic<uint64_t> received{0};
  std::atomic<uint64_t> unparsed{0}, out_of_order{0};
  // Latency is recorded for events whose sequence number is in [lat_lo, lat_hi).
  std::atomic<uint64_t> lat_lo{UINT64_MAX}, lat_hi{UINT64_MAX};
  std::mutex mu;
  std::vector<int64_t> samples;  // nanoseconds
  std::atomic<bool> stop{false};
  std::string error;  // set before the thread ends on a failure
  std::atomic<bool> failed{false};

  void on_message(std::string_view payload) {
    uint64_t seq = 0;
    int64_t ts = 0;
    if (!read_event(payload, seq, ts)) {
      unparsed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    received.fetch_add(1, std::memory_order_relaxed);
    int64_t s = static_cast<int64_t>(seq);
    if (s > last_seq.load(std::memory_order_relaxed)) {
      last_seq.store(s, std::memory_order_release);
    } else {
      out_of_order.fetch_add(1, std::memory_order_relaxed);
    }
    if (seq >= lat_lo.load(std::memory_order_acquire) && seq < lat_hi.load(std::memory_order_acquire)) {
      int64_t now = monotonic_ns();
      std::lock_guard lock(mu);
      samples.push_back(now - ts);
    }
  }

  void loop() {
    auto handler = [this](std::string_view p) { on_message(p); };
    std::string err;
    while (!stop.load(std::memory_order_relaxed)) {
      if (!conn.poll(100, handler, err)) {
        error = err;
        failed = true;
        return;
      }
    }
  }
};

// ---- the publishing side ------------------------------------------------------------

struct Options {
  std::string nats, publish, receive, system, expect = "all", baseline_subject;
  size_t size = 200;
  int rep = 1;
  long pid = 0, server_pid = 0;
  double seconds = 5, warmup = 1, latency_seconds = 5;
  double rate = 0;  // latency phases: 0 means half the measured throughput
  std::vector<double> rates;  // more latency phases at these fixed rates (--rates)
  uint64_t window = 16384;
  bool latency = true;
};

struct Publisher {
  WireConnection conn;
  std::string buf;
  uint64_t next_seq = 0;
  size_t size = 0;
  int batches = 0;

  // Writes n events to `subject`, stamped with the current time.
  bool publish(const std::string& subject, uint64_t n, std::string& error) {
    buf.clear();
    std::string head = "PUB " + subject + " " + std::to_string(size) + "\r\n";
    int64_t ts = monotonic_ns();
    for (uint64_t i = 0; i < n; ++i) {
      buf.append(head);
      append_event(buf, next_seq++, ts, size);
      buf.append("\r\n");
    }
    if (!conn.write_all(buf, error)) return false;
    // The server may PING an idle reader; answer now and then.
    if (++batches % 64 == 0 && !conn.service(error)) return false;
    return true;
  }
};

void sleep_until_ns(int64_t t) {
  timespec ts{static_cast<time_t>(t / 1'000'000'000), static_cast<long>(t % 1'000'000'000)};
  while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

void sleep_ns(int64_t ns) { sleep_until_ns(monotonic_ns() + ns); }

struct Latency {
  double rate = 0;
  uint64_t expected = 0, samples = 0;
  std::vector<std::pair<double, double>> spectrum;  // quantile, microseconds
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;
};

constexpr double kQuantiles[] = {0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999};

Latency summarize(std::vector<int64_t> ns, double rate, uint64_t expected) {
  Latency l;
  l.rate = rate;
  l.expected = expected;
  l.samples = ns.size();
  if (ns.empty()) return l;
  std::sort(ns.begin(), ns.end());
  auto q = [&ns](double p) {
    size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(ns.size())));
    return static_cast<double>(ns[std::clamp<size_t>(i, 1, ns.size()) - 1]) / 1000.0;
  };
  for (double p : kQuantiles) l.spectrum.emplace_back(p, q(p));
  l.p50 = q(0.5);
  l.p90 = q(0.9);
  l.p99 = q(0.99);
  l.p999 = q(0.999);
  l.max = static_cast<double>(ns.back()) / 1000.0;
  double sum = 0;
  for (int64_t v : ns) sum += static_cast<double>(v);
  l.mean = sum / static_cast<double>(ns.size()) / 1000.0;
  return l;
}

class Run {
 public:
  explicit Run(Options o) : o_(std::move(o)) {}

  bool run(std::string& json, std::string& error);

 private:
  bool expect_half() const { return o_.expect == "half"; }
  // Events the relay has finished with: everything up to the last one that came out.
  uint64_t processed() const { return static_cast<uint64_t>(rx_.last_seq.load(std::memory_order_acquire) + 1); }
  bool receiver_ok(std::string& error) const {
    if (!rx_.failed) return true;
    error = "receiver: " + rx_.error;
    return false;
  }
  bool probe(std::string& error);
  bool throughput(std::string& error);
  bool wait_processed(uint64_t upto, double timeout_s, std::string& error);
  bool latency(const std::string& subject, bool half, double rate, Latency& out, std::string& error);

  Options o_;
  Receiver rx_;
  Publisher pub_;
  std::thread rx_thread_;
  // Results.
  double seconds_ = 0, in_per_s_ = 0, out_per_s_ = 0;
  uint64_t events_in_ = 0, events_out_ = 0;
  double cpu_ = -1, server_cpu_ = -1, self_cpu_ = 0;
  Latency lat_, base_;
  struct Step {
    Latency latency, baseline;
  };
  std::vector<Step> ladder_;  // the --rates phases, in order
};

bool Run::probe(std::string& error) {
  auto deadline = monotonic_ns() + 60'000'000'000LL;
  while (rx_.received.load() == 0) {
    if (!receiver_ok(error)) return false;
    if (monotonic_ns() > deadline) {
      error = "nothing came out of the relay within 60 s of publishing to " + o_.publish;
      return false;
    }
    if (!pub_.publish(o_.publish, 2, error)) return false;
    sleep_ns(20'000'000);
  }
  return wait_processed(pub_.next_seq - 1, 30, error);
}

bool Run::throughput(std::string& error) {
  const uint64_t max_batch = std::max<uint64_t>(1, std::min<uint64_t>(512, (256 * 1024) / o_.size));
  int64_t start = monotonic_ns();
  int64_t t_measure = start + static_cast<int64_t>(o_.warmup * 1e9);
  int64_t t_end = t_measure + static_cast<int64_t>(o_.seconds * 1e9);
  bool measuring = false;
  uint64_t in0 = 0, out0 = 0;
  int64_t t0 = 0;
  double cpu0 = -1, srv0 = -1, self0 = 0;
  uint64_t last_progress_seq = processed();
  int64_t last_progress_at = start;
  for (;;) {
    if (!receiver_ok(error)) return false;
    int64_t now = monotonic_ns();
    if (!measuring && now >= t_measure) {
      measuring = true;
      t0 = now;
      in0 = processed();
      out0 = rx_.received.load();
      cpu0 = process_cpu_seconds(o_.pid);
      srv0 = process_cpu_seconds(o_.server_pid);
      self0 = self_cpu_seconds();
    }
    if (now >= t_end) {
      seconds_ = static_cast<double>(now - t0) / 1e9;
      events_in_ = processed() - in0;
      events_out_ = rx_.received.load() - out0;
      if (cpu0 >= 0) cpu_ = process_cpu_seconds(o_.pid) - cpu0;
      if (srv0 >= 0) server_cpu_ = process_cpu_seconds(o_.server_pid) - srv0;
      self_cpu_ = self_cpu_seconds() - self0;
      in_per_s_ = static_cast<double>(events_in_) / seconds_;
      out_per_s_ = static_cast<double>(events_out_) / seconds_;
      return true;
    }
    uint64_t done = processed();
    if (done != last_progress_seq) {
      last_progress_seq = done;
      last_progress_at = now;
    } else if (now - last_progress_at > 15'000'000'000LL) {
      error = "the relay stopped forwarding (no event out for 15 s)";
      return false;
    }
    uint64_t inflight = pub_.next_seq - done;
    if (inflight >= o_.window) {
      sleep_ns(50'000);
      continue;
    }
    if (!pub_.publish(o_.publish, std::min(max_batch, o_.window - inflight), error)) return false;
  }
}

bool Run::wait_processed(uint64_t upto, double timeout_s, std::string& error) {
  // With half the events filtered, the last one out may be the one before `upto`.
  if (expect_half() && upto > 0 && !passes_filter(upto)) --upto;
  int64_t deadline = monotonic_ns() + static_cast<int64_t>(timeout_s * 1e9);
  while (rx_.last_seq.load() < static_cast<int64_t>(upto)) {
    if (!receiver_ok(error)) return false;
    if (monotonic_ns() > deadline) {
      error = "events still in the relay " + std::to_string(timeout_s) + " s after the last was sent (last out " +
              std::to_string(rx_.last_seq.load()) + ", last sent " + std::to_string(upto) + ")";
      return false;
    }
    sleep_ns(1'000'000);
  }
  return true;
}

bool Run::latency(const std::string& subject, bool half, double rate, Latency& out, std::string& error) {
  {
    std::lock_guard lock(rx_.mu);
    rx_.samples.clear();
    rx_.samples.reserve(static_cast<size_t>(rate * o_.latency_seconds * 1.1) + 1024);
  }
  rx_.lat_hi.store(UINT64_MAX);
  const int64_t interval = static_cast<int64_t>(1e9 / rate);
  int64_t start = monotonic_ns();
  uint64_t first = pub_.next_seq;
  // The relay is warm from the throughput phase; this only settles the pace.
  int64_t t_measure = start + static_cast<int64_t>(std::min(o_.warmup, 0.5) * 1e9);
  int64_t t_end = t_measure + static_cast<int64_t>(o_.latency_seconds * 1e9);
  uint64_t lo = UINT64_MAX;
  for (;;) {
    if (!receiver_ok(error)) return false;
    int64_t now = monotonic_ns();
    if (lo == UINT64_MAX && now >= t_measure) {
      lo = pub_.next_seq;
      rx_.lat_lo.store(lo, std::memory_order_release);
    }
    if (now >= t_end) break;
    // Event k of this phase is due at start + k / rate.
    uint64_t due = first + static_cast<uint64_t>(static_cast<double>(now - start) * rate / 1e9) + 1;
    if (due > pub_.next_seq) {
      if (!pub_.publish(subject, std::min<uint64_t>(due - pub_.next_seq, 512), error)) return false;
      continue;
    }
    sleep_until_ns(start + static_cast<int64_t>(pub_.next_seq - first) * interval);
  }
  uint64_t hi = pub_.next_seq;
  rx_.lat_hi.store(hi, std::memory_order_release);
  uint64_t expected = 0;
  for (uint64_t s = lo; s < hi; ++s) expected += (!half || passes_filter(s)) ? 1 : 0;
  // Late events still count; lost ones show as samples < expected.
  std::string late;
  if (!wait_processed(hi - 1, 10, late)) std::cerr << "loadgen: " << late << "\n";
  std::vector<int64_t> ns;
  {
    std::lock_guard lock(rx_.mu);
    ns.swap(rx_.samples);
  }
  rx_.lat_lo.store(UINT64_MAX);
  out = summarize(std::move(ns), rate, expected);
  return true;
}

std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  char b[64];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

std::string latency_json(const Latency& l) {
  std::string s = "{\"rate\":" + num(l.rate) + ",\"expected\":" + std::to_string(l.expected) +
                  ",\"samples\":" + std::to_string(l.samples) + ",\"p50_us\":" + num(l.p50) +
                  ",\"p90_us\":" + num(l.p90) + ",\"p99_us\":" + num(l.p99) + ",\"p999_us\":" + num(l.p999) +
                  ",\"max_us\":" + num(l.max) + ",\"mean_us\":" + num(l.mean) + ",\"spectrum\":[";
  for (size_t i = 0; i < l.spectrum.size(); ++i) {
    if (i) s += ',';
    s += "[" + num(l.spectrum[i].first) + "," + num(l.spectrum[i].second) + "]";
  }
  return s + "]}";
}

bool Run::run(std::string& json, std::string& error) {
  // Sleeps of a few microseconds must not be stretched to the default 50 µs timer slack.
  ::prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  pub_.size = o_.size;
  if (!rx_.conn.connect(o_.nats, error) || !rx_.conn.subscribe(o_.receive, 1, error)) return false;
  if (!pub_.conn.connect(o_.nats, error)) return false;
  rx_thread_ = std::thread([this] { rx_.loop(); });
  struct Join {
    Run* r;
    ~Join() {
      r->rx_.stop = true;
      if (r->rx_thread_.joinable()) r->rx_thread_.join();
    }
  } join{this};

  if (!probe(error) || !throughput(error)) return false;
  // Let the relay empty before the paced phases, so they start from an idle system.
  if (!wait_processed(pub_.next_seq - 1, 30, error)) return false;
  if (o_.latency && in_per_s_ > 0) {
    double rate = o_.rate > 0 ? o_.rate : in_per_s_ / 2;
    if (!latency(o_.publish, expect_half(), rate, lat_, error)) return false;
    if (!o_.baseline_subject.empty() && !latency(o_.baseline_subject, false, rate, base_, error)) return false;
    // The same at fixed rates, where a small machine is not saturated by the load
    // generator, the server and the relay together: what the relay itself adds.
    for (double r : o_.rates) {
      Step step;
      if (!latency(o_.publish, expect_half(), r, step.latency, error)) return false;
      if (!o_.baseline_subject.empty() && !latency(o_.baseline_subject, false, r, step.baseline, error)) return false;
      ladder_.push_back(std::move(step));
    }
  }
  auto per_million = [this](double cpu) { return cpu < 0 || events_in_ == 0 ? NAN : cpu / static_cast<double>(events_in_) * 1e6; };
  std::string s = "{\"system\":\"" + o_.system + "\",\"size\":" + std::to_string(o_.size) +
                  ",\"rep\":" + std::to_string(o_.rep) + ",\"ok\":true,\"seconds\":" + num(seconds_) +
                  ",\"events_in\":" + std::to_string(events_in_) + ",\"events_out\":" + std::to_string(events_out_) +
                  ",\"in_per_s\":" + num(in_per_s_) + ",\"out_per_s\":" + num(out_per_s_) +
                  ",\"window\":" + std::to_string(o_.window) +
                  ",\"cpu_s_per_million\":" + num(per_million(cpu_)) +
                  ",\"server_cpu_s_per_million\":" + num(per_million(server_cpu_)) +
                  ",\"loadgen_cpu_s_per_million\":" + num(per_million(self_cpu_)) +
                  ",\"vmhwm_kib\":" + std::to_string(peak_rss_kib(o_.pid)) +
                  ",\"unparsed\":" + std::to_string(rx_.unparsed.load()) +
                  ",\"out_of_order\":" + std::to_string(rx_.out_of_order.load());
  if (o_.latency) s += ",\"latency\":" + latency_json(lat_);
  if (o_.latency && !o_.baseline_subject.empty()) s += ",\"baseline\":" + latency_json(base_);
  if (!ladder_.empty()) {
    s += ",\"ladder\":[";
    for (size_t i = 0; i < ladder_.size(); ++i) {
      s += std::string(i ? "," : "") + "{\"latency\":" + latency_json(ladder_[i].latency);
      if (!o_.baseline_subject.empty()) s += ",\"baseline\":" + latency_json(ladder_[i].baseline);
      s += "}";
    }
    s += "]";
  }
  json = s + "}";
  return true;
}

// ---- JetStream stream setup (cnats: request/reply and JSON are not worth re-writing) ----

int stream_command(const std::map<std::string, std::string>& flags, bool delete_only) {
  auto get = [&flags](const char* k) {
    auto it = flags.find(k);
    return it == flags.end() ? std::string() : it->second;
  };
  std::string url = get("--nats"), name = get("--name"), subject = get("--subject");
  if (url.empty() || name.empty() || (subject.empty() && !delete_only)) return usage();
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  natsStatus s = natsConnection_ConnectTo(&nc, url.c_str());
  if (s == NATS_OK) s = natsConnection_JetStream(&js, nc, nullptr);
  if (s != NATS_OK) {
    std::cerr << "loadgen: connect " << url << ": " << natsStatus_GetText(s) << "\n";
    return 1;
  }
  jsErrCode code = static_cast<jsErrCode>(0);
  js_DeleteStream(js, name.c_str(), nullptr, &code);  // absent is fine
  int rc = 0;
  if (!delete_only) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = name.c_str();
    const char* subjects[] = {subject.c_str()};
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Retention = js_LimitsPolicy;
    cfg.MaxBytes = 4LL << 30;
    cfg.Discard = js_DiscardOld;
    jsStreamInfo* si = nullptr;
    s = js_AddStream(&si, js, &cfg, nullptr, &code);
    jsStreamInfo_Destroy(si);
    if (s != NATS_OK) {
      std::cerr << "loadgen: create stream " << name << ": " << natsStatus_GetText(s) << " (JetStream error "
                << static_cast<int>(code) << ")\n";
      rc = 1;
    }
  }
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  return rc;
}

}  // namespace
}  // namespace switchboard::bench

int main(int argc, char** argv) {
  using namespace switchboard::bench;
  if (argc < 2) return usage();
  std::string cmd = argv[1];
  std::map<std::string, std::string> flags;
  std::vector<std::string> switches;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--no-latency" || a == "--delete") {
      switches.push_back(a);
    } else if (a.rfind("--", 0) == 0 && i + 1 < argc) {
      flags[a] = argv[++i];
    } else {
      std::cerr << "loadgen: unexpected argument '" << a << "'\n";
      return usage();
    }
  }
  auto has = [&switches](const char* s) { return std::find(switches.begin(), switches.end(), s) != switches.end(); };
  if (cmd == "stream") {
    int rc = stream_command(flags, has("--delete"));
    nats_Close();
    return rc;
  }
  if (cmd == "event") {
    size_t size = flags.count("--size") ? std::strtoul(flags["--size"].c_str(), nullptr, 10) : 0;
    if (size < min_event_size()) {
      std::cerr << "loadgen: --size must be at least " << min_event_size() << " bytes\n";
      return 2;
    }
    std::string e;
    append_event(e, 0, monotonic_ns(), size);
    std::cout << e;
    return 0;
  }
  if (cmd != "run") return usage();
  Options o;
  try {
    for (const auto& [k, v] : flags) {
      if (k == "--nats") o.nats = v;
      else if (k == "--publish") o.publish = v;
      else if (k == "--receive") o.receive = v;
      else if (k == "--system") o.system = v;
      else if (k == "--expect") o.expect = v;
      else if (k == "--baseline-subject") o.baseline_subject = v;
      else if (k == "--size") o.size = std::stoul(v);
      else if (k == "--rep") o.rep = std::stoi(v);
      else if (k == "--pid") o.pid = std::stol(v);
      else if (k == "--server-pid") o.server_pid = std::stol(v);
      else if (k == "--seconds") o.seconds = std::stod(v);
      else if (k == "--warmup") o.warmup = std::stod(v);
      else if (k == "--latency-seconds") o.latency_seconds = std::stod(v);
      else if (k == "--window") o.window = std::stoull(v);
      else if (k == "--rate") o.rate = std::stod(v);
      else if (k == "--rates") {
        std::stringstream list(v);
        std::string item;
        while (std::getline(list, item, ',')) {
          if (!item.empty()) o.rates.push_back(std::stod(item));
        }
      }
      else {
        std::cerr << "loadgen: unknown option '" << k << "'\n";
        return usage();
      }
    }
  } catch (const std::exception&) {
    std::cerr << "loadgen: a numeric option has a value that is not a number\n";
    return 2;
  }
  o.latency = !has("--no-latency");
  if (o.nats.empty() || o.publish.empty() || o.receive.empty() || o.system.empty() ||
      (o.expect != "all" && o.expect != "half") || o.window == 0 || o.seconds <= 0) {
    return usage();
  }
  if (o.size < min_event_size()) {
    std::cerr << "loadgen: --size must be at least " << min_event_size() << " bytes\n";
    return 2;
  }
  std::string json, error;
  Run run(o);
  if (!run.run(json, error)) {
    std::string msg;
    for (char c : error) msg += (c == '"' || c == '\\') ? ' ' : c;
    std::cout << "{\"system\":\"" << o.system << "\",\"size\":" << o.size << ",\"rep\":" << o.rep
              << ",\"ok\":false,\"error\":\"" << msg << "\"}" << std::endl;
    std::cerr << "loadgen: " << o.system << " " << o.size << " B: " << error << "\n";
    return 1;
  }
  std::cout << json << std::endl;
  return 0;
}
