#include "controller/fleet_nats.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "core/route/table.h"
#include "kube/client.h"
#include "router/log.h"
#include "router/nats_client.h"

namespace switchboard::controller {

std::string NatsSettings::key() const {
  std::string all;
  auto add = [&](const std::string& s) {
    all += std::to_string(s.size());
    all += ':';
    all += s;
  };
  for (const auto& u : urls) add(u);
  add("|");
  for (const auto* s : {&user, &password, &token, &nkey_seed, &nkey_public, &creds, &tls_ca, &tls_cert, &tls_key}) {
    add(*s);
  }
  return route::sha256_hex(all);
}

bool nats_settings(kube::Client& client, const Json& router, NatsSettings& out, std::string& reason,
                   std::string& message) {
  const std::string ns = string_at(router, {"metadata", "namespace"});
  out = NatsSettings{};
  if (const Json* urls = find(router, {"spec", "nats", "urls"}); urls != nullptr && urls->is_array()) {
    for (const auto& u : urls->as_array()) {
      if (u.is_string()) out.urls.push_back(u.as_string());
    }
  }
  // One Secret read per reference; each key a Secret must hold is checked.
  auto read = [&](const char* field, Json& secret) {
    const std::string name = string_at(router, {"spec", "nats", field, "secretName"});
    if (name.empty()) return true;
    try {
      secret = client.get(kube::resources::kSecrets, ns, name);
      return true;
    } catch (const kube::ApiError& e) {
      if (!e.not_found()) throw;
      reason = "SecretNotFound";
      message = "Secret " + ns + "/" + name + " (spec.nats." + field + ".secretName) does not exist";
      return false;
    }
  };
  auto value = [&](const Json& secret, const char* field, const std::string& key, std::string& into) {
    if (key.empty()) return true;
    const Json* data = find(secret, {"data", key});
    std::optional<std::string> decoded;
    if (data != nullptr && data->is_string()) decoded = base64_decode(data->as_string());
    if (!decoded) {
      reason = "SecretKeyMissing";
      message = "Secret " + ns + "/" + string_at(secret, {"metadata", "name"}) + " has no key '" + key +
                "' (spec.nats." + field + ")";
      return false;
    }
    into = *decoded;
    return true;
  };
  Json auth, tls;
  if (!read("auth", auth) || !read("tls", tls)) return false;
  auto key = [&](const char* field, const char* name) { return string_at(router, {"spec", "nats", field, name}); };
  if (!auth.is_null()) {
    const std::string seed_key = key("auth", "nkeySeedKey");
    if (!value(auth, "auth", key("auth", "userKey"), out.user) ||
        !value(auth, "auth", key("auth", "passwordKey"), out.password) ||
        !value(auth, "auth", key("auth", "tokenKey"), out.token) ||
        !value(auth, "auth", seed_key, out.nkey_seed) ||
        !value(auth, "auth", seed_key.empty() ? "" : seed_key + ".pub", out.nkey_public) ||
        !value(auth, "auth", key("auth", "credsKey"), out.creds)) {
      return false;
    }
  }
  if (!tls.is_null()) {
    std::string ca_key = key("tls", "caKey");
    if (ca_key.empty()) ca_key = "ca.crt";
    if (!value(tls, "tls", ca_key, out.tls_ca) || !value(tls, "tls", key("tls", "certKey"), out.tls_cert) ||
        !value(tls, "tls", key("tls", "keyKey"), out.tls_key)) {
      return false;
    }
  }
  return true;
}

struct NatsFleet::Connection {
  router::NatsClient client;
  std::string dir;  // credential files; removed with the connection
  std::set<std::string> routers;
  std::string urls;  // for logs and status messages: user information redacted

  ~Connection() {
    if (!dir.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  }
};

namespace {

bool write_private(const std::string& path, const std::string& content, std::string& error) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    error = "cannot write " + path;
    return false;
  }
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n <= 0) {
      ::close(fd);
      error = "cannot write " + path;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return true;
}

}  // namespace

