#include "tests/chaos/harness.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/json/document.h"
#include "tests/support/http_probe.h"

namespace switchboard::chaos {

namespace {

std::atomic<bool> g_interrupted{false};

void on_interrupt(int) { g_interrupted.store(true); }

}  // namespace

double since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::string fmt(const char* format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, value);
  return buf;
}

void install_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // A router or server that goes away mid-write must not take the suite with it.
  signal(SIGPIPE, SIG_IGN);
}

bool interrupted() { return g_interrupted.load(); }

bool sleep_for(double seconds) {
  auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < end) {
    if (interrupted()) return false;
    auto left = end - Clock::now();
    std::this_thread::sleep_for(std::min<Clock::duration>(left, std::chrono::milliseconds(50)));
  }
  return !interrupted();
}

bool wait_until(const std::function<bool()>& done, double timeout_s) {
  auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s));
  while (!done()) {
    if (interrupted() || Clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

WorkDir::WorkDir(const std::string& name) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/switchboard-chaos-" + name +
                     "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) != nullptr) path_ = buf.data();
  // Searchable, not readable, by others: pods run as the user of their securityContext.
  if (!path_.empty()) ::chmod(path_.c_str(), 0711);
}

WorkDir::~WorkDir() {
  if (keep_ || path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string nats_server_binary() {
  if (const char* e = std::getenv("SWITCHBOARD_NATS_SERVER")) return e;
  for (const char* p : {"/usr/sbin/nats-server", "/usr/bin/nats-server"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "nats-server";
}

NatsNode::NatsNode(const std::string& dir, const std::string& name)
    : dir_(dir + "/" + name), log_(dir + "/" + name + ".log") {
  std::filesystem::create_directories(dir_);
}

bool NatsNode::start() {
  // The first start picks the port; later starts reuse it, so that clients reconnect to
  // the same address. Another program may take a free port before the first start binds
  // it (pick another), and a port just released may need a moment (wait and retry).
  const bool first = port_ == 0;
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (first) port_ = testing::free_port();
    proc_ = testing::Process({nats_server_binary(), "-a", "127.0.0.1", "-p", std::to_string(port_), "-js", "-sd",
                              dir_},
                             {}, log_);
    if (testing::wait_for_port(port_, 15000) && proc_.running()) return true;
    proc_.stop(2000);
    if (!sleep_for(first ? 0.1 : 1.0)) return false;
  }
  return false;
}

int NatsNode::stop(int sig) {
  proc_.signal(sig);
  int status = proc_.wait(30000);
  if (status == -1) status = proc_.stop(1000);
  return status;
}

RouterNode::RouterNode(std::string bin, std::string pod, std::vector<std::string> args, std::string log_path,
                       std::optional<testing::Credentials> run_as)
    : bin_(std::move(bin)), pod_(std::move(pod)), args_(std::move(args)), log_(std::move(log_path)), run_as_(run_as) {}

void RouterNode::start() {
  metrics_port_ = testing::free_port();
  std::vector<std::string> argv = {bin_, "run", "--pod", pod_, "--metrics-addr",
                                   "127.0.0.1:" + std::to_string(metrics_port_)};
  argv.insert(argv.end(), args_.begin(), args_.end());
  proc_ = testing::Process(argv, {}, log_, run_as_);
  stopped_ = false;
  ++starts_;
}

std::string RouterNode::death_notice() {
  int status = exit_status();
  std::string words = last_words();
  return "exit status " + std::to_string(status) + (status > 128 ? " (signal " + std::to_string(status - 128) + ")" : "") +
         (words.empty() ? "" : ", last words: '" + words + "'") + "; log " + log_;
}

std::string RouterNode::last_words() const {
  std::ifstream in(log_);
  std::string line, words;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] != '{') words = line;
  }
  return words;
}

int RouterNode::stop(int sig, int timeout_ms, int64_t& took_ms) {
  auto t0 = Clock::now();
  stopped_ = true;
  proc_.signal(sig);
  int status = proc_.wait(timeout_ms);
  if (status == -1) {
    proc_.signal(SIGKILL);
    proc_.wait(10000);
    status = -1;  // did not exit in time
  }
  took_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  return status;
}

bool RouterNode::ready() { return testing::http_get(metrics_port_, "/readyz").status == 200; }

std::string RouterNode::metrics() {
  testing::HttpReply r = testing::http_get(metrics_port_, "/metrics");
  return r.status == 200 ? r.body : std::string();
}

int64_t RouterNode::rss_kib() const {
  if (proc_.pid() <= 0) return -1;
  std::ifstream in("/proc/" + std::to_string(proc_.pid()) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return -1;
}

std::optional<double> metric(const std::string& page, const std::string& series) {
  return testing::metric(page, series);
}

bool connect_client(router::NatsClient& nc, const std::string& url, const std::string& name) {
  router::NatsConfig cfg;
  cfg.urls = {url};
  cfg.name = name;
  cfg.reconnect_wait_ms = 100;
  cfg.reconnect_jitter_ms = 100;
  std::string error;
  if (!nc.connect(cfg, error)) {
    std::fprintf(stderr, "chaos: cannot connect %s: %s\n", name.c_str(), error.c_str());
    return false;
  }
  return wait_until([&] { return nc.connected(); }, 30);
}

bool add_stream(router::NatsClient& nc, const StreamConfig& config, std::string& error) {
  std::vector<const char*> subjects;
  for (const auto& s : config.subjects) subjects.push_back(s.c_str());
  for (int attempt = 0; attempt < 50; ++attempt) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = config.name.c_str();
    cfg.Subjects = subjects.data();
    cfg.SubjectsLen = static_cast<int>(subjects.size());
    cfg.Storage = js_FileStorage;
    cfg.Duplicates = config.duplicates_s * 1'000'000'000LL;
    jsStreamInfo* si = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    jsCtx* js = nc.jetstream();
    natsStatus s = js == nullptr ? NATS_ERR : js_AddStream(&si, js, &cfg, nullptr, &code);
    jsStreamInfo_Destroy(si);
    if (s == NATS_OK) return true;
    error = std::string("add stream ") + config.name + ": " + natsStatus_GetText(s) + " (" +
            std::to_string(static_cast<int>(code)) + ")";
    if (!sleep_for(0.2)) return false;
  }
  return false;
}

std::optional<StreamState> stream_state(router::NatsClient& nc, const std::string& stream) {
  jsCtx* js = nc.jetstream();
  if (js == nullptr) return std::nullopt;
  jsStreamInfo* si = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = 3000;
  if (js_GetStreamInfo(&si, js, stream.c_str(), &jo, &code) != NATS_OK || si == nullptr) {
    jsStreamInfo_Destroy(si);
    return std::nullopt;
  }
  StreamState st{si->State.Msgs, si->State.Bytes, si->State.FirstSeq, si->State.LastSeq};
  jsStreamInfo_Destroy(si);
  return st;
}

std::optional<ConsumerState> consumer_state(router::NatsClient& nc, const std::string& stream,
                                            const std::string& durable) {
  jsCtx* js = nc.jetstream();
  if (js == nullptr) return std::nullopt;
  jsConsumerInfo* ci = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = 3000;
  if (js_GetConsumerInfo(&ci, js, stream.c_str(), durable.c_str(), &jo, &code) != NATS_OK || ci == nullptr) {
    jsConsumerInfo_Destroy(ci);
    return std::nullopt;
  }
  ConsumerState st;
  st.ack_pending = ci->NumAckPending;
  st.pending = ci->NumPending;
  st.redelivered = static_cast<uint64_t>(ci->NumRedelivered);
  st.delivered_stream_seq = ci->Delivered.Stream;
  st.ack_floor_stream_seq = ci->AckFloor.Stream;
  jsConsumerInfo_Destroy(ci);
  return st;
}

bool read_stream(router::NatsClient& nc, const std::string& stream,
                 const std::function<void(const StoredMessage&)>& each, std::string& error) {
  auto st = stream_state(nc, stream);
  if (!st) {
    error = "no stream info for " + stream;
    return false;
  }
  if (st->msgs == 0) return true;
  jsCtx* js = nc.jetstream();
  const std::string durable = "chaos-reader-" + std::to_string(::getpid()) + "-" + std::to_string(std::rand());
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  so.Config.AckPolicy = js_AckNone;
  so.Config.DeliverPolicy = js_DeliverAll;
  natsSubscription* sub = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  // The stream's subjects are not needed: a consumer bound by stream name with no filter
  // sees everything ("" is refused by the client, ">" matches every subject).
  natsStatus s = js_PullSubscribe(&sub, js, ">", durable.c_str(), nullptr, &so, &code);
  if (s != NATS_OK) {
    error = std::string("reader for ") + stream + ": " + natsStatus_GetText(s) + " (" +
            std::to_string(static_cast<int>(code)) + ")";
    return false;
  }
  uint64_t seen = 0;
  int idle = 0;
  while (seen < st->msgs) {
    natsMsgList list{nullptr, 0};
    s = natsSubscription_Fetch(&list, sub, 512, 3000, &code);
    if (s == NATS_TIMEOUT) {
      if (++idle >= 10 || interrupted()) break;
      continue;
    }
    if (s != NATS_OK) {
      natsMsgList_Destroy(&list);
      if (++idle >= 10 || interrupted()) break;
      sleep_for(0.2);
      continue;
    }
    idle = 0;
    for (int i = 0; i < list.Count; ++i) {
      natsMsg* m = list.Msgs[i];
      StoredMessage out;
      jsMsgMetaData* meta = nullptr;
      if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
        out.seq = meta->Sequence.Stream;
        jsMsgMetaData_Destroy(meta);
      }
      router::NatsHeaders headers;
      router::NatsMessage view = router::view_of(m, headers);
      out.subject = std::string(view.subject);
      out.data = std::string(view.data);
      out.headers = std::move(headers);
      each(out);
      ++seen;
      if (out.seq >= st->last_seq) seen = std::max(seen, st->msgs);
    }
    natsMsgList_Destroy(&list);
  }
  natsSubscription_Unsubscribe(sub);  // deletes the reader's consumer
  natsSubscription_Destroy(sub);
  if (seen < st->msgs) {
    error = "read " + std::to_string(seen) + " of " + std::to_string(st->msgs) + " messages of " + stream;
    return false;
  }
  return true;
}

