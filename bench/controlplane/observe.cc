#include "bench/controlplane/observe.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "core/json/document.h"
#include "tests/e2e/e2e_support.h"

namespace switchboard::bench {

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// ---------------------------------------------------------------------------------------
// HeartbeatLog

HeartbeatLog::HeartbeatLog(router::NatsClient& nats, const std::string& subject) : nats_(nats) {
  std::string error;
  sub_ = nats.subscribe(
      subject, "",
      [this](const router::NatsMessage& m) {
        const auto at = Clock::now();
        e2e::Heartbeat h = e2e::parse_heartbeat(std::string(m.data));
        std::lock_guard lock(mu_);
        beats_.push_back(Beat{at, h.pod, h.state, h.hash, h.generation});
        cv_.notify_all();
      },
      error);
  if (sub_ == 0) throw std::runtime_error("cannot subscribe to " + subject + ": " + error);
  nats.flush(5000);
}

HeartbeatLog::~HeartbeatLog() { nats_.unsubscribe(sub_); }

std::optional<Clock::time_point> HeartbeatLog::wait_all(const std::set<std::string>& pods, Clock::time_point since,
                                                        const Want& want, Clock::time_point deadline) {
  std::unique_lock lock(mu_);
  size_t scanned = 0;
  std::map<std::string, Clock::time_point> first;
  // Heartbeats arrive in time order; scan each once.
  size_t start = 0;
  while (start < beats_.size() && beats_[start].at < since) ++start;
  scanned = start;
  while (true) {
    for (; scanned < beats_.size(); ++scanned) {
      const Beat& b = beats_[scanned];
      if (b.at >= since && pods.count(b.pod) && !first.count(b.pod) && want(b)) first[b.pod] = b.at;
    }
    if (first.size() == pods.size()) {
      Clock::time_point last = since;
      for (const auto& [pod, at] : first) last = std::max(last, at);
      return last;
    }
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && Clock::now() >= deadline) {
      // One last look at what arrived with the timeout.
      for (; scanned < beats_.size(); ++scanned) {
        const Beat& b = beats_[scanned];
        if (b.at >= since && pods.count(b.pod) && !first.count(b.pod) && want(b)) first[b.pod] = b.at;
      }
      if (first.size() != pods.size()) return std::nullopt;
    }
  }
}

std::map<std::string, HeartbeatLog::Beat> HeartbeatLog::latest() const {
  std::lock_guard lock(mu_);
  std::map<std::string, Beat> out;
  for (const auto& b : beats_) out[b.pod] = b;
  return out;
}

// ---------------------------------------------------------------------------------------
// TableConfigMapLog

TableConfigMapLog::TableConfigMapLog(kube::Client& client, const std::string& ns, const std::string& name) {
  kube::ListOptions lo;
  lo.field_selector = "metadata.name=" + name;
  const std::string key = ns + "/" + name;
  informer_ = std::make_unique<kube::Informer>(client, kube::resources::kConfigMaps, ns, lo, [this, key](const std::string& k) {
    const auto at = Clock::now();
    if (k != key) return;
    std::optional<kube::Object> cm = informer_->get(k);
    std::string hash;
    if (cm && cm->has_object_field("metadata") && cm->at("metadata").has_object_field("annotations") &&
        cm->at("metadata").at("annotations").has_string_field("switchboard.dev/hash")) {
      hash = cm->at("metadata").at("annotations").at("switchboard.dev/hash").as_string();
    }
    std::lock_guard lock(mu_);
    if (versions_.empty() || versions_.back().second != hash) versions_.emplace_back(at, hash);
    cv_.notify_all();
  });
  informer_->start();
}

TableConfigMapLog::~TableConfigMapLog() { informer_->stop(); }

std::optional<Clock::time_point> TableConfigMapLog::wait(Clock::time_point since,
                                                         const std::function<bool(const std::string&)>& want,
                                                         Clock::time_point deadline) {
  std::unique_lock lock(mu_);
  std::optional<Clock::time_point> found;
  cv_.wait_until(lock, deadline, [&] {
    for (const auto& [at, hash] : versions_) {
      if (at >= since && want(hash)) {
        found = at;
        return true;
      }
    }
    return false;
  });
  return found;
}

std::string TableConfigMapLog::current_hash() const {
  std::lock_guard lock(mu_);
  return versions_.empty() ? std::string() : versions_.back().second;
}

// ---------------------------------------------------------------------------------------
// RouteReadiness