NatsFleet::NatsFleet(std::string name, OnHeartbeat on_heartbeat, router::Logger& log, int64_t stuck_after_ms)
    : name_(std::move(name)), on_heartbeat_(std::move(on_heartbeat)), log_(log), stuck_after_ms_(stuck_after_ms) {}

NatsFleet::~NatsFleet() {
  // Closing a connection ends its subscriptions; draining each first would only wait.
  std::lock_guard lock(mu_);
  watches_.clear();
  {
    std::lock_guard health(health_mu_);
    clients_.clear();
  }
  connections_.clear();
}

void NatsFleet::erase_locked(std::map<std::string, std::unique_ptr<Connection>>::iterator it) {
  {
    std::lock_guard health(health_mu_);
    const router::NatsClient* client = &it->second->client;
    std::erase_if(clients_, [client](const auto& entry) { return entry.second == client; });
  }
  connections_.erase(it);
}

std::string NatsFleet::stuck() const {
  const auto seconds = [](std::chrono::milliseconds ms) { return std::to_string(ms.count() / 1000) + "s"; };
  std::lock_guard health(health_mu_);
  for (const auto& [urls, client] : clients_) {
    if (auto waited = client->stuck_for(); waited.count() > 0) {
      return "the NATS client for " + urls + " has not answered for " + seconds(waited) +
             " (stuck while connecting to a server that does not answer); calls into it wait with it";
    }
  }
  if (connecting_since_ != std::chrono::steady_clock::time_point{}) {
    // A first connection is made by the NATS client's connect(): the same limit as its own.
    const int64_t limit =
        stuck_after_ms_ > 0 ? stuck_after_ms_ : std::max<int64_t>(10'000, 4 * router::NatsConfig{}.connect_timeout_ms);
    const auto waited =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - connecting_since_);
    if (waited.count() >= limit) {
      return "connecting to NATS at " + connecting_urls_ + " has not returned for " + seconds(waited) +
             " (a server that takes the TCP connection and never answers the CONNECT)";
    }
  }
  return "";
}

std::string NatsFleet::connection_problem(const std::string& router_key) const {
  std::lock_guard lock(mu_);
  auto w = watches_.find(router_key);
  if (w == watches_.end()) return "";
  auto c = connections_.find(w->second.connection);
  if (c == connections_.end() || c->second->client.connected()) return "";
  const std::string reason = c->second->client.closed_reason();
  return "the controller is not connected to NATS at " + c->second->urls +
         " (it keeps trying; a server that hangs up without a reason, as on a TLS client certificate it does not "
         "accept, looks like this)" +
         (reason.empty() ? "" : ": " + reason);
}

