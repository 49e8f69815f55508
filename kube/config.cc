// Kubeconfig files and the in-cluster service account, turned into a Config.
#include "kube/config.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include <cpprest/asyncrt_utils.h>

namespace switchboard::kube {
namespace {

namespace fs = std::filesystem;

std::string read_whole_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(what + ": cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string trim(std::string s) {
  const char* ws = " \t\r\n";
  s.erase(s.find_last_not_of(ws) + 1);
  s.erase(0, s.find_first_not_of(ws));
  return s;
}

// One named entry of a kubeconfig (a cluster, a user or a context) and the file it came
// from, which relative paths in it are relative to.
struct Entry {
  YAML::Node body;
  std::string file;
};

// One or more kubeconfig files merged as kubectl merges $KUBECONFIG: the first file to
// name a cluster, user or context wins, and the first current-context set wins.
struct Kubeconfig {
  std::map<std::string, Entry> clusters, users, contexts;
  std::string current_context;
  std::string files;  // for messages
};

void add_named(const YAML::Node& list, const char* section, const char* body_key, const std::string& file,
               std::map<std::string, Entry>& into) {
  if (!list) return;
  if (!list.IsSequence()) throw ConfigError("kubeconfig " + file + ": '" + section + "' is not a list");
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node& item = list[i];
    const std::string where = "kubeconfig " + file + ": " + section + "[" + std::to_string(i) + "]";
    if (!item.IsMap() || !item["name"] || !item["name"].IsScalar()) throw ConfigError(where + " has no name");
    std::string name = item["name"].as<std::string>();
    if (!item[body_key] || !item[body_key].IsMap()) {
      throw ConfigError(where + " ('" + name + "') has no '" + body_key + "' map");
    }
    into.try_emplace(name, Entry{item[body_key], file});
  }
}

void merge_file(const std::string& path, Kubeconfig& kc) {
  YAML::Node root;
  try {
    root = YAML::Load(read_whole_file(path, "kubeconfig"));
  } catch (const YAML::Exception& e) {
    throw ConfigError("kubeconfig " + path + ": not valid YAML: " + e.what());
  }
  if (!root.IsMap()) throw ConfigError("kubeconfig " + path + ": not a YAML map");
  add_named(root["clusters"], "clusters", "cluster", path, kc.clusters);
  add_named(root["users"], "users", "user", path, kc.users);
  add_named(root["contexts"], "contexts", "context", path, kc.contexts);
  if (kc.current_context.empty() && root["current-context"] && root["current-context"].IsScalar()) {
    kc.current_context = root["current-context"].as<std::string>();
  }
  kc.files += (kc.files.empty() ? "" : ":") + path;
}

std::string scalar(const Entry& e, const char* key, const std::string& where) {
  const YAML::Node n = e.body[key];
  if (!n || n.IsNull()) return "";
  if (!n.IsScalar()) throw ConfigError(where + ": '" + key + "' is not a string");
  return n.as<std::string>();
}

bool boolean(const Entry& e, const char* key, const std::string& where) {
  const YAML::Node n = e.body[key];
  if (!n || n.IsNull()) return false;
  try {
    return n.as<bool>();
  } catch (const YAML::Exception&) {
    throw ConfigError(where + ": '" + key + "' is not true or false");
  }
}

// A path in a kubeconfig is relative to the folder of the file that holds it.
std::string resolve_path(const std::string& p, const Entry& e) {
  if (p.empty() || fs::path(p).is_absolute()) return p;
  return (fs::path(e.file).parent_path() / p).lexically_normal().string();
}

std::string decode_base64(const std::string& data, const std::string& where, const char* key) {
  try {
    auto bytes = utility::conversions::from_base64(trim(data));
    return std::string(bytes.begin(), bytes.end());
  } catch (const std::exception& ex) {
    throw ConfigError(where + ": '" + key + "' is not valid base64: " + ex.what());
  }
}

// PEM text from `<key>-data` (base64) or the file named by `<key>`; data wins, as in
// kubectl.
std::string pem_from(const Entry& e, const std::string& key, const std::string& where) {
  std::string data = scalar(e, (key + "-data").c_str(), where);
  if (!data.empty()) return decode_base64(data, where, (key + "-data").c_str());
  std::string file = resolve_path(scalar(e, key.c_str(), where), e);
  if (file.empty()) return "";
  return read_whole_file(file, where + ": " + key);
}

Config resolve(const Kubeconfig& kc, const std::string& context_name) {
  const std::string ctx_name = context_name.empty() ? kc.current_context : context_name;
  if (ctx_name.empty()) {
    throw ConfigError("kubeconfig " + kc.files + ": no context given and no current-context set");
  }
  auto ctx_it = kc.contexts.find(ctx_name);
  if (ctx_it == kc.contexts.end()) {
    throw ConfigError("kubeconfig " + kc.files + ": context '" + ctx_name + "' not found");
  }
  const Entry& ctx = ctx_it->second;
  const std::string ctx_where = "kubeconfig " + ctx.file + ": context '" + ctx_name + "'";
  const std::string cluster_name = scalar(ctx, "cluster", ctx_where);
  const std::string user_name = scalar(ctx, "user", ctx_where);
  if (cluster_name.empty()) throw ConfigError(ctx_where + " names no cluster");

  Config cfg;
  std::string ns = scalar(ctx, "namespace", ctx_where);
  if (!ns.empty()) cfg.ns = ns;

  auto cl_it = kc.clusters.find(cluster_name);
  if (cl_it == kc.clusters.end()) {
    throw ConfigError(ctx_where + ": cluster '" + cluster_name + "' not found in " + kc.files);
  }
  const Entry& cluster = cl_it->second;
  const std::string cl_where = "kubeconfig " + cluster.file + ": cluster '" + cluster_name + "'";
  cfg.server = scalar(cluster, "server", cl_where);
  if (cfg.server.empty()) throw ConfigError(cl_where + " has no server");
  if (cfg.server.rfind("https://", 0) != 0 && cfg.server.rfind("http://", 0) != 0) {
    throw ConfigError(cl_where + ": server '" + cfg.server + "' is not an http:// or https:// URL");
  }
  while (cfg.server.size() > 1 && cfg.server.back() == '/') cfg.server.pop_back();
  cfg.insecure_skip_tls_verify = boolean(cluster, "insecure-skip-tls-verify", cl_where);
  cfg.ca_pem = pem_from(cluster, "certificate-authority", cl_where);
  if (cluster.body["proxy-url"]) throw ConfigError(cl_where + ": proxy-url is not supported");

  if (!user_name.empty()) {
    auto u_it = kc.users.find(user_name);
    if (u_it == kc.users.end()) {
      throw ConfigError(ctx_where + ": user '" + user_name + "' not found in " + kc.files);
    }
    const Entry& user = u_it->second;
    const std::string u_where = "kubeconfig " + user.file + ": user '" + user_name + "'";
    cfg.client_cert_pem = pem_from(user, "client-certificate", u_where);
    cfg.client_key_pem = pem_from(user, "client-key", u_where);
    if (cfg.client_cert_pem.empty() != cfg.client_key_pem.empty()) {
      throw ConfigError(u_where + ": " +
                        (cfg.client_cert_pem.empty() ? "client-key without client-certificate"
                                                     : "client-certificate without client-key"));
    }
    cfg.token = trim(scalar(user, "token", u_where));
    cfg.token_file = resolve_path(scalar(user, "tokenFile", u_where), user);
    if (!cfg.token_file.empty() && cfg.token.empty()) {
      // Read once now so that a wrong path fails here and not at the first request.
      read_whole_file(cfg.token_file, u_where + ": tokenFile");
    }
    const bool has_auth = !cfg.client_cert_pem.empty() || !cfg.token.empty() || !cfg.token_file.empty();
    if (!has_auth) {
      for (const char* unsupported : {"exec", "auth-provider", "username"}) {
        if (user.body[unsupported]) {
          throw ConfigError(u_where + " authenticates with '" + unsupported +
                            "', which Switchboard does not support (use a client certificate or a token)");
        }
      }
    }
  }
  return cfg;
}

std::vector<std::string> split_path_list(const std::string& list) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(list);
  while (std::getline(in, item, ':')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace

Config load_kubeconfig(const std::string& path, const std::string& context) {
  Kubeconfig kc;
  merge_file(path, kc);
  return resolve(kc, context);
}

Config in_cluster_config(const std::string& sa_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !*host || !port || !*port) {
    throw ConfigError("not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set");
  }
  Config cfg;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6
  cfg.server = "https://" + h + ":" + port;
  const std::string where = "in-cluster config (" + sa_dir + ")";
  // The token is re-read by the client when the file changes; read it now only to fail
  // early when the service account is not mounted.
  cfg.token_file = sa_dir + "/token";
  if (trim(read_whole_file(cfg.token_file, where + ": service account token")).empty()) {
    throw ConfigError(where + ": the service account token " + cfg.token_file + " is empty");
  }
  cfg.ca_pem = read_whole_file(sa_dir + "/ca.crt", where + ": service account CA");
  std::error_code ec;
  if (fs::exists(sa_dir + "/namespace", ec)) {
    std::string ns = trim(read_whole_file(sa_dir + "/namespace", where + ": namespace"));
    if (!ns.empty()) cfg.ns = ns;
  }
  return cfg;
}

Config load_config(const std::string& kubeconfig, const std::string& context) {
  if (!kubeconfig.empty()) return load_kubeconfig(kubeconfig, context);
  if (const char* env = std::getenv("KUBECONFIG"); env && *env) {
    std::vector<std::string> files;
    std::error_code ec;
    for (const auto& f : split_path_list(env)) {
      if (fs::exists(f, ec)) files.push_back(f);
    }
    if (files.empty()) throw ConfigError(std::string("KUBECONFIG=") + env + ": no such file");
    Kubeconfig kc;
    for (const auto& f : files) merge_file(f, kc);
    return resolve(kc, context);
  }
  if (const char* host = std::getenv("KUBERNETES_SERVICE_HOST"); host && *host) return in_cluster_config();
  if (const char* home = std::getenv("HOME"); home && *home) {
    std::string path = std::string(home) + "/.kube/config";
    std::error_code ec;
    if (fs::exists(path, ec)) return load_kubeconfig(path, context);
  }
  throw ConfigError(
      "no Kubernetes configuration found: pass a kubeconfig, set KUBECONFIG, run in a pod, or create "
      "~/.kube/config");
}

}  // namespace switchboard::kube