namespace {

int64_t int_field(const kube::Object& o, std::initializer_list<const char*> path) {
  const kube::Object* v = &o;
  for (const char* p : path) {
    if (!v->is_object() || !v->has_field(p)) return -1;
    v = &v->at(p);
  }
  return v->is_integer() ? v->as_number().to_int64() : -1;
}

bool ready_for_generation(const kube::Object& o, int64_t required) {
  const int64_t generation = int_field(o, {"metadata", "generation"});
  if (generation < required || int_field(o, {"status", "observedGeneration"}) != generation) return false;
  if (!o.has_object_field("status") || !o.at("status").has_array_field("conditions")) return false;
  for (const auto& c : o.at("status").at("conditions").as_array()) {
    if (c.has_string_field("type") && c.at("type").as_string() == "Ready") {
      if (c.has_integer_field("observedGeneration") && c.at("observedGeneration").as_number().to_int64() != generation) {
        return false;
      }
      return c.has_string_field("status") && c.at("status").as_string() == "True";
    }
  }
  return false;
}

}  // namespace

RouteReadiness::RouteReadiness(kube::Client& client, const std::string& ns, size_t expected)
    : ns_(ns), expected_(expected) {
  informer_ = std::make_unique<kube::Informer>(client, kube::resources::kEventRoutes, ns, kube::ListOptions{},
                                               [this](const std::string& key) { changed(key); });
  informer_->start();
}

RouteReadiness::~RouteReadiness() { informer_->stop(); }

bool RouteReadiness::wait_synced(std::chrono::milliseconds timeout) { return informer_->wait_synced(timeout.count()); }

void RouteReadiness::changed(const std::string& key, bool watched) {
  // One at a time, so that an older copy of a route never overwrites a newer verdict.
  std::lock_guard serial(changed_mu_);
  const auto at = Clock::now();
  const std::string name = key.substr(key.find('/') + 1);
  std::optional<kube::Object> obj = informer_->get(key);
  std::lock_guard lock(mu_);
  auto req = required_.find(name);
  const bool now_ready = obj && ready_for_generation(*obj, req == required_.end() ? 0 : req->second);
  bool& was = ready_[name];
  if (now_ready == was) return;
  was = now_ready;
  if (now_ready) {
    ready_since_[name] = at;
    if (++ready_count_ == expected_) all_ready_at_.push_back(at);
  } else {
    --ready_count_;
    if (watched) ++flips_;
  }
  cv_.notify_all();
}

void RouteReadiness::require_generation(const std::string& name, int64_t generation) {
  {
    std::lock_guard lock(mu_);
    required_[name] = generation;
  }
  changed(ns_ + "/" + name, false);  // re-evaluated against the cache
}

std::optional<RouteReadiness::AllReady> RouteReadiness::wait_all(Clock::time_point since, Clock::time_point deadline) {
  std::unique_lock lock(mu_);
  auto done = [&] {
    return ready_count_ == expected_ && !all_ready_at_.empty() && all_ready_at_.back() >= since;
  };
  if (!cv_.wait_until(lock, deadline, done)) return std::nullopt;
  AllReady out;
  out.last = all_ready_at_.back();
  out.first = out.last;
  for (auto it = all_ready_at_.rbegin(); it != all_ready_at_.rend() && *it >= since; ++it) out.first = *it;
  return out;
}

bool RouteReadiness::all_ready() const {
  std::lock_guard lock(mu_);
  return ready_count_ == expected_;
}

size_t RouteReadiness::ready_count() const {
  std::lock_guard lock(mu_);
  return ready_count_;
}

std::optional<Clock::time_point> RouteReadiness::wait_route(const std::string& name, Clock::time_point since,
                                                            Clock::time_point deadline) {
  std::unique_lock lock(mu_);
  auto done = [&] {
    auto r = ready_.find(name);
    auto s = ready_since_.find(name);
    return r != ready_.end() && r->second && s != ready_since_.end() && s->second >= since;
  };
  if (!cv_.wait_until(lock, deadline, done)) return std::nullopt;
  return ready_since_[name];
}

// ---------------------------------------------------------------------------------------
// Prometheus text and the controller's metrics

std::vector<Series> parse_prometheus(const std::string& page) {
  std::vector<Series> out;
  std::istringstream in(page);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    Series s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        size_t eq = line.find('=', i);
        if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') break;
        std::string key = line.substr(i, eq - i);
        std::string value;
        size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\' && j + 1 < line.size()) ++j;
          value += line[j];
        }
        s.labels[key] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      ++i;  // '}'
    }
    while (i < line.size() && line[i] == ' ') ++i;
    size_t end = line.find(' ', i);
    try {
      s.value = std::stod(line.substr(i, end == std::string::npos ? std::string::npos : end - i));
    } catch (const std::exception&) {
      continue;
    }
    out.push_back(std::move(s));
  }
  return out;
}

