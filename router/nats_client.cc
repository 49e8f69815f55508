#include "router/nats_client.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "router/thread_name.h"

namespace switchboard::router {

namespace {

using Clock = std::chrono::steady_clock;

std::string status_text(natsStatus s) {
  std::string out = natsStatus_GetText(s);
  const char* last = nats_GetLastError(nullptr);
  if (last != nullptr && *last != '\0' && out != last) out += std::string(": ") + last;
  return redact_url_credentials(out);
}

// A server answered and said no: retrying with the same credentials and certificates gets
// the same answer, so these are configuration errors rather than an outage.
bool refused_by_server(natsStatus s) {
  return s == NATS_CONNECTION_AUTH_FAILED || s == NATS_SSL_ERROR || s == NATS_SECURE_CONNECTION_REQUIRED ||
         s == NATS_SECURE_CONNECTION_WANTED || s == NATS_NOT_PERMITTED;
}

void connected_later(natsConnection*, void*) {}

// How long a publish may stay unconfirmed past its own timeout before the client gives
// up on it itself: cnats reports a timeout only while the connection lives.
constexpr auto kGiveUpMargin = std::chrono::seconds(1);
constexpr int kSignedConnectAttempts = 4;  // see open()
constexpr auto kSupervisorTick = std::chrono::milliseconds(200);

// cnats 3.4.1 frees a received message on a thread of its own: natsMsg_Destroy puts it on
// the library's garbage list, under a lock, and wakes that thread when it sleeps. Done one
// message at a time, that was a wake-up and a context switch per event, and each free
// contended with the reader thread's next allocation (docs/benchmarks.md, "Where the
// cycles go"). A delivery thread destroys its messages in batches instead: when this many
// are done with (or hold this many bytes of payload), and whenever its subscription has
// nothing more waiting (so that a quiet subscription holds none).
constexpr size_t kDestroyBatch = 64;
constexpr size_t kDestroyBatchBytes = 1 << 20;

// The messages a delivery thread is done with and has not destroyed yet (see
// kDestroyBatch). Destroyed, the rest, when the thread ends.
struct DoneMessages {
  std::vector<natsMsg*> msgs;
  size_t bytes = 0;
  DoneMessages() { msgs.reserve(kDestroyBatch); }
  ~DoneMessages() { destroy(); }
  DoneMessages(const DoneMessages&) = delete;
  DoneMessages& operator=(const DoneMessages&) = delete;
  void add(natsMsg* m) {
    msgs.push_back(m);
    bytes += static_cast<size_t>(std::max(0, natsMsg_GetDataLength(m)));
  }
  bool full() const { return msgs.size() >= kDestroyBatch || bytes >= kDestroyBatchBytes; }
  void destroy() {
    for (natsMsg* m : msgs) natsMsg_Destroy(m);
    msgs.clear();
    bytes = 0;
  }
};

// cnats calls back with a closure pointer, on its own threads, possibly after a client is
// gone (a "closed" callback is queued when the destructor closes the connection). So the
// closure is a key, looked up here; a destroyed client is no longer found.
std::mutex& clients_mu() {
  static std::mutex mu;
  return mu;
}
std::unordered_map<uintptr_t, NatsClient*>& clients() {
  static auto* map = new std::unordered_map<uintptr_t, NatsClient*>();  // outlives static destructors
  return *map;
}
std::atomic<uintptr_t> next_client_key{1};

bool header_line(std::string_view line) {
  return line.size() >= 6 && line.substr(0, 3) == "---" && line.substr(line.size() - 3) == "---";
}

bool base64url_part(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '=')) return false;
  }
  return true;
}

}  // namespace

std::string redact_url_credentials(std::string_view text) {
  std::string out;
  size_t from = 0;
  while (true) {
    const size_t scheme = text.find("://", from);
    if (scheme == std::string_view::npos) break;
    const size_t authority = scheme + 3;
    size_t end = text.find_first_of("/?#,; \t\r\n\"'", authority);
    if (end == std::string_view::npos) end = text.size();
    const size_t at = text.substr(authority, end - authority).rfind('@');
    if (at == std::string_view::npos) {
      out.append(text.substr(from, end - from));
    } else {
      out.append(text.substr(from, authority - from)).append("***");
      out.append(text.substr(authority + at, end - authority - at));
    }
    from = end;
  }
  out.append(text.substr(from));
  return out;
}

bool read_secret_file(const std::string& path, std::string& out, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read " + path;
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return true;
}

