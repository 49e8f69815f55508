// The real Client: HTTP/1.1 over cpprestsdk, JSON in and out, every failure an ApiError.
#include "kube/client.h"

#include <sys/stat.h>

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>

#include <boost/asio/ssl.hpp>
#include <cpprest/containerstream.h>
#include <cpprest/http_client.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

namespace switchboard::kube {

namespace {

std::string describe(int status, const std::string& reason, const std::string& message) {
  if (status == 0) return "Kubernetes API unreachable: " + message;
  std::string s = "Kubernetes API error " + std::to_string(status);
  if (!reason.empty()) s += " " + reason;
  return s + ": " + message;
}

}  // namespace

ApiError::ApiError(int status, std::string reason, std::string message)
    : std::runtime_error(describe(status, reason, message)),
      status_(status),
      reason_(std::move(reason)),
      message_(std::move(message)) {}

namespace {

using web::http::http_request;
using web::http::http_response;
using web::http::methods;
namespace http_client = web::http::client;

constexpr const char* kFieldManager = "switchboard";
constexpr const char* kUserAgent = "switchboard/0.1 (cpprestsdk)";

// The reason the API server would give for a status, for answers that carry no Status
// object (a proxy in between, an HTML error page).
std::string reason_for(int status) {
  switch (status) {
    case 400: return "BadRequest";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 406: return "NotAcceptable";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "RequestEntityTooLarge";
    case 415: return "UnsupportedMediaType";
    case 422: return "Invalid";
    case 429: return "TooManyRequests";
    case 500: return "InternalError";
    case 503: return "ServiceUnavailable";
    case 504: return "Timeout";
    default: return "";
  }
}

std::string string_field(const Object& obj, const char* key) {
  if (!obj.is_object() || !obj.has_field(key)) return "";
  const Object& v = obj.at(key);
  return v.is_string() ? v.as_string() : "";
}

// The error for a status and body: the Status object's reason and message when the body
// is one.
ApiError error_from(int status, const std::string& body) {
  std::error_code ec;
  Object parsed = Object::parse(body, ec);
  if (!ec && parsed.is_object() && string_field(parsed, "kind") == "Status") {
    std::string reason = string_field(parsed, "reason");
    std::string message = string_field(parsed, "message");
    if (reason.empty()) reason = reason_for(status);
    if (message.empty()) message = body;
    return ApiError(status, reason, message);
  }
  std::string text = body.size() > 512 ? body.substr(0, 512) + "..." : body;
  if (text.empty()) text = "(empty body)";
  return ApiError(status, reason_for(status), text);
}

// The ERROR event of a watch: a Status object with its own code.
ApiError error_from_status_object(const Object& status) {
  int code = 500;
  if (status.is_object() && status.has_field("code") && status.at("code").is_integer()) {
    code = status.at("code").as_integer();
  }
  std::string reason = string_field(status, "reason");
  if (reason.empty()) reason = reason_for(code);
  std::string message = string_field(status, "message");
  if (message.empty()) message = "watch ended with an ERROR event: " + status.serialize();
  return ApiError(code, reason, message);
}

std::string with_query(const std::string& path, const std::vector<std::pair<std::string, std::string>>& query) {
  web::uri_builder b(path);
  for (const auto& [k, v] : query) b.append_query(k, v, true);
  return b.to_string();
}

// List items come without apiVersion and kind for built-in types; fill them so that
// every object a caller sees is complete.
void fill_type(Object& obj, const Resource& r) {
  if (!obj.is_object()) return;
  if (!obj.has_field("apiVersion")) obj["apiVersion"] = Object::string(r.api_version());
  if (!obj.has_field("kind")) obj["kind"] = Object::string(r.kind);
}

std::string trim(std::string s) {
  const char* ws = " \t\r\n";
  s.erase(s.find_last_not_of(ws) + 1);
  s.erase(0, s.find_first_not_of(ws));
  return s;
}

// Set by a task continuation, waited for by the calling thread with a timeout, so that
// the calling thread can look at its stop flag while a read is pending.
struct Signal {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  void set() {
    std::lock_guard lock(mu);
    done = true;
    cv.notify_all();
  }
  bool wait_for(std::chrono::milliseconds d) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, d, [&] { return done; });
  }
};