std::string NatsFleet::watch(const std::string& router_key, const std::string& subject, const NatsSettings& settings) {
  const std::string key = settings.key();
  std::lock_guard lock(mu_);
  auto w = watches_.find(router_key);
  if (w != watches_.end() && w->second.connection == key && w->second.subject == subject) return "";
  release_locked(router_key);

  auto it = connections_.find(key);
  if (it == connections_.end()) {
    auto conn = std::make_unique<Connection>();
    router::NatsConfig config;
    config.urls = settings.urls;
    config.name = name_;
    config.user = settings.user;
    config.password = settings.password;
    config.token = settings.token;
    for (size_t i = 0; i < settings.urls.size(); ++i) {
      conn->urls += (i ? "," : "") + router::redact_url_credentials(settings.urls[i]);
    }
    std::string error;
    const bool files = !settings.nkey_seed.empty() || !settings.creds.empty() || !settings.tls_ca.empty() ||
                       !settings.tls_cert.empty();
    if (files) {
      const char* tmp = std::getenv("TMPDIR");
      std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/switchboard-nats-XXXXXX";
      if (::mkdtemp(pattern.data()) == nullptr) return "cannot make a folder for NATS credentials under " + pattern;
      conn->dir = pattern;
      auto file = [&](const std::string& content, const char* name, std::string& path) {
        if (content.empty()) return true;
        path = conn->dir + "/" + name;
        return write_private(path, content, error);
      };
      std::string pub_path;
      if (!file(settings.nkey_seed, "nkey.seed", config.nkey_seed_file) ||
          !file(settings.nkey_public, "nkey.seed.pub", pub_path) || !file(settings.creds, "user.creds", config.creds_file) ||
          !file(settings.tls_ca, "ca.crt", config.tls_ca_file) || !file(settings.tls_cert, "tls.crt", config.tls_cert_file) ||
          !file(settings.tls_key, "tls.key", config.tls_key_file)) {
        return error;
      }
    }
    config.stuck_after_ms = stuck_after_ms_;
    {
      std::lock_guard health(health_mu_);
      connecting_urls_ = conn->urls;
      connecting_since_ = std::chrono::steady_clock::now();
    }
    const bool connected = conn->client.connect(config, error);
    {
      std::lock_guard health(health_mu_);
      connecting_since_ = {};
      if (connected) clients_.emplace_back(conn->urls, &conn->client);
    }
    if (!connected) return "NATS " + conn->urls + ": " + error;
    log_.info("connected to NATS", {{"urls", conn->urls}});
    it = connections_.emplace(key, std::move(conn)).first;
  }
  Connection& conn = *it->second;
  std::string error;
  auto on_heartbeat = on_heartbeat_;
  uint64_t sub = conn.client.subscribe(
      subject, "", [on_heartbeat, router_key](const router::NatsMessage& m) { on_heartbeat(router_key, m.data); },
      error);
  if (sub == 0) {
    if (conn.routers.empty()) erase_locked(it);
    return error;
  }
  conn.routers.insert(router_key);
  watches_[router_key] = Watch{key, subject, sub};
  // So that the server has the subscription when this returns (when connected at all).
  if (conn.client.connected()) conn.client.flush(2000);
  return "";
}

void NatsFleet::release_locked(const std::string& router_key) {
  auto w = watches_.find(router_key);
  if (w == watches_.end()) return;
  auto c = connections_.find(w->second.connection);
  if (c != connections_.end()) {
    c->second->routers.erase(router_key);
    if (c->second->routers.empty()) {
      log_.info("closing NATS connection: no router uses it", {{"urls", c->second->urls}});
      erase_locked(c);
    } else {
      c->second->client.unsubscribe(w->second.subscription);
    }
  }
  watches_.erase(w);
}

void NatsFleet::forget(const std::string& router_key) {
  std::lock_guard lock(mu_);
  release_locked(router_key);
}

bool NatsFleet::watching(const std::string& router_key) const {
  std::lock_guard lock(mu_);
  return watches_.count(router_key) > 0;
}

std::string NatsFleet::delete_consumer(const std::string& router_key, const std::string& stream,
                                       const std::string& durable) {
  // Held throughout: a JetStream request waits a few seconds at most, and the connection
  // must not close under it.
  std::lock_guard lock(mu_);
  auto w = watches_.find(router_key);
  if (w == watches_.end()) return "no NATS connection for router " + router_key;
  Connection& conn = *connections_.at(w->second.connection);
  if (!conn.client.connected()) return "not connected to NATS (" + conn.urls + ")";
  jsCtx* js = conn.client.jetstream();
  if (js == nullptr) return "no JetStream context on the connection to " + conn.urls;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_DeleteConsumer(js, stream.c_str(), durable.c_str(), nullptr, &code);
  if (s == NATS_OK || s == NATS_NOT_FOUND || code == JSConsumerNotFoundErr || code == JSStreamNotFoundErr) return "";
  std::string text = natsStatus_GetText(s);
  const char* last = nats_GetLastError(nullptr);
  if (last != nullptr && *last != '\0' && text != last) text += std::string(": ") + last;
  return "deleting consumer '" + durable + "' of stream '" + stream + "': " + text;
}

size_t NatsFleet::connections() const {
  std::lock_guard lock(mu_);
  return connections_.size();
}

}  // namespace switchboard::controller