std::string header_value(const router::NatsHeaders& headers, const std::string& key) {
  for (const auto& [k, v] : headers) {
    if (k == key) return v;
  }
  return "";
}

std::string nats_server_version() {
  std::string cmd = nats_server_binary() + " --version 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return "unknown";
  char buf[256] = {};
  std::string out;
  if (std::fgets(buf, sizeof buf, p) != nullptr) out = buf;
  ::pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string machine_json() {
  std::string out = "{";
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  out += "\"host\":";
  json::append_quoted(out, host);
  out += ",\"cores\":" + std::to_string(std::thread::hardware_concurrency());
  long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  out += ",\"memoryMiB\":" + std::to_string(pages / 1024 * page / 1024);
  std::ifstream load("/proc/loadavg");
  double l1 = 0, l5 = 0, l15 = 0;
  load >> l1 >> l5 >> l15;
  char buf[128];
  std::snprintf(buf, sizeof buf, ",\"loadAverage\":[%.2f,%.2f,%.2f]", l1, l5, l15);
  out += buf;
  utsname u{};
  if (::uname(&u) == 0) {
    out += ",\"kernel\":";
    json::append_quoted(out, std::string(u.sysname) + " " + u.release + " " + u.machine);
  }
  std::ifstream cpu("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpu, line)) {
    if (line.rfind("model name", 0) == 0) {
      out += ",\"cpu\":";
      json::append_quoted(out, line.substr(line.find(':') + 2));
      break;
    }
  }
  out += ",\"natsServer\":";
  json::append_quoted(out, nats_server_version());
  out += "}";
  return out;
}

}  // namespace switchboard::chaos