// Waits for t, looking at stop every 100 ms; false when stop became true first. The
// continuation owns everything it touches, so giving up on t is safe.
template <class T>
bool wait_or_stop(const pplx::task<T>& t, const std::atomic<bool>& stop) {
  auto signal = std::make_shared<Signal>();
  // wait() observes a failure: pplx raises SIGTRAP when a task whose exception nobody
  // looked at is destroyed, which is what a cancelled watch read leaves behind.
  t.then([signal](pplx::task<T> done) {
    try {
      done.wait();
    } catch (...) {
    }
    signal->set();
  });
  while (!signal->wait_for(std::chrono::milliseconds(100))) {
    if (stop.load()) return false;
  }
  return true;
}

const char* propagation_name(Propagation p) {
  switch (p) {
    case Propagation::Foreground: return "Foreground";
    case Propagation::Orphan: return "Orphan";
    case Propagation::Background: break;
  }
  return "Background";
}

class RealClient final : public Client {
 public:
  RealClient(const Config& config, const ClientOptions& options);

  Object get(const Resource& r, const std::string& ns, const std::string& name) override;
  ObjectList list(const Resource& r, const std::string& ns, const ListOptions& opts) override;
  std::string watch(const Resource& r, const std::string& ns, const ListOptions& opts,
                    const std::string& resource_version,
                    const std::function<WatchControl(const WatchEvent&)>& on_event,
                    const std::atomic<bool>& stop) override;
  Object apply(const Resource& r, const Object& obj) override;
  Object apply_status(const Resource& r, const Object& obj) override;
  Object replace_status(const Resource& r, const Object& obj) override;
  Object replace(const Resource& r, const Object& obj) override;
  Object merge_patch(const Resource& r, const std::string& ns, const std::string& name,
                     const Object& patch) override;
  Object create(const Resource& r, const std::string& ns, const Object& obj) override;
  bool remove(const Resource& r, const std::string& ns, const std::string& name,
              Propagation propagation) override;
  Object create_subresource(const Resource& r, const std::string& ns, const std::string& name,
                            const std::string& subresource, const Object& body) override;

 private:
  struct Reply {
    int status = 0;
    std::string body;
  };

  http_request make_request(const web::http::method& method, const std::string& path_query,
                            const std::string* body, const std::string& content_type);
  Reply send(const web::http::method& method, const std::string& path_query, const std::string* body = nullptr,
             const std::string& content_type = "application/json");
  // send(), then an ApiError for anything but 2xx, else the body as JSON.
  Object call(const web::http::method& method, const std::string& path_query, const std::string* body = nullptr,
              const std::string& content_type = "application/json");
  Object do_apply(const Resource& r, const Object& obj, const std::string& subresource);
  Object put(const Resource& r, const Object& obj, const std::string& subresource);
  std::string object_namespace(const Resource& r, const Object& obj) const;
  std::string bearer_token();
  std::chrono::seconds next_watch_timeout();
  ApiError transport_error(const web::http::method& method, const std::string& path_query,
                           const std::string& what) const {
    return ApiError(0, "", method + " " + config_.server + path_query + ": " + what);
  }

  Config config_;
  ClientOptions options_;
  std::unique_ptr<http_client::http_client> http_;
  // Watches get their own client: its timeout is an inactivity timeout that must outlast
  // the quietest watch.
  std::unique_ptr<http_client::http_client> watch_http_;

  std::mutex token_mu_;
  std::string token_;
  struct stat token_stat_ {};
  std::chrono::steady_clock::time_point token_read_at_{};

  std::mutex rng_mu_;
  std::mt19937 rng_{std::random_device{}()};
};

