#include "router/nats_client.h"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace switchboard::router {

namespace {

std::string status_text(natsStatus s) {
  std::string out = natsStatus_GetText(s);
  const char* last = nats_GetLastError(nullptr);
  if (last != nullptr && *last != '\0' && out != last) out += std::string(": ") + last;
  return out;
}

// A server answered and said no: retrying with the same credentials and certificates gets
// the same answer, so these are configuration errors rather than an outage.
bool refused_by_server(natsStatus s) {
  return s == NATS_CONNECTION_AUTH_FAILED || s == NATS_SSL_ERROR || s == NATS_SECURE_CONNECTION_REQUIRED ||
         s == NATS_SECURE_CONNECTION_WANTED || s == NATS_NOT_PERMITTED;
}

void connected_later(natsConnection*, void*) {}

}  // namespace

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

NatsClient::~NatsClient() {
  {
    std::lock_guard lock(mu_);
    for (auto& s : subs_) natsSubscription_Destroy(s.sub);
    subs_.clear();
  }
  if (js_ != nullptr) jsCtx_Destroy(js_);
  if (conn_ != nullptr) {
    natsConnection_Close(conn_);
    natsConnection_Destroy(conn_);
  }
  if (opts_ != nullptr) natsOptions_Destroy(opts_);
}

bool NatsClient::connect(const NatsConfig& config, std::string& error) {
  natsStatus s = natsOptions_Create(&opts_);
  auto check = [&](natsStatus st, const char* what) {
    if (st == NATS_OK) return true;
    error = std::string(what) + ": " + status_text(st);
    return false;
  };
  if (!check(s, "nats options")) return false;
  std::vector<const char*> urls;
  for (const auto& u : config.urls) urls.push_back(u.c_str());
  if (urls.empty()) {
    error = "no NATS URL given";
    return false;
  }
  if (!check(natsOptions_SetServers(opts_, urls.data(), static_cast<int>(urls.size())), "NATS URLs") ||
      !check(natsOptions_SetName(opts_, config.name.c_str()), "connection name") ||
      !check(natsOptions_SetMaxReconnect(opts_, -1), "reconnect") ||
      !check(natsOptions_SetReconnectWait(opts_, config.reconnect_wait_ms), "reconnect wait") ||
      !check(natsOptions_SetReconnectJitter(opts_, config.reconnect_jitter_ms, config.reconnect_jitter_ms * 4),
             "reconnect jitter") ||
      !check(natsOptions_SetTimeout(opts_, config.connect_timeout_ms), "connect timeout") ||
      !check(natsOptions_SetReconnectBufSize(opts_, 32 * 1024 * 1024), "reconnect buffer")) {
    return false;
  }
  if (!config.tls_ca_file.empty() || !config.tls_cert_file.empty()) {
    if (!check(natsOptions_SetSecure(opts_, true), "TLS")) return false;
    if (!config.tls_ca_file.empty() &&
        !check(natsOptions_LoadCATrustedCertificates(opts_, config.tls_ca_file.c_str()), "TLS CA")) {
      return false;
    }
    if (!config.tls_cert_file.empty() &&
        !check(natsOptions_LoadCertificatesChain(opts_, config.tls_cert_file.c_str(),
                                                 config.tls_key_file.c_str()),
               "TLS client certificate")) {
      return false;
    }
  }
  if (!config.user.empty() &&
      !check(natsOptions_SetUserInfo(opts_, config.user.c_str(), config.password.c_str()), "user")) {
    return false;
  }
  if (!config.token.empty() && !check(natsOptions_SetToken(opts_, config.token.c_str()), "token")) {
    return false;
  }
  if (!config.creds_file.empty() &&
      !check(natsOptions_SetUserCredentialsFromFiles(opts_, config.creds_file.c_str(), nullptr),
             "creds file")) {
    return false;
  }
  if (!config.nkey_seed_file.empty()) {
    // The seed file holds the seed; cnats derives and signs with it. The public key is
    // needed up front: derive it by reading the matching ".pub" file next to the seed.
    std::string pub;
    std::string pub_error;
    if (!read_secret_file(config.nkey_seed_file + ".pub", pub, pub_error)) {
      error = "NKey: " + pub_error + " (the public key must sit next to the seed)";
      return false;
    }
    if (!check(natsOptions_SetNKeyFromSeed(opts_, pub.c_str(), config.nkey_seed_file.c_str()), "NKey")) {
      return false;
    }
  }
  // One pass over the servers first, without retry, so that a server that answers and
  // refuses us is reported instead of retried in silence. (Retry with no connected callback
  // makes cnats retry inside natsConnection_Connect, forever with MaxReconnect -1: connect()
  // never returned while no server answered or one refused the credentials, and the
  // router, which blocks SIGTERM before connecting, could only be killed.)
  if (!check(natsOptions_SetRetryOnFailedConnect(opts_, false, nullptr, nullptr), "retry on connect")) {
    return false;
  }
  s = natsConnection_Connect(&conn_, opts_);
  if (s == NATS_OK) return true;
  if (refused_by_server(s)) {
    error = "connect: " + status_text(s);
    return false;
  }
  // No server answers yet: start anyway. The callback is what makes cnats return
  // NATS_NOT_YET_CONNECTED and keep trying in the background.
  if (!check(natsOptions_SetRetryOnFailedConnect(opts_, true, connected_later, nullptr), "retry on connect")) {
    return false;
  }
  s = natsConnection_Connect(&conn_, opts_);
  if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
    error = "connect: " + status_text(s);
    return false;
  }
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