double ControllerScraper::Sample::total_reconciles() const {
  double total = 0;
  for (const auto& [k, v] : reconciles) total += v;
  return total;
}

double ControllerScraper::Sample::total_depth() const {
  double total = 0;
  for (const auto& [k, v] : depth) total += v;
  return total;
}

ControllerScraper::ControllerScraper(int port, std::chrono::milliseconds interval)
    : port_(port), interval_(interval), last_activity_(Clock::now()) {
  thread_ = std::thread([this] { run(); });
}

ControllerScraper::~ControllerScraper() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

ControllerScraper::Sample ControllerScraper::scrape_now() const {
  Sample s;
  s.at = Clock::now();
  e2e::HttpReply r = e2e::http_get(port_, "/metrics");
  if (r.status != 200) return s;
  s.ok = true;
  for (const Series& m : parse_prometheus(r.body)) {
    auto kind = m.labels.find("kind");
    if (kind == m.labels.end()) continue;
    if (m.name == "switchboard_controller_workqueue_depth") {
      s.depth[kind->second] = m.value;
    } else if (m.name == "switchboard_controller_reconcile_total") {
      auto result = m.labels.find("result");
      if (result != m.labels.end()) s.reconciles[{kind->second, result->second}] = m.value;
    } else if (m.name == "switchboard_controller_reconcile_duration_seconds_sum") {
      s.duration_sum[kind->second] = m.value;
    } else if (m.name == "switchboard_controller_reconcile_duration_seconds_count") {
      s.duration_count[kind->second] = m.value;
    } else if (m.name == "switchboard_controller_workqueue_latency_seconds_sum") {
      s.wait_sum[kind->second] = m.value;
    } else if (m.name == "switchboard_controller_workqueue_latency_seconds_count") {
      s.wait_count[kind->second] = m.value;
    }
  }
  return s;
}

void ControllerScraper::run() {
  while (!stop_) {
    Sample s = scrape_now();
    {
      std::lock_guard lock(mu_);
      if (s.ok) {
        const double total = s.total_reconciles();
        if (total != last_total_) {
          last_total_ = total;
          last_activity_ = s.at;
        }
      }
      samples_.push_back(std::move(s));
    }
    std::this_thread::sleep_for(interval_);
  }
}

ControllerScraper::Sample ControllerScraper::last() const {
  std::lock_guard lock(mu_);
  for (auto it = samples_.rbegin(); it != samples_.rend(); ++it) {
    if (it->ok) return *it;
  }
  return Sample{};
}

std::vector<ControllerScraper::Sample> ControllerScraper::between(Clock::time_point from, Clock::time_point to) const {
  std::lock_guard lock(mu_);
  std::vector<Sample> out;
  for (const auto& s : samples_) {
    if (s.ok && s.at >= from && s.at <= to) out.push_back(s);
  }
  return out;
}

Clock::time_point ControllerScraper::last_activity() const {
  std::lock_guard lock(mu_);
  return last_activity_;
}

// ---------------------------------------------------------------------------------------

ProcessStats process_stats(pid_t pid) {
  ProcessStats st;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) st.vm_hwm_kib = std::atoll(line.c_str() + 6);
    if (line.rfind("VmRSS:", 0) == 0) st.vm_rss_kib = std::atoll(line.c_str() + 6);
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces): state is field 3, utime 14,
  // stime 15.
  size_t close = text.rfind(')');
  if (close != std::string::npos) {
    std::istringstream rest(text.substr(close + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::stod(field);
      if (i == 15) stime = std::stod(field);
    }
    st.cpu_seconds = (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
    st.ok = st.vm_hwm_kib > 0;
  }
  return st;
}

std::map<std::string, double> api_request_counts(const std::string& kubectl, const std::string& kubeconfig) {
  std::map<std::string, double> out;
  e2e::CommandResult r = e2e::run_command({kubectl, "--kubeconfig", kubeconfig, "get", "--raw", "/metrics"}, "", {},
                                          std::chrono::seconds(60));
  if (r.status != 0) return out;
  for (const Series& s : parse_prometheus(r.out)) {
    // Watches are counted when they end, mostly kube-apiserver's own: not the work measured.
    if (s.name != "apiserver_request_total" || s.labels.count("verb") == 0 || s.labels.at("verb") == "WATCH") continue;
    auto get = [&](const char* k) {
      auto it = s.labels.find(k);
      return it == s.labels.end() ? std::string() : it->second;
    };
    std::string key = get("verb") + " " + get("resource");
    if (!get("subresource").empty()) key += "/" + get("subresource");
    out[key] += s.value;
  }
  return out;
}

}  // namespace switchboard::bench