// Applies the configuration's trust and client certificate to a TLS context. Throws
// (boost::system::system_error) when the PEM does not parse.
void configure_tls(boost::asio::ssl::context& ctx, const Config& config) {
  if (!config.ca_pem.empty() && !config.insecure_skip_tls_verify) {
    // Trust exactly the configured CA, not the system's bundle as well: a kubeconfig that
    // names a CA means that CA.
    SSL_CTX_set_cert_store(ctx.native_handle(), X509_STORE_new());
    ctx.add_certificate_authority(boost::asio::buffer(config.ca_pem));
  }
  if (!config.client_cert_pem.empty()) {
    ctx.use_certificate_chain(boost::asio::buffer(config.client_cert_pem));
    ctx.use_private_key(boost::asio::buffer(config.client_key_pem), boost::asio::ssl::context::pem);
  }
}

http_client::http_client_config http_config(const Config& config, std::chrono::milliseconds timeout) {
  http_client::http_client_config hc;
  hc.set_timeout(timeout);
  hc.set_validate_certificates(!config.insecure_skip_tls_verify);
  hc.set_ssl_context_callback([config](boost::asio::ssl::context& ctx) {
    try {
      configure_tls(ctx, config);
    } catch (const std::exception&) {
      // Checked in the constructor; a context that still fails here only makes the
      // handshake fail, which the request reports.
    }
  });
  return hc;
}

RealClient::RealClient(const Config& config, const ClientOptions& options) : config_(config), options_(options) {
  if (config_.server.empty()) throw ConfigError("Kubernetes client: no server configured");
  if (config_.server.rfind("https://", 0) != 0 && config_.server.rfind("http://", 0) != 0) {
    throw ConfigError("Kubernetes client: server '" + config_.server + "' is not an http:// or https:// URL");
  }
  if (config_.client_cert_pem.empty() != config_.client_key_pem.empty()) {
    throw ConfigError("Kubernetes client: a client certificate needs a client key and the other way round");
  }
  try {
    boost::asio::ssl::context probe(boost::asio::ssl::context::sslv23);
    configure_tls(probe, config_);
  } catch (const std::exception& e) {
    throw ConfigError(std::string("Kubernetes client: the CA or client certificate does not load: ") + e.what());
  }
  const auto max_watch = options_.watch_timeout.count() > 0 ? options_.watch_timeout : std::chrono::seconds(600);
  try {
    http_ = std::make_unique<http_client::http_client>(
        config_.server, http_config(config_, std::chrono::milliseconds(config_.timeout_ms)));
    watch_http_ = std::make_unique<http_client::http_client>(
        config_.server, http_config(config_, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 max_watch + std::chrono::seconds(60))));
  } catch (const std::exception& e) {
    throw ConfigError("Kubernetes client: server '" + config_.server + "': " + e.what());
  }
}