// The decorated format of `nsc` and `nats-server --creds`: a "-----BEGIN NATS USER JWT-----"
// line, the JWT, an "------END ...------" line, then the same around the user's NKey seed.
// cnats reads the same items; when it finds none it sends the whole file as a JWT, which
// is why a file that does not have this shape is refused here, before anything is sent.
bool check_creds_file(const std::string& path, std::string& error) {
  std::string content;
  if (!read_secret_file(path, content, error)) {
    error = "creds file: " + error;
    return false;
  }
  if (content.find('\r') != std::string::npos) {
    // cnats 3.4.1 finds neither JWT nor seed between CRLF lines (fixed upstream later)
    // and would send the whole file as the JWT.
    std::fill(content.begin(), content.end(), '\0');
    error = "creds file " + path + ": Windows line endings (CRLF), which this NATS client cannot read; "
            "convert it to LF line endings (dos2unix, or tr -d '\\r')";
    return false;
  }
  std::vector<std::string> items;
  std::istringstream in(content);
  std::string line;
  std::vector<std::string> lines;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    size_t start = line.find_first_not_of(" \t");
    lines.push_back(start == std::string::npos ? std::string() : line.substr(start));
  }
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    if (!header_line(lines[i]) || header_line(lines[i + 1]) || lines[i + 1].empty()) continue;
    size_t k = i + 2;
    while (k < lines.size() && lines[k].empty()) ++k;
    if (k < lines.size() && header_line(lines[k])) {
      items.push_back(lines[i + 1]);
      i = k;
    }
  }
  std::fill(content.begin(), content.end(), '\0');
  for (auto& l : lines) std::fill(l.begin(), l.end(), '\0');
  auto wipe = [&] {
    for (auto& item : items) std::fill(item.begin(), item.end(), '\0');
  };
  if (items.empty()) {
    error = "creds file " + path + ": no user JWT (expected a -----BEGIN NATS USER JWT----- block)";
    return false;
  }
  const std::string& jwt = items[0];
  size_t dot1 = jwt.find('.');
  size_t dot2 = dot1 == std::string::npos ? dot1 : jwt.find('.', dot1 + 1);
  if (dot2 == std::string::npos || jwt.find('.', dot2 + 1) != std::string::npos ||
      !base64url_part(std::string_view(jwt).substr(0, dot1)) ||
      !base64url_part(std::string_view(jwt).substr(dot1 + 1, dot2 - dot1 - 1)) ||
      !base64url_part(std::string_view(jwt).substr(dot2 + 1))) {
    wipe();
    error = "creds file " + path + ": the user JWT is not a JWT (three base64url parts separated by dots)";
    return false;
  }
  if (items.size() < 2 || items[1].rfind("SU", 0) != 0) {
    wipe();
    error = "creds file " + path + ": no user NKey seed (expected a -----BEGIN USER NKEY SEED----- block with SU...)";
    return false;
  }
  unsigned char* sig = nullptr;
  int sig_len = 0;
  natsStatus s = nats_Sign(items[1].c_str(), "switchboard", &sig, &sig_len);
  free(sig);
  wipe();
  if (s != NATS_OK) {
    error = "creds file " + path + ": the user NKey seed is not valid";
    return false;
  }
  return true;
}

NatsClient::~NatsClient() {
  if (key_ != 0) {
    std::lock_guard lock(clients_mu());
    clients().erase(key_);
  }
  {
    std::lock_guard lock(sup_mu_);
    stopping_ = true;
  }
  sup_cv_.notify_all();
  if (supervisor_.joinable()) supervisor_.join();
  if (prober_.joinable()) prober_.join();
  {
    std::lock_guard lock(flush_mu_);
    flush_stopping_ = true;
  }
  flush_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  {
    std::lock_guard lock(pub_mu_);
    pub_cv_.notify_all();
  }
  // Whatever is still unconfirmed will not be: say so once, as promised.
  expire_publishes(true, 0);
  std::unique_lock lock(conn_mu_);
  {
    std::lock_guard subs_lock(mu_);
    // cnats 3.4.1's reader does not hold a subscription while it hands it a message (fixed
    // upstream later): take every one off the connection, let a PING/PONG show that the
    // reader has passed whatever it had for them, and only then free them.
    for (auto& s : subs_) {
      count_dropped(s);  // while cnats still answers for it
      natsSubscription_Unsubscribe(s.sub);
    }
    // (Not connected: no reader is handing anything out, and no answer would come.)
    if (conn_ != nullptr && !subs_.empty() && natsConnection_Status(conn_) == NATS_CONN_STATUS_CONNECTED) {
      natsConnection_FlushTimeout(conn_, 1000);
    }
    for (auto& s : subs_) natsSubscription_Destroy(s.sub);
    subs_.clear();
  }
  if (js_ != nullptr) jsCtx_Destroy(js_);
  if (ajs_ != nullptr) jsCtx_Destroy(ajs_);
  if (conn_ != nullptr) {
    natsConnection_Close(conn_);
    natsConnection_Destroy(conn_);
  }
}