void NatsClient::on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  NatsHeaders headers;
  (*static_cast<Handler*>(closure))(view_of(msg, headers));
  natsMsg_Destroy(msg);
}

uint64_t NatsClient::subscribe(const std::string& subject, const std::string& queue, Handler handler,
                               std::string& error) {
  auto h = std::make_unique<Handler>(std::move(handler));
  natsSubscription* sub = nullptr;
  natsStatus s = queue.empty()
                     ? natsConnection_Subscribe(&sub, conn_, subject.c_str(), on_message, h.get())
                     : natsConnection_QueueSubscribe(&sub, conn_, subject.c_str(), queue.c_str(), on_message,
                                                     h.get());
  if (s != NATS_OK) {
    error = "subscribe " + subject + ": " + status_text(s);
    return 0;
  }
  // Bounded buffering: beyond this the server's slow-consumer handling applies, instead
  // of the router's memory growing.
  natsSubscription_SetPendingLimits(sub, 65536, 64 * 1024 * 1024);
  std::lock_guard lock(mu_);
  uint64_t id = next_id_++;
  subs_.push_back(Subscription{id, sub, std::move(h)});
  return id;
}

void NatsClient::unsubscribe(uint64_t id) {
  Subscription removed{};
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
  // Drain rather than cut: messages already delivered to this subscription are handled.
  if (natsSubscription_Drain(removed.sub) == NATS_OK) {
    natsSubscription_WaitForDrainCompletion(removed.sub, 5000);
  }
  natsSubscription_Destroy(removed.sub);
}

bool NatsClient::publish(std::string_view subject, const NatsHeaders& headers, std::string_view data,
                         std::string& error) {
  natsMsg* m = nullptr;
  std::string subj(subject);
  natsStatus s = natsMsg_Create(&m, subj.c_str(), nullptr, data.data(), static_cast<int>(data.size()));
  if (s == NATS_OK) {
    for (const auto& [k, v] : headers) {
      s = natsMsgHeader_Add(m, k.c_str(), v.c_str());
      if (s != NATS_OK) break;
    }
  }
  if (s == NATS_OK) s = natsConnection_PublishMsg(conn_, m);
  natsMsg_Destroy(m);
  if (s != NATS_OK) {
    error = "publish " + subj + ": " + status_text(s);
    return false;
  }
  return true;
}

bool NatsClient::js_publish(std::string_view subject, const NatsHeaders& headers, std::string_view data,
                            const std::string& msg_id, int64_t timeout_ms, std::string& error) {
  jsCtx* js = jetstream();
  if (js == nullptr) {
    error = "JetStream is not available";
    return false;
  }
  natsMsg* m = nullptr;
  std::string subj(subject);
  natsStatus s = natsMsg_Create(&m, subj.c_str(), nullptr, data.data(), static_cast<int>(data.size()));
  for (size_t i = 0; s == NATS_OK && i < headers.size(); ++i) {
    s = natsMsgHeader_Add(m, headers[i].first.c_str(), headers[i].second.c_str());
  }
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

bool NatsClient::flush(int64_t timeout_ms) {
  return conn_ != nullptr && natsConnection_FlushTimeout(conn_, timeout_ms) == NATS_OK;
}

void NatsClient::drain(int64_t timeout_ms) {
  std::vector<natsSubscription*> subs;
  {
    std::lock_guard lock(mu_);
    for (auto& s : subs_) subs.push_back(s.sub);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (auto* s : subs) natsSubscription_Drain(s);
  for (auto* s : subs) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    natsSubscription_WaitForDrainCompletion(s, std::max<int64_t>(1, left.count()));
  }
  // Within the same deadline, not after it: callers give drain() their whole budget. A
  // flush needs the server's answer; while disconnected it could only wait out the deadline.
  if (connected()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    natsConnection_FlushTimeout(conn_, std::max<int64_t>(1, left.count()));
  }
}

bool NatsClient::connected() const {
  return conn_ != nullptr && natsConnection_Status(conn_) == NATS_CONN_STATUS_CONNECTED;
}

NatsClient::Counts NatsClient::counts() const {
  Counts c;
  if (conn_ == nullptr) return c;
  natsStatistics* st = nullptr;
  if (natsStatistics_Create(&st) != NATS_OK) return c;
  if (natsConnection_GetStats(conn_, st) == NATS_OK) {
    natsStatistics_GetCounts(st, &c.in_msgs, &c.in_bytes, &c.out_msgs, &c.out_bytes, &c.reconnects);
  }
  natsStatistics_Destroy(st);
  return c;
}

jsCtx* NatsClient::jetstream() {
  std::lock_guard lock(mu_);
  if (js_ == nullptr && conn_ != nullptr) natsConnection_JetStream(&js_, conn_, nullptr);
  return js_;
}

}  // namespace switchboard::router