std::string RealClient::bearer_token() {
  if (!config_.token.empty()) return config_.token;
  if (config_.token_file.empty()) return "";
  std::lock_guard lock(token_mu_);
  struct stat st {};
  if (::stat(config_.token_file.c_str(), &st) != 0) {
    // Mid-rotation the file can be missing for an instant; the last token still works.
    if (!token_.empty()) return token_;
    throw ApiError(0, "", "cannot read the token file " + config_.token_file);
  }
  const auto now = std::chrono::steady_clock::now();
  // Re-read when the file changed (a rotation replaces it, or the symlink it sits
  // behind), and at least every minute in case a change kept size and time.
  const bool changed = st.st_dev != token_stat_.st_dev || st.st_ino != token_stat_.st_ino ||
                       st.st_size != token_stat_.st_size || st.st_mtim.tv_sec != token_stat_.st_mtim.tv_sec ||
                       st.st_mtim.tv_nsec != token_stat_.st_mtim.tv_nsec;
  if (changed || token_.empty() || now - token_read_at_ > std::chrono::minutes(1)) {
    std::ifstream in(config_.token_file, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    std::string token = trim(s.str());
    if (!token.empty()) {
      token_ = std::move(token);
      token_stat_ = st;
      token_read_at_ = now;
    } else if (token_.empty()) {
      throw ApiError(0, "", "the token file " + config_.token_file + " is empty");
    }
  }
  return token_;
}

http_request RealClient::make_request(const web::http::method& method, const std::string& path_query,
                                      const std::string* body, const std::string& content_type) {
  http_request req(method);
  req.set_request_uri(path_query);
  req.headers().add("Accept", "application/json");
  req.headers().add("User-Agent", kUserAgent);
  if (std::string token = bearer_token(); !token.empty()) req.headers().add("Authorization", "Bearer " + token);
  if (body) req.set_body(*body, content_type);
  return req;
}

RealClient::Reply RealClient::send(const web::http::method& method, const std::string& path_query,
                                   const std::string* body, const std::string& content_type) {
  http_request req = make_request(method, path_query, body, content_type);
  try {
    http_response resp = http_->request(req).get();
    Reply reply;
    reply.status = resp.status_code();
    reply.body = resp.extract_utf8string(true).get();
    return reply;
  } catch (const web::http::http_exception& e) {
    throw transport_error(method, path_query, e.what());
  } catch (const pplx::task_canceled&) {
    throw transport_error(method, path_query, "request canceled (timeout)");
  } catch (const std::system_error& e) {
    throw transport_error(method, path_query, e.what());
  }
}

Object RealClient::call(const web::http::method& method, const std::string& path_query, const std::string* body,
                        const std::string& content_type) {
  Reply reply = send(method, path_query, body, content_type);
  if (reply.status < 200 || reply.status >= 300) throw error_from(reply.status, reply.body);
  if (reply.body.empty()) return Object::null();
  std::error_code ec;
  Object parsed = Object::parse(reply.body, ec);
  if (ec) {
    throw ApiError(500, "InternalError", method + " " + path_query + ": the answer is not JSON: " + ec.message());
  }
  return parsed;
}

Object RealClient::get(const Resource& r, const std::string& ns, const std::string& name) {
  Object obj = call(methods::GET, r.path(ns, name));
  fill_type(obj, r);
  return obj;
}

ObjectList RealClient::list(const Resource& r, const std::string& ns, const ListOptions& opts) {
  ObjectList out;
  bool paginate = opts.limit > 0;
  std::string cont;
  for (;;) {
    std::vector<std::pair<std::string, std::string>> query;
    if (!opts.label_selector.empty()) query.emplace_back("labelSelector", opts.label_selector);
    if (!opts.field_selector.empty()) query.emplace_back("fieldSelector", opts.field_selector);
    if (paginate) {
      query.emplace_back("limit", std::to_string(opts.limit));
      if (!cont.empty()) query.emplace_back("continue", cont);
    }
    Object page;
    try {
      page = call(methods::GET, with_query(r.path(ns), query));
    } catch (const ApiError& e) {
      if (e.gone() && !cont.empty()) {
        // The continue token expired (its snapshot was compacted): a consistent list is
        // only possible in one go now.
        out = ObjectList{};
        cont.clear();
        paginate = false;
        continue;
      }
      throw;
    }
    if (page.has_array_field("items")) {
      for (auto& item : page.at("items").as_array()) {
        fill_type(item, r);
        out.items.push_back(std::move(item));
      }
    }
    const Object empty;
    const Object& md = page.has_object_field("metadata") ? page.at("metadata") : empty;
    // Every page carries the resourceVersion of the first page's snapshot.
    if (out.resource_version.empty()) out.resource_version = string_field(md, "resourceVersion");
    cont = string_field(md, "continue");
    if (cont.empty() || !paginate) break;
  }
  return out;
}

std::chrono::seconds RealClient::next_watch_timeout() {
  if (options_.watch_timeout.count() > 0) return options_.watch_timeout;
  std::lock_guard lock(rng_mu_);
  return std::chrono::seconds(std::uniform_int_distribution<int64_t>(300, 599)(rng_));
}

std::string RealClient::watch(const Resource& r, const std::string& ns, const ListOptions& opts,
                              const std::string& resource_version,
                              const std::function<WatchControl(const WatchEvent&)>& on_event,
                              const std::atomic<bool>& stop) {
  std::string last_rv = resource_version;
  if (stop.load()) return last_rv;
  std::vector<std::pair<std::string, std::string>> query = {{"watch", "true"}, {"allowWatchBookmarks", "true"}};
  if (!resource_version.empty()) query.emplace_back("resourceVersion", resource_version);
  query.emplace_back("timeoutSeconds", std::to_string(next_watch_timeout().count()));
  if (!opts.label_selector.empty()) query.emplace_back("labelSelector", opts.label_selector);
  if (!opts.field_selector.empty()) query.emplace_back("fieldSelector", opts.field_selector);
  const std::string path_query = with_query(r.path(ns), query);

  // Cancelling closes the connection, which ends any read in progress: a stop never
  // waits for the server.
  pplx::cancellation_token_source cts;
  struct CancelOnExit {
    pplx::cancellation_token_source& cts;
    ~CancelOnExit() { cts.cancel(); }
  } cancel_on_exit{cts};

  http_request req = make_request(methods::GET, path_query, nullptr, "");
  auto response_task = watch_http_->request(req, cts.get_token());
  if (!wait_or_stop(response_task, stop)) return last_rv;
  http_response response;
  try {
    response = response_task.get();
  } catch (const web::http::http_exception& e) {
    throw transport_error(methods::GET, path_query, e.what());
  } catch (const pplx::task_canceled&) {
    throw transport_error(methods::GET, path_query, "request canceled");
  }
  if (response.status_code() != 200) {
    auto body_task = response.extract_utf8string(true);
    if (!wait_or_stop(body_task, stop)) return last_rv;
    std::string body;
    try {
      body = body_task.get();
    } catch (const std::exception&) {
    }
    throw error_from(response.status_code(), body);
  }

  // One JSON event per line, read as the chunks arrive.
  auto body = response.body();
  for (;;) {
    if (stop.load()) return last_rv;
    concurrency::streams::container_buffer<std::string> line_buf;
    auto read = body.read_line(line_buf);
    if (!wait_or_stop(read, stop)) return last_rv;
    size_t n = 0;
    try {
      n = read.get();
    } catch (const std::exception&) {
      // The connection broke mid-stream (server gone, idle timeout). Like the server
      // ending the stream, this hands back what was seen: the caller watches again from
      // there, and if the server is really gone that new request fails.
      return last_rv;
    }
    std::string line = std::move(line_buf.collection());
    if (n == 0 && line.empty()) {
      if (body.is_eof()) return last_rv;
      continue;
    }
    std::error_code ec;
    Object event = Object::parse(line, ec);
    if (ec || !event.is_object()) {
      throw ApiError(500, "InternalError", "watch " + r.path(ns) + ": an event is not JSON: " + line.substr(0, 200));
    }
    const std::string type = string_field(event, "type");
    Object object = event.has_field("object") ? event.at("object") : Object::null();
    if (type == "ERROR") throw error_from_status_object(object);
    WatchEvent ev;
    if (type == "ADDED") {
      ev.type = WatchEvent::Type::Added;
    } else if (type == "MODIFIED") {
      ev.type = WatchEvent::Type::Modified;
    } else if (type == "DELETED") {
      ev.type = WatchEvent::Type::Deleted;
    } else if (type == "BOOKMARK") {
      ev.type = WatchEvent::Type::Bookmark;
    } else {
      continue;  // a type from a newer server: nothing to do with it
    }
    if (ev.type != WatchEvent::Type::Bookmark) fill_type(object, r);
    if (std::string rv = resource_version_of(object); !rv.empty()) last_rv = rv;
    ev.object = std::move(object);
    if (on_event(ev) == WatchControl::Stop) return last_rv;
  }
}

std::string RealClient::object_namespace(const Resource& r, const Object& obj) const {
  if (!r.namespaced) return "";
  std::string ns = namespace_of(obj);
  return ns.empty() ? config_.ns : ns;
}

Object RealClient::do_apply(const Resource& r, const Object& obj, const std::string& subresource) {
  const std::string name = name_of(obj);
  if (name.empty()) throw ApiError(400, "BadRequest", "apply " + r.plural + ": the object has no metadata.name");
  Object body = obj;
  fill_type(body, r);
  // JSON is YAML, so the apply-patch+yaml content type takes the JSON text as it is.
  const std::string text = body.serialize();
  Object stored = call(methods::PATCH,
                       with_query(r.path(object_namespace(r, obj), name, subresource),
                                  {{"fieldManager", kFieldManager}, {"force", "true"}}),
                       &text, "application/apply-patch+yaml");
  fill_type(stored, r);
  return stored;
}

Object RealClient::apply(const Resource& r, const Object& obj) { return do_apply(r, obj, ""); }

Object RealClient::apply_status(const Resource& r, const Object& obj) { return do_apply(r, obj, "status"); }

Object RealClient::put(const Resource& r, const Object& obj, const std::string& subresource) {
  const std::string name = name_of(obj);
  if (name.empty()) throw ApiError(400, "BadRequest", "PUT " + r.plural + ": the object has no metadata.name");
  Object body = obj;
  fill_type(body, r);
  const std::string text = body.serialize();
  Object stored = call(methods::PUT, r.path(object_namespace(r, obj), name, subresource), &text);
  fill_type(stored, r);
  return stored;
}

Object RealClient::replace_status(const Resource& r, const Object& obj) { return put(r, obj, "status"); }

Object RealClient::replace(const Resource& r, const Object& obj) { return put(r, obj, ""); }

Object RealClient::merge_patch(const Resource& r, const std::string& ns, const std::string& name,
                               const Object& patch) {
  const std::string text = patch.serialize();
  Object stored = call(methods::PATCH, r.path(ns, name), &text, "application/merge-patch+json");
  fill_type(stored, r);
  return stored;
}

Object RealClient::create(const Resource& r, const std::string& ns, const Object& obj) {
  Object body = obj;
  fill_type(body, r);
  const std::string text = body.serialize();
  Object stored = call(methods::POST, r.path(ns.empty() ? object_namespace(r, obj) : ns), &text);
  fill_type(stored, r);
  return stored;
}

bool RealClient::remove(const Resource& r, const std::string& ns, const std::string& name,
                        Propagation propagation) {
  Object options = Object::object();
  options["apiVersion"] = Object::string("v1");
  options["kind"] = Object::string("DeleteOptions");
  options["propagationPolicy"] = Object::string(propagation_name(propagation));
  const std::string text = options.serialize();
  Reply reply = send(methods::DEL, r.path(ns, name), &text);
  if (reply.status == 404) return false;
  if (reply.status < 200 || reply.status >= 300) throw error_from(reply.status, reply.body);
  return true;
}

Object RealClient::create_subresource(const Resource& r, const std::string& ns, const std::string& name,
                                      const std::string& subresource, const Object& body) {
  const std::string text = body.serialize();
  return call(methods::POST, r.path(ns, name, subresource), &text);
}

}  // namespace

Object Client::replace(const Resource& r, const Object& obj) {
  return merge_patch(r, r.namespaced ? namespace_of(obj) : "", name_of(obj), obj);
}

std::unique_ptr<Client> make_client(const Config& config) { return make_client(config, ClientOptions{}); }

std::unique_ptr<Client> make_client(const Config& config, const ClientOptions& options) {
  return std::make_unique<RealClient>(config, options);
}

std::optional<Object> update_status_with_retry(Client& client, const Resource& r, const std::string& ns,
                                               const std::string& name,
                                               const std::function<bool(Object&)>& mutate, int attempts) {
  for (int attempt = 1;; ++attempt) {
    Object obj;
    try {
      obj = client.get(r, ns, name);
    } catch (const ApiError& e) {
      if (e.not_found()) return std::nullopt;
      throw;
    }
    if (!mutate(obj)) return std::nullopt;
    try {
      return client.replace_status(r, obj);
    } catch (const ApiError& e) {
      if (e.not_found()) return std::nullopt;
      if (!e.conflict() || attempt >= attempts) throw;
    }
  }
}

}  // namespace switchboard::kube