NatsClient::Opened NatsClient::open(const NatsConfig& config, natsConnection** conn, std::string& error) {
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  std::unique_ptr<natsOptions, void (*)(natsOptions*)> owned(opts, natsOptions_Destroy);
  auto check = [&](natsStatus st, const char* what) {
    if (st == NATS_OK) return true;
    error = std::string(what) + ": " + status_text(st);
    return false;
  };
  if (!check(s, "nats options")) return Opened::Refused;
  std::vector<const char*> urls;
  for (const auto& u : config.urls) urls.push_back(u.c_str());
  if (urls.empty()) {
    error = "no NATS URL given";
    return Opened::Refused;
  }
  if (!check(natsOptions_SetServers(opts, urls.data(), static_cast<int>(urls.size())), "NATS URLs") ||
      !check(natsOptions_SetName(opts, config.name.c_str()), "connection name") ||
      !check(natsOptions_SetMaxReconnect(opts, -1), "reconnect") ||
      !check(natsOptions_SetReconnectWait(opts, config.reconnect_wait_ms), "reconnect wait") ||
      !check(natsOptions_SetReconnectJitter(opts, config.reconnect_jitter_ms, config.reconnect_jitter_ms * 4),
             "reconnect jitter") ||
      !check(natsOptions_SetTimeout(opts, config.connect_timeout_ms), "connect timeout") ||
      !check(natsOptions_SetReconnectBufSize(opts, 32 * 1024 * 1024), "reconnect buffer") ||
      !check(natsOptions_SetClosedCB(opts, on_closed, reinterpret_cast<void*>(key_)), "closed callback") ||
      !check(natsOptions_SetDisconnectedCB(opts, on_disconnected, reinterpret_cast<void*>(key_)),
             "disconnected callback") ||
      !check(natsOptions_SetReconnectedCB(opts, on_reconnected, reinterpret_cast<void*>(key_)),
             "reconnected callback") ||
      !check(natsOptions_SetErrorHandler(opts, on_async_error, reinterpret_cast<void*>(key_)), "error handler") ||
      !check(natsOptions_SetPingInterval(opts, config.ping_interval_ms), "ping interval") ||
      !check(natsOptions_SetMaxPingsOut(opts, config.max_pings_out), "max pings out")) {
    return Opened::Refused;
  }
  if (!config.tls_ca_file.empty() || !config.tls_cert_file.empty()) {
    if (!check(natsOptions_SetSecure(opts, true), "TLS")) return Opened::Refused;
    if (!config.tls_ca_file.empty() &&
        !check(natsOptions_LoadCATrustedCertificates(opts, config.tls_ca_file.c_str()), "TLS CA")) {
      return Opened::Refused;
    }
    if (!config.tls_cert_file.empty() &&
        !check(natsOptions_LoadCertificatesChain(opts, config.tls_cert_file.c_str(), config.tls_key_file.c_str()),
               "TLS client certificate")) {
      return Opened::Refused;
    }
  }
  if (!config.user.empty() &&
      !check(natsOptions_SetUserInfo(opts, config.user.c_str(), config.password.c_str()), "user")) {
    return Opened::Refused;
  }
  if (!config.token.empty() && !check(natsOptions_SetToken(opts, config.token.c_str()), "token")) {
    return Opened::Refused;
  }
  if (!config.creds_file.empty()) {
    // cnats reads the file at every (re)connect, so a rotated creds file is picked up; it
    // is checked here so that a broken one is a clear error rather than a refusal.
    if (!check_creds_file(config.creds_file, error)) return Opened::Refused;
    if (!check(natsOptions_SetUserCredentialsFromFiles(opts, config.creds_file.c_str(), nullptr), "creds file")) {
      return Opened::Refused;
    }
  }
  if (!config.nkey_seed_file.empty()) {
    // The seed file holds the seed; cnats derives and signs with it. The public key is
    // needed up front: derive it by reading the matching ".pub" file next to the seed.
    std::string pub;
    std::string pub_error;
    if (!read_secret_file(config.nkey_seed_file + ".pub", pub, pub_error)) {
      error = "NKey: " + pub_error + " (the public key must sit next to the seed)";
      return Opened::Refused;
    }
    if (!check(natsOptions_SetNKeyFromSeed(opts, pub.c_str(), config.nkey_seed_file.c_str()), "NKey")) {
      return Opened::Refused;
    }
  }
  // One pass over the servers first, without retry, so that a server that answers and
  // refuses us is reported instead of retried in silence. (Retry with no connected callback
  // makes cnats retry inside natsConnection_Connect, forever with MaxReconnect -1: connect()
  // never returned while no server answered or one refused the credentials, and the
  // router, which blocks SIGTERM before connecting, could only be killed.)
  if (!check(natsOptions_SetRetryOnFailedConnect(opts, false, nullptr, nullptr), "retry on connect")) {
    return Opened::Refused;
  }
  // cnats 3.4.1 leaves the nonce signature out of CONNECT when its first byte is zero
  // (its base64 encoder takes a leading zero byte for an empty input; fixed upstream after
  // 3.4.1, nats.c #705), so 1 in 256 connections of a creds file or an NKey is refused
  // with "Authorization Violation" although the credentials are good. Each connection gets
  // a new nonce, so such a refusal is tried again: four in a row would be 1 in 4 billion.
  // (A reconnect refused that way is tried again by cnats; two in a row close the
  // connection, and the supervisor makes a new one.)
  const bool signs_nonce = !config.creds_file.empty() || !config.nkey_seed_file.empty();
  for (int attempt = 1;; ++attempt) {
    s = natsConnection_Connect(conn, opts);
    if (s == NATS_OK) return Opened::Connected;
    if (!signs_nonce || s != NATS_CONNECTION_AUTH_FAILED || attempt == kSignedConnectAttempts) break;
    signature_retries_.fetch_add(1);
  }
  if (refused_by_server(s)) {
    error = "connect: " + status_text(s);
    return Opened::Refused;
  }
  // No server answers yet: start anyway. The callback is what makes cnats return
  // NATS_NOT_YET_CONNECTED and keep trying in the background.
  if (!check(natsOptions_SetRetryOnFailedConnect(opts, true, connected_later, nullptr), "retry on connect")) {
    return Opened::Refused;
  }
  s = natsConnection_Connect(conn, opts);
  if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
    error = "connect: " + status_text(s);
    return Opened::Refused;
  }
  return Opened::Pending;
}

bool NatsClient::connect(const NatsConfig& config, std::string& error) {
  config_ = config;
  js_limit_ = std::max<int64_t>(1, config.js_max_inflight);
  if (key_ == 0) {
    key_ = next_client_key.fetch_add(1);
    std::lock_guard lock(clients_mu());
    clients()[key_] = this;
  }
  natsConnection* conn = nullptr;
  if (open(config_, &conn, error) == Opened::Refused) return false;
  {
    std::unique_lock lock(conn_mu_);
    conn_ = conn;
    generation_ = 1;
  }
  supervisor_ = std::thread([this] {
    name_this_thread("sb-nats-superv");
    supervise();
  });
  stuck_limit_ms_ = config_.stuck_after_ms > 0 ? config_.stuck_after_ms
                                               : std::max<int64_t>(10'000, 4 * config_.connect_timeout_ms);
  prober_ = std::thread([this] {
    name_this_thread("sb-nats-probe");
    probe_loop();
  });
  flush_on_idle_ = config_.flush_on_idle;
  if (flush_on_idle_) {
    flusher_ = std::thread([this] {
      name_this_thread("sb-nats-flush");
      flush_loop();
    });
  }
  return true;
}

void NatsClient::on_closed(natsConnection*, void* closure) {
  std::lock_guard registry(clients_mu());
  auto found = clients().find(reinterpret_cast<uintptr_t>(closure));
  if (found == clients().end()) return;
  NatsClient* self = found->second;
  {
    std::lock_guard lock(self->sup_mu_);
    self->closed_signalled_ = true;
  }
  self->sup_cv_.notify_all();
}

void NatsClient::on_disconnected(natsConnection* conn, void* closure) {
  std::lock_guard registry(clients_mu());
  auto found = clients().find(reinterpret_cast<uintptr_t>(closure));
  if (found == clients().end() || !found->second->state_log_) return;
  // A connection closed for good is reported by the supervisor, with its reason.
  if (natsConnection_IsClosed(conn)) return;
  const char* last = nullptr;
  natsStatus s = natsConnection_GetLastError(conn, &last);
  found->second->state_log_(State::Disconnected, s == NATS_OK || last == nullptr ? "" : redact_url_credentials(last));
}

void NatsClient::on_reconnected(natsConnection* conn, void* closure) {
  std::lock_guard registry(clients_mu());
  auto found = clients().find(reinterpret_cast<uintptr_t>(closure));
  if (found == clients().end() || !found->second->state_log_) return;
  char url[256] = "";
  natsConnection_GetConnectedUrl(conn, url, sizeof url);
  found->second->state_log_(State::Reconnected, redact_url_credentials(url));
}

void NatsClient::on_async_error(natsConnection*, natsSubscription* sub, natsStatus err, void* closure) {
  std::lock_guard registry(clients_mu());
  auto found = clients().find(reinterpret_cast<uintptr_t>(closure));
  if (found == clients().end() || !found->second->state_log_) return;
  if (err == NATS_SLOW_CONSUMER) {
    // cnats 3.4.1 does not keep the subscription alive for this callback (fixed upstream
    // later): it may be destroyed by now, so `sub` is only compared, never read. Ours are
    // taken out of subs_ before they are destroyed.
    std::string subject;
    {
      std::lock_guard lock(found->second->mu_);
      for (const auto& s : found->second->subs_) {
        if (s.sub == sub) subject = s.subject;
      }
    }
    found->second->state_log_(State::SlowConsumer, subject);
    return;
  }
  found->second->state_log_(State::AsyncError, redact_url_credentials(status_text(err)));
}

namespace {

// What cnats says a subscription dropped, or `seen` when it no longer answers.
uint64_t read_dropped(natsSubscription* sub, uint64_t seen) {
  int64_t n = 0;
  if (sub != nullptr && natsSubscription_GetDropped(sub, &n) == NATS_OK && n > 0) {
    return std::max(seen, static_cast<uint64_t>(n));
  }
  return seen;
}

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

}  // namespace

void NatsClient::probe_loop() {
  std::unique_lock lock(sup_mu_);
  while (!stopping_) {
    lock.unlock();
    probe_since_ns_.store(steady_ns());
    {
      std::shared_lock conn_lock(conn_mu_);
      if (conn_ != nullptr) (void)natsConnection_Status(conn_);  // takes cnats' connection lock
    }
    probe_since_ns_.store(0);
    lock.lock();
    sup_cv_.wait_for(lock, std::chrono::milliseconds(500), [&] { return stopping_; });
  }
}

std::chrono::milliseconds NatsClient::stuck_for() const {
  const int64_t since = probe_since_ns_.load();
  if (since == 0) return std::chrono::milliseconds(0);
  const auto waited = std::chrono::milliseconds((steady_ns() - since) / 1'000'000);
  return waited.count() >= stuck_limit_ms_ ? waited : std::chrono::milliseconds(0);
}

void NatsClient::count_dropped(const Subscription& s) {
  dropped_gone_.fetch_add(read_dropped(s.sub, s.dropped_seen));
}

uint64_t NatsClient::dropped() const {
  uint64_t total = dropped_gone_.load();
  std::lock_guard lock(mu_);
  for (const auto& s : subs_) {
    s.dropped_seen = read_dropped(s.sub, s.dropped_seen);
    total += s.dropped_seen;
  }
  return total;
}

// The client's own thread: gives up on publishes whose answer will never come, and
// replaces a connection that cnats closed for good.
void NatsClient::supervise() {
  int64_t wait_ms = std::max<int64_t>(1, config_.rebuild_wait_ms);
  Clock::time_point next_attempt{};
  std::mt19937 jitter(std::random_device{}());
  std::unique_lock lock(sup_mu_);
  while (!stopping_) {
    sup_cv_.wait_for(lock, kSupervisorTick, [this] { return stopping_ || closed_signalled_; });
    if (stopping_) break;
    closed_signalled_ = false;
    lock.unlock();
    expire_publishes(false, 0);
    bool closed = false;
    std::string reason;
    {
      std::shared_lock conn_lock(conn_mu_);
      if (conn_ != nullptr && natsConnection_IsClosed(conn_)) {
        closed = true;
        const char* text = nullptr;
        natsStatus st = natsConnection_GetLastError(conn_, &text);
        reason = text != nullptr && *text != '\0' ? std::string(text) : std::string(natsStatus_GetText(st));
      }
    }
    lock.lock();
    if (!closed) continue;
    auto now = Clock::now();
    if (closed_since_ == Clock::time_point{}) {
      closed_since_ = now;
      closed_reason_ = reason;
      next_attempt = now + std::chrono::milliseconds(wait_ms);
      lock.unlock();
      if (state_log_) state_log_(State::Closed, reason);
      lock.lock();
      continue;
    }
    if (now < next_attempt) continue;
    lock.unlock();
    std::string error;
    bool rebuilt = rebuild(error);
    if (rebuilt) {
      if (state_log_) state_log_(State::Rebuilt, "");
    } else if (state_log_) {
      state_log_(State::RebuildFailed, error);
    }
    lock.lock();
    if (rebuilt) {
      closed_since_ = Clock::time_point{};
      closed_reason_.clear();
      wait_ms = std::max<int64_t>(1, config_.rebuild_wait_ms);
    } else {
      closed_reason_ = error;
      // Jitter, so that a fleet whose credentials were rotated does not come back at once.
      int64_t jittered = wait_ms + static_cast<int64_t>(jitter() % static_cast<uint32_t>(wait_ms / 4 + 1));
      next_attempt = Clock::now() + std::chrono::milliseconds(jittered);
      wait_ms = std::min<int64_t>(wait_ms * 2, std::max(config_.rebuild_max_wait_ms, config_.rebuild_wait_ms));
    }
  }
}

// A new connection from the configuration, with the credential files read again. On
// success every core subscription is made again on it and the old one is let go.
bool NatsClient::rebuild(std::string& error) {
  NatsConfig fresh = config_;
  if ((!fresh.user_file.empty() && !read_secret_file(fresh.user_file, fresh.user, error)) ||
      (!fresh.password_file.empty() && !read_secret_file(fresh.password_file, fresh.password, error)) ||
      (!fresh.token_file.empty() && !read_secret_file(fresh.token_file, fresh.token, error))) {
    return false;
  }
  natsConnection* conn = nullptr;
  if (open(fresh, &conn, error) == Opened::Refused) {
    // Not cnats' "closed" callback of a connection that never was.
    return false;
  }
  natsConnection* old_conn = nullptr;
  jsCtx* old_js = nullptr;
  jsCtx* old_ajs = nullptr;
  std::vector<natsSubscription*> old_subs;
  uint64_t old_generation = 0;
  {
    std::unique_lock lock(conn_mu_);
    old_conn = std::exchange(conn_, conn);
    old_js = std::exchange(js_, nullptr);
    old_ajs = std::exchange(ajs_, nullptr);
    old_generation = generation_++;
    {
      // Usable again from this moment: whoever sees the new connection sees it open.
      std::lock_guard sup(sup_mu_);
      closed_since_ = Clock::time_point{};
      closed_reason_.clear();
    }
    std::lock_guard subs_lock(mu_);
    for (auto& s : subs_) {
      count_dropped(s);  // the new subscription counts from zero
      s.dropped_seen = 0;
      old_subs.push_back(std::exchange(s.sub, nullptr));
      natsStatus st = subscribe_on(conn_, s);
      if (st != NATS_OK && error.empty()) error = "subscribe " + s.subject + ": " + status_text(st);
    }
  }
  // Publishes sent on the old connection will never be confirmed.
  expire_publishes(false, old_generation + 1);
  for (auto* s : old_subs) natsSubscription_Destroy(s);
  if (old_js != nullptr) jsCtx_Destroy(old_js);
  if (old_ajs != nullptr) jsCtx_Destroy(old_ajs);
  if (old_conn != nullptr) natsConnection_Destroy(old_conn);
  config_ = std::move(fresh);
  return true;
}

NatsMessage view_of(natsMsg* msg, NatsHeaders& headers) {
  headers.clear();
  const char** keys = nullptr;
  int count = 0;
  if (natsMsgHeader_Keys(msg, &keys, &count) == NATS_OK) {
    for (int i = 0; i < count; ++i) {
      const char** values = nullptr;
      int n = 0;
      if (natsMsgHeader_Values(msg, keys[i], &values, &n) == NATS_OK) {
        for (int k = 0; k < n; ++k) headers.emplace_back(keys[i], values[k]);
        free(values);
      }
    }
    free(keys);
  }
  const char* data = natsMsg_GetData(msg);
  return NatsMessage{msg, natsMsg_GetSubject(msg),
                     std::string_view(data == nullptr ? "" : data, static_cast<size_t>(natsMsg_GetDataLength(msg))),
                     &headers};
}

void NatsClient::on_message(natsConnection*, natsSubscription* sub, natsMsg* msg, void* closure) {
  // cnats runs each subscription's deliveries on a thread of its own.
  thread_local const bool named = (name_this_thread("sb-deliver"), true);
  (void)named;
  NatsHeaders headers;
  auto* delivery = static_cast<Delivery*>(closure);
  delivery->handler(view_of(msg, headers));
  thread_local DoneMessages done;
  done.add(msg);
  int waiting = 0;
  const bool idle = natsSubscription_GetPending(sub, &waiting, nullptr) != NATS_OK || waiting == 0;
  if (idle || done.full()) done.destroy();
  NatsClient* self = delivery->client;
  if (!idle || !self->unflushed_.load(std::memory_order_relaxed)) return;
  {
    std::lock_guard lock(self->flush_mu_);
    self->flush_wanted_ = true;
  }
  self->flush_cv_.notify_one();
}

// One flush at a time: what is published while one is on its way waits for the next,
// so a steady trickle costs at most one PING per round trip.
void NatsClient::flush_loop() {
  std::unique_lock lock(flush_mu_);
  while (true) {
    flush_cv_.wait(lock, [this] { return flush_wanted_ || flush_stopping_; });
    if (flush_stopping_) return;
    flush_wanted_ = false;
    lock.unlock();
    unflushed_.store(false, std::memory_order_relaxed);
    {
      std::shared_lock conn_lock(conn_mu_);
      if (conn_ != nullptr && natsConnection_Status(conn_) == NATS_CONN_STATUS_CONNECTED) {
        natsConnection_FlushTimeout(conn_, 1000);
        idle_flushes_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    lock.lock();
  }
}

natsStatus NatsClient::subscribe_on(natsConnection* conn, Subscription& s) {
  natsSubscription* sub = nullptr;
  natsStatus st = s.queue.empty()
                      ? natsConnection_Subscribe(&sub, conn, s.subject.c_str(), on_message, s.handler.get())
                      : natsConnection_QueueSubscribe(&sub, conn, s.subject.c_str(), s.queue.c_str(), on_message,
                                                      s.handler.get());
  if (st != NATS_OK) return st;
  // Bounded buffering: beyond these cnats drops messages (counted by dropped(), logged
  // through State::SlowConsumer) instead of the router's memory growing.
  natsSubscription_SetPendingLimits(sub, config_.pending_limit_msgs, config_.pending_limit_bytes);
  s.sub = sub;
  return NATS_OK;
}

uint64_t NatsClient::subscribe(const std::string& subject, const std::string& queue, Handler handler,
                               std::string& error) {
  Subscription s;
  s.handler = std::make_unique<Delivery>(Delivery{this, std::move(handler)});
  s.subject = subject;
  s.queue = queue;
  std::shared_lock conn_lock(conn_mu_);
  natsStatus st = subscribe_on(conn_, s);
  if (st != NATS_OK) {
    error = "subscribe " + subject + ": " + status_text(st);
    return 0;
  }
  std::lock_guard lock(mu_);
  s.id = next_id_++;
  uint64_t id = s.id;
  subs_.push_back(std::move(s));
  return id;
}

void NatsClient::unsubscribe(uint64_t id) {
  Subscription removed{};
  std::shared_lock conn_lock(conn_mu_);  // the subscription belongs to this connection
  {
    std::lock_guard lock(mu_);
    for (auto it = subs_.begin(); it != subs_.end(); ++it) {
      if (it->id == id) {
        removed = std::move(*it);
        subs_.erase(it);
        break;
      }
    }
  }
  if (removed.sub == nullptr) return;
  removed.dropped_seen = read_dropped(removed.sub, removed.dropped_seen);
  // Drain rather than cut: messages already delivered to this subscription are handled.
  if (natsSubscription_Drain(removed.sub) == NATS_OK) {
    natsSubscription_WaitForDrainCompletion(removed.sub, 5000);
  }
  count_dropped(removed);
  natsSubscription_Destroy(removed.sub);
}

namespace {

// A header value a cnats 3.4.1 receiver cannot read: empty or only spaces and tabs. Its
// parser then runs past the end of the line, so the next header becomes part of this
// one's value, or, for the last one, every header of the message is lost (fixed upstream
// after 3.4.1). The router itself, the controller and many consumers read with that
// client, so such a header is left out of what the router publishes.
bool unreadable_header_value(const std::string& v) {
  return v.find_first_not_of(" \t") == std::string::npos;
}

natsStatus make_message(natsMsg** m, const std::string& subject, const NatsHeaders& headers, std::string_view data) {
  natsStatus s = natsMsg_Create(m, subject.c_str(), nullptr, data.data(), static_cast<int>(data.size()));
  for (size_t i = 0; s == NATS_OK && i < headers.size(); ++i) {
    if (unreadable_header_value(headers[i].second)) continue;
    s = natsMsgHeader_Add(*m, headers[i].first.c_str(), headers[i].second.c_str());
  }
  return s;
}

}  // namespace

bool NatsClient::publish(std::string_view subject, const NatsHeaders& headers, std::string_view data,
                         std::string& error) {
  thread_local std::string subj;  // cnats wants it NUL-terminated; kept to spare an allocation
  subj.assign(subject);
  natsStatus s = NATS_OK;
  if (headers.empty()) {
    // Without headers cnats writes the bytes straight into its buffer: no message object.
    std::shared_lock lock(conn_mu_);
    s = natsConnection_Publish(conn_, subj.c_str(), data.data(), static_cast<int>(data.size()));
  } else {
    natsMsg* m = nullptr;
    s = make_message(&m, subj, headers, data);
    if (s == NATS_OK) {
      std::shared_lock lock(conn_mu_);
      s = natsConnection_PublishMsg(conn_, m);
    }
    natsMsg_Destroy(m);
  }
  if (s == NATS_OK && flush_on_idle_) unflushed_.store(true, std::memory_order_relaxed);
  if (s != NATS_OK) {
    error = "publish " + subj + ": " + status_text(s);
    return false;
  }
  return true;
}

bool NatsClient::js_publish(std::string_view subject, const NatsHeaders& headers, std::string_view data,
                            const std::string& msg_id, int64_t timeout_ms, std::string& error) {
  std::shared_lock lock(conn_mu_);
  jsCtx* js = nullptr;
  if (conn_ != nullptr) {
    std::lock_guard js_lock(js_mu_);
    if (js_ == nullptr) natsConnection_JetStream(&js_, conn_, nullptr);
    js = js_;
  }
  if (js == nullptr) {
    error = "JetStream is not available";
    return false;
  }
  natsMsg* m = nullptr;
  std::string subj(subject);
  natsStatus s = make_message(&m, subj, headers, data);
  jsErrCode code = static_cast<jsErrCode>(0);
  if (s == NATS_OK) {
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = msg_id.c_str();
    po.MaxWait = timeout_ms;
    jsPubAck* ack = nullptr;
    s = js_PublishMsg(&ack, js, m, &po, &code);
    jsPubAck_Destroy(ack);
  }
  natsMsg_Destroy(m);
  if (s != NATS_OK) {
    error = "JetStream publish " + subj + ": " + status_text(s) +
            (code != 0 ? " (error " + std::to_string(static_cast<int>(code)) + ")" : "");
    return false;
  }
  return true;
}

jsCtx* NatsClient::async_context() {
  std::lock_guard js_lock(js_mu_);
  if (ajs_ == nullptr && conn_ != nullptr) {
    jsOptions jo;
    jsOptions_Init(&jo);
    // The window in js_publish_async keeps this from being reached; it is the backstop.
    // The one publish over it is the moment between our callback returning and cnats
    // counting the message as done, hence a stall wait that is long enough to cover it.
    jo.PublishAsync.MaxPending = js_limit_;
    jo.PublishAsync.AckHandler = on_js_ack;
    jo.PublishAsync.AckHandlerClosure = reinterpret_cast<void*>(key_);
    jo.PublishAsync.StallWait = 5000;
    natsConnection_JetStream(&ajs_, conn_, &jo);
  }
  return ajs_;
}

bool NatsClient::js_publish_async(std::string_view subject, const NatsHeaders& headers, std::string_view data,
                                  const std::string& msg_id, int64_t timeout_ms, PublishDone done,
                                  std::string& error) {
  std::string subj(subject);
  natsMsg* m = nullptr;
  natsStatus s = make_message(&m, subj, headers, data);
  if (s != NATS_OK) {
    natsMsg_Destroy(m);
    error = "JetStream publish " + subj + ": " + status_text(s);
    return false;
  }
  const int64_t limit = js_limit_;
  {
    // Wait for room first, holding nothing else: the answers that make room come on
    // another thread, and a connection being replaced must not wait for us.
    std::unique_lock lock(pub_mu_);
    pub_cv_.wait(lock, [&] {
      std::lock_guard sup(sup_mu_);
      return static_cast<int64_t>(inflight_.size()) < limit || stopping_;
    });
  }
  std::shared_lock conn_lock(conn_mu_);
  jsCtx* js = conn_ == nullptr ? nullptr : async_context();
  if (js == nullptr) {
    natsMsg_Destroy(m);
    error = "JetStream is not available";
    return false;
  }
  {
    // Registered before it is sent: the answer can come before js_PublishMsgAsync returns.
    std::lock_guard lock(pub_mu_);
    inflight_[m] = InFlight{std::move(done),
                            Clock::now() + std::chrono::milliseconds(timeout_ms) + kGiveUpMargin, generation_};
    max_inflight_seen_ = std::max<int64_t>(max_inflight_seen_, static_cast<int64_t>(inflight_.size()));
  }
  natsMsg* sent = m;
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MsgId = msg_id.c_str();
  po.MaxWait = timeout_ms;
  s = js_PublishMsgAsync(js, &m, &po);
  if (s != NATS_OK) {
    // Not sent, and still ours: take it back unless an answer already did.
    bool ours = false;
    {
      std::lock_guard lock(pub_mu_);
      ours = inflight_.erase(sent) > 0;
    }
    pub_cv_.notify_all();
    natsMsg_Destroy(m);
    if (ours) {
      error = "JetStream publish " + subj + ": " + status_text(s);
      return false;
    }
  }
  return true;
}

void NatsClient::on_js_ack(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr* err, void* closure) {
  // Held to the end: the client cannot be destroyed while its callback runs.
  std::lock_guard registry(clients_mu());
  auto found = clients().find(reinterpret_cast<uintptr_t>(closure));
  NatsClient* self = found == clients().end() ? nullptr : found->second;
  PublishDone done;
  if (self != nullptr) {
    std::lock_guard lock(self->pub_mu_);
    auto it = self->inflight_.find(msg);
    if (it != self->inflight_.end()) {
      done = std::move(it->second.done);
      self->inflight_.erase(it);
    }
  }
  if (!done) {
    // Given up on already (deadline, replaced connection), or its client is gone.
    natsMsg_Destroy(msg);
    return;
  }
  self->pub_cv_.notify_all();
  std::string error;
  bool ok = err == nullptr;
  if (ok) {
    self->confirmed_.fetch_add(1, std::memory_order_relaxed);
    if (ack != nullptr && ack->Duplicate) self->duplicates_.fetch_add(1, std::memory_order_relaxed);
  } else {
    self->failed_.fetch_add(1, std::memory_order_relaxed);
    error = "JetStream publish " + std::string(natsMsg_GetSubject(msg)) + ": " +
            (err->ErrText != nullptr ? std::string(err->ErrText) : std::string(natsStatus_GetText(err->Err))) +
            (err->ErrCode != 0 ? " (error " + std::to_string(static_cast<int>(err->ErrCode)) + ")" : "");
  }
  // With an AckHandler, the message is ours to destroy.
  natsMsg_Destroy(msg);
  if (done) done(ok, error);
}

// Fails publishes that will get no answer: past their deadline, made on a connection older
// than `generation_below`, or all of them.
void NatsClient::expire_publishes(bool everything, uint64_t generation_below) {
  std::vector<PublishDone> expired;
  auto now = Clock::now();
  {
    std::lock_guard lock(pub_mu_);
    for (auto it = inflight_.begin(); it != inflight_.end();) {
      if (everything || it->second.generation < generation_below || it->second.give_up <= now) {
        expired.push_back(std::move(it->second.done));
        it = inflight_.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (expired.empty()) return;
  pub_cv_.notify_all();
  failed_.fetch_add(expired.size(), std::memory_order_relaxed);
  // The messages stay with cnats, which destroys them with their context or hands them to
  // on_js_ack should an answer still come; either way they are no longer counted here.
  const std::string error = everything ? "JetStream publish: the client is closing"
                            : generation_below > 0 ? "JetStream publish: the connection was replaced before an answer"
                                                   : "JetStream publish: no answer before the deadline";
  for (auto& done : expired) {
    if (done) done(false, error);
  }
}

bool NatsClient::wait_for_publishes(int64_t timeout_ms) {
  std::unique_lock lock(pub_mu_);
  return pub_cv_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(0, timeout_ms)),
                          [this] { return inflight_.empty(); });
}

void NatsClient::abandon_publishes() { expire_publishes(true, 0); }

NatsClient::JsPublishStats NatsClient::js_publish_stats() const {
  JsPublishStats st;
  {
    std::lock_guard lock(pub_mu_);
    st.inflight = static_cast<int64_t>(inflight_.size());
    st.max_inflight = max_inflight_seen_;
  }
  st.limit = js_limit_;
  st.confirmed = confirmed_.load(std::memory_order_relaxed);
  st.failed = failed_.load(std::memory_order_relaxed);
  st.duplicates = duplicates_.load(std::memory_order_relaxed);
  return st;
}

bool NatsClient::flush(int64_t timeout_ms) {
  std::shared_lock lock(conn_mu_);
  return conn_ != nullptr && natsConnection_FlushTimeout(conn_, timeout_ms) == NATS_OK;
}

void NatsClient::drain(int64_t timeout_ms) {
  std::shared_lock conn_lock(conn_mu_);
  std::vector<natsSubscription*> subs;
  {
    std::lock_guard lock(mu_);
    for (auto& s : subs_) subs.push_back(s.sub);
  }
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (auto* s : subs) natsSubscription_Drain(s);
  for (auto* s : subs) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    natsSubscription_WaitForDrainCompletion(s, std::max<int64_t>(1, left.count()));
  }
  // Within the same deadline, not after it: callers give drain() their whole budget. A
  // flush needs the server's answer; while disconnected it could only wait out the deadline.
  if (conn_ != nullptr && natsConnection_Status(conn_) == NATS_CONN_STATUS_CONNECTED) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    natsConnection_FlushTimeout(conn_, std::max<int64_t>(1, left.count()));
  }
}

bool NatsClient::connected() const {
  std::shared_lock lock(conn_mu_);
  return conn_ != nullptr && natsConnection_Status(conn_) == NATS_CONN_STATUS_CONNECTED;
}

std::chrono::milliseconds NatsClient::closed_for() const {
  std::lock_guard lock(sup_mu_);
  if (closed_since_ == Clock::time_point{}) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - closed_since_);
}

std::string NatsClient::closed_reason() const {
  std::lock_guard lock(sup_mu_);
  return closed_reason_;
}

uint64_t NatsClient::generation() const {
  std::shared_lock lock(conn_mu_);
  return generation_;
}

NatsClient::Counts NatsClient::counts() const {
  Counts c;
  std::shared_lock lock(conn_mu_);
  if (conn_ == nullptr) return c;
  natsStatistics* st = nullptr;
  if (natsStatistics_Create(&st) != NATS_OK) return c;
  if (natsConnection_GetStats(conn_, st) == NATS_OK) {
    natsStatistics_GetCounts(st, &c.in_msgs, &c.in_bytes, &c.out_msgs, &c.out_bytes, &c.reconnects);
  }
  natsStatistics_Destroy(st);
  return c;
}

natsStatus NatsClient::with_jetstream(const std::function<natsStatus(natsConnection*, jsCtx*)>& fn,
                                      uint64_t& generation) {
  std::shared_lock lock(conn_mu_);
  generation = generation_;
  if (conn_ == nullptr) return NATS_CONNECTION_CLOSED;
  jsCtx* js = nullptr;
  {
    std::lock_guard js_lock(js_mu_);
    if (js_ == nullptr) natsConnection_JetStream(&js_, conn_, nullptr);
    js = js_;
  }
  if (js == nullptr) return NATS_ERR;
  return fn(conn_, js);
}

natsStatus NatsClient::on_connection(uint64_t generation, const std::function<natsStatus(natsConnection*)>& fn) {
  std::shared_lock lock(conn_mu_);
  if (conn_ == nullptr || generation != generation_) return NATS_CONNECTION_CLOSED;
  return fn(conn_);
}

natsConnection* NatsClient::connection() const {
  std::shared_lock lock(conn_mu_);
  return conn_;
}

jsCtx* NatsClient::jetstream() {
  std::shared_lock lock(conn_mu_);
  std::lock_guard js_lock(js_mu_);
  if (js_ == nullptr && conn_ != nullptr) natsConnection_JetStream(&js_, conn_, nullptr);
  return js_;
}

}  // namespace switchboard::router
