#include "tests/e2e/pod_runner.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <cpprest/asyncrt_utils.h>

#include "tests/e2e/e2e_support.h"

namespace switchboard::e2e {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kServiceAccountPath = "/var/run/secrets/kubernetes.io/serviceaccount";

const kube::Object* field(const kube::Object& obj, const char* key) {
  if (!obj.is_object() || !obj.has_field(key)) return nullptr;
  const kube::Object& v = obj.at(key);
  return v.is_null() ? nullptr : &v;
}

std::string str(const kube::Object& obj, const char* key) {
  const kube::Object* v = field(obj, key);
  return v && v->is_string() ? v->as_string() : std::string();
}

bool flag(const kube::Object& obj, const char* key, bool fallback) {
  const kube::Object* v = field(obj, key);
  return v && v->is_boolean() ? v->as_bool() : fallback;
}

const kube::Object& require(const kube::Object& obj, const char* key, const std::string& where) {
  const kube::Object* v = field(obj, key);
  if (!v) throw PodError(where + " has no " + key);
  return *v;
}

std::vector<kube::Object> items(const kube::Object& obj, const char* key) {
  std::vector<kube::Object> out;
  if (const kube::Object* v = field(obj, key); v && v->is_array()) {
    for (const auto& item : v->as_array()) out.push_back(item);
  }
  return out;
}

std::string decode_base64(const std::string& text, const std::string& where) {
  try {
    std::vector<unsigned char> bytes = utility::conversions::from_base64(text);
    return std::string(bytes.begin(), bytes.end());
  } catch (const std::exception& e) {
    throw PodError(where + ": invalid base64: " + e.what());
  }
}

// The keys of a Secret (base64 in .data) or a ConfigMap (.data, and base64 .binaryData).
std::map<std::string, std::string> keys_of(const kube::Object& obj, bool secret, const std::string& where) {
  std::map<std::string, std::string> out;
  if (const kube::Object* data = field(obj, "data"); data && data->is_object()) {
    for (const auto& [k, v] : data->as_object()) {
      out[k] = secret ? decode_base64(v.as_string(), where + " key " + k) : v.as_string();
    }
  }
  if (const kube::Object* data = field(obj, "binaryData"); !secret && data && data->is_object()) {
    for (const auto& [k, v] : data->as_object()) out[k] = decode_base64(v.as_string(), where + " key " + k);
  }
  return out;
}

void write_volume_file(const std::string& dir, const std::string& rel, const std::string& content, int mode) {
  if (rel.empty() || rel[0] == '/' || rel.find("..") != std::string::npos) {
    throw PodError("volume file path '" + rel + "' is not a relative path inside the volume");
  }
  fs::path p = fs::path(dir) / rel;
  fs::create_directories(p.parent_path());
  write_file(p.string(), content);
  ::chmod(p.c_str(), static_cast<mode_t>(mode));
}

int mode_of(const kube::Object& obj, const char* key, int fallback) {
  const kube::Object* v = field(obj, key);
  return v && v->is_integer() ? v->as_integer() : fallback;
}

// The keys of a Secret or ConfigMap as files: all of them, or those `items` names.
void project_keys(const std::map<std::string, std::string>& keys, const kube::Object& source, const std::string& dir,
                  int default_mode, const std::string& where) {
  std::vector<kube::Object> wanted = items(source, "items");
  if (wanted.empty()) {
    for (const auto& [k, v] : keys) write_volume_file(dir, k, v, default_mode);
    return;
  }
  for (const auto& item : wanted) {
    std::string key = str(item, "key");
    auto it = keys.find(key);
    if (it == keys.end()) throw PodError(where + " has no key '" + key + "'");
    write_volume_file(dir, str(item, "path"), it->second, mode_of(item, "mode", default_mode));
  }
}

}  // namespace

std::string expand_vars(const std::string& text, const std::map<std::string, std::string>& vars) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$' || i + 1 >= text.size()) {
      out += text[i];
      continue;
    }
    if (text[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    if (text[i + 1] == '(') {
      size_t close = text.find(')', i + 2);
      if (close != std::string::npos) {
        std::string name = text.substr(i + 2, close - i - 2);
        auto it = vars.find(name);
        out += it != vars.end() ? it->second : text.substr(i, close - i + 1);
        i = close;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

namespace {

// What a kubelet knows of the pod it runs, for fieldRef and downwardAPI.
struct PodFacts {
  std::string name, ns, uid, service_account;
  std::map<std::string, std::string> labels, annotations;
};

std::string field_ref(const kube::Object& ref, const PodFacts& pod, const std::string& where) {
  std::string path = str(ref, "fieldPath");
  auto keyed = [&](const std::string& prefix, const std::map<std::string, std::string>& m) -> std::optional<std::string> {
    if (path.rfind(prefix + "['", 0) != 0 || path.size() < prefix.size() + 4 || path.substr(path.size() - 2) != "']") {
      return std::nullopt;
    }
    std::string key = path.substr(prefix.size() + 2, path.size() - prefix.size() - 4);
    auto it = m.find(key);
    return it == m.end() ? std::string() : it->second;
  };
  if (path == "metadata.name") return pod.name;
  if (path == "metadata.namespace") return pod.ns;
  if (path == "metadata.uid") return pod.uid;
  if (path == "spec.serviceAccountName") return pod.service_account;
  if (path == "spec.nodeName") return "e2e-node";
  if (path == "status.podIP" || path == "status.hostIP" || path == "status.podIPs" || path == "status.hostIPs") {
    return "127.0.0.1";
  }
  if (auto v = keyed("metadata.labels", pod.labels)) return *v;
  if (auto v = keyed("metadata.annotations", pod.annotations)) return *v;
  throw PodError(where + ": fieldRef " + path + " is not supported by the pod runner");
}

class Planner {
 public:
  Planner(const kube::Object& deployment, int index, PodInputs& inputs, const PodRunnerOptions& options,
          const std::string& pod_dir, const std::function<int()>& free_port)
      : deployment_(deployment), inputs_(inputs), options_(options), dir_(pod_dir), free_port_(free_port) {
    const kube::Object& md = require(deployment, "metadata", "the Deployment");
    std::string deploy = str(md, "name");
    plan_.ns = str(md, "namespace");
    plan_.name = deploy + "-" + std::to_string(index);
    plan_.dir = pod_dir;
    plan_.log_path = pod_dir + "/" + options.container + ".log";
    where_ = "Deployment " + plan_.ns + "/" + deploy;
    const kube::Object& spec = require(deployment, "spec", where_);
    const kube::Object& tmpl = require(spec, "template", where_ + " spec");
    pod_spec_ = require(tmpl, "spec", where_ + " spec.template");
    facts_.name = plan_.name;
    facts_.ns = plan_.ns;
    facts_.uid = "00000000-0000-4000-8000-" + std::string(12 - std::min<size_t>(12, std::to_string(index).size()), '0') +
                 std::to_string(index);
    if (const kube::Object* tmd = field(tmpl, "metadata")) {
      for (const char* which : {"labels", "annotations"}) {
        if (const kube::Object* m = field(*tmd, which); m && m->is_object()) {
          for (const auto& [k, v] : m->as_object()) {
            (std::string(which) == "labels" ? facts_.labels : facts_.annotations)[k] = v.as_string();
          }
        }
      }
    }
    facts_.service_account = str(pod_spec_, "serviceAccountName");
    if (facts_.service_account.empty()) facts_.service_account = str(pod_spec_, "serviceAccount");
    if (facts_.service_account.empty()) facts_.service_account = "default";
    for (const auto& c : items(pod_spec_, "containers")) {
      if (str(c, "name") == options.container) container_ = c;
    }
    if (container_.is_null()) throw PodError(where_ + " has no container named '" + options.container + "'");
    for (const auto& v : items(pod_spec_, "volumes")) volumes_[str(v, "name")] = v;
  }

  PodPlan plan() {
    resolve_security();
    build_env();
    mount_volumes();
    mount_service_account();
    own_volumes_by_fs_group();
    std::vector<std::string> command;
    for (const auto& c : items(container_, "command")) command.push_back(expand_vars(c.as_string(), env_));
    std::vector<std::string> args;
    for (const auto& a : items(container_, "args")) args.push_back(expand_vars(a.as_string(), env_));
    if (!command.empty()) {
      // The image's binary is the local one; anything else would not be this test.
      if (fs::path(command[0]).filename() != fs::path(options_.binary).filename()) {
        throw PodError(where_ + ": command '" + command[0] + "' is not " + fs::path(options_.binary).filename().string());
      }
      args.insert(args.begin(), command.begin() + 1, command.end());
    }
    map_metrics_port(args);
    for (auto& a : args) a = map_paths(a);
    plan_.argv.push_back(options_.binary);
    plan_.argv.insert(plan_.argv.end(), args.begin(), args.end());
    for (const auto& name : order_) plan_.env.push_back(name + "=" + map_paths(env_.at(name)));
    plan_probes();
    return std::move(plan_);
  }

 private:
  // The container's securityContext over the pod's: what the process runs as.
  void resolve_security() {
    const kube::Object* pod = field(pod_spec_, "securityContext");
    const kube::Object* ctr = field(container_, "securityContext");
    auto integer = [&](const char* key, bool container_too) -> int64_t {
      for (const kube::Object* sc : {container_too ? ctr : nullptr, pod}) {
        if (const kube::Object* v = sc ? field(*sc, key) : nullptr) {
          if (!v->is_integer() || v->as_number().to_int64() < 0) throw PodError(where_ + ": securityContext." + key + " is not a user or group id");
          return v->as_number().to_int64();
        }
      }
      return -1;
    };
    PodPlan::Security& s = plan_.security;
    s.run_as_user = integer("runAsUser", true);
    s.run_as_group = integer("runAsGroup", true);
    s.fs_group = integer("fsGroup", false);
    s.run_as_non_root = (ctr && field(*ctr, "runAsNonRoot")) ? flag(*ctr, "runAsNonRoot", false)
                                                                : (pod && flag(*pod, "runAsNonRoot", false));
    if (ctr) {
      s.read_only_root = flag(*ctr, "readOnlyRootFilesystem", false);
      s.no_new_privs = !flag(*ctr, "allowPrivilegeEscalation", true);
      if (const kube::Object* caps = field(*ctr, "capabilities")) {
        for (const auto& d : items(*caps, "drop")) s.drop_all_capabilities |= d.is_string() && d.as_string() == "ALL";
      }
    }
    if (s.run_as_non_root && s.run_as_user < 0) {
      throw PodError(where_ + ": runAsNonRoot without runAsUser: the user of the image is not known to the pod runner");
    }
    if (s.run_as_non_root && s.run_as_user == 0) {
      throw PodError(where_ + ": runAsNonRoot with runAsUser 0: a kubelet would not start this container");
    }
  }

  // What a kubelet's volume ownership management does with fsGroup: the group of every
  // volume file, readable by it.
  void own_volumes_by_fs_group() {
    const int64_t group = plan_.security.fs_group;
    // Only root may give files away; a runner that is not root refuses to start such a
    // pod anyway (PodRunner::launch), and a plan alone needs no ownership.
    if (group < 0 || ::geteuid() != 0) return;
    std::vector<std::string> dirs;
    for (const auto& [name, dir] : volume_dirs_) dirs.push_back(dir);
    if (!plan_.sa_dir.empty()) dirs.push_back(plan_.sa_dir);
    auto own = [&](const fs::path& p) {
      if (::lchown(p.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(group)) != 0) {
        throw PodError(where_ + ": cannot give " + p.string() + " the group fsGroup " + std::to_string(group));
      }
      const bool dir = fs::is_directory(p);
      fs::permissions(p, dir ? fs::perms::group_read | fs::perms::group_exec : fs::perms::group_read,
                      fs::perm_options::add);
    };
    for (const auto& dir : dirs) {
      own(dir);
      for (const auto& e : fs::recursive_directory_iterator(dir)) own(e.path());
    }
  }

  void set_env(const std::string& name, const std::string& value) {
    if (!env_.count(name)) order_.push_back(name);
    env_[name] = value;
  }

  std::string key_from(bool secret, const kube::Object& ref, const std::string& var) {
    std::string name = str(ref, "name"), key = str(ref, "key");
    std::string what = std::string(secret ? "Secret " : "ConfigMap ") + plan_.ns + "/" + name;
    bool optional = flag(ref, "optional", false);
    std::map<std::string, std::string> keys;
    try {
      keys = keys_of(secret ? inputs_.secret(plan_.ns, name) : inputs_.config_map(plan_.ns, name), secret, what);
    } catch (const kube::ApiError& e) {
      if (e.not_found() && optional) return {};
      throw PodError(where_ + ": env " + var + " needs " + what + ": " + e.message());
    }
    auto it = keys.find(key);
    if (it == keys.end()) {
      if (optional) return {};
      throw PodError(where_ + ": env " + var + " needs key '" + key + "' of " + what + ", which it does not have");
    }
    return it->second;
  }

  void build_env() {
    // What every pod gets from the cluster (the kubernetes Service), before its own.
    std::string host = options_.api_host, port = std::to_string(options_.api_port);
    set_env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    set_env("HOSTNAME", plan_.name);
    set_env("KUBERNETES_SERVICE_HOST", host);
    set_env("KUBERNETES_SERVICE_PORT", port);
    set_env("KUBERNETES_SERVICE_PORT_HTTPS", port);
    set_env("KUBERNETES_PORT", "tcp://" + host + ":" + port);
    for (const auto& from : items(container_, "envFrom")) {
      std::string prefix = str(from, "prefix");
      bool secret = field(from, "secretRef") != nullptr;
      const kube::Object* ref = field(from, secret ? "secretRef" : "configMapRef");
      if (!ref) throw PodError(where_ + ": envFrom without configMapRef or secretRef");
      std::string name = str(*ref, "name");
      std::string what = std::string(secret ? "Secret " : "ConfigMap ") + plan_.ns + "/" + name;
      try {
        for (const auto& [k, v] : keys_of(secret ? inputs_.secret(plan_.ns, name) : inputs_.config_map(plan_.ns, name),
                                          secret, what)) {
          set_env(prefix + k, v);
        }
      } catch (const kube::ApiError& e) {
        if (!(e.not_found() && flag(*ref, "optional", false))) throw PodError(where_ + ": envFrom " + what + ": " + e.message());
      }
    }
    for (const auto& e : items(container_, "env")) {
      std::string name = str(e, "name");
      if (const kube::Object* from = field(e, "valueFrom")) {
        if (const kube::Object* ref = field(*from, "fieldRef")) {
          set_env(name, field_ref(*ref, facts_, where_ + ": env " + name));
        } else if (const kube::Object* sref = field(*from, "secretKeyRef")) {
          set_env(name, key_from(true, *sref, name));
        } else if (const kube::Object* cref = field(*from, "configMapKeyRef")) {
          set_env(name, key_from(false, *cref, name));
        } else {
          throw PodError(where_ + ": env " + name + ": this valueFrom is not supported by the pod runner");
        }
      } else {
        // $(VAR) in a value sees the variables defined before it.
        set_env(name, expand_vars(str(e, "value"), env_));
      }
    }
  }

  // Writes one volume's content into its folder (once per volume).
  std::string volume_dir(const std::string& name) {
    auto done = volume_dirs_.find(name);
    if (done != volume_dirs_.end()) return done->second;
    auto it = volumes_.find(name);
    if (it == volumes_.end()) throw PodError(where_ + ": volumeMount names no volume '" + name + "'");
    const kube::Object& v = it->second;
    std::string dir = dir_ + "/volumes/" + name;
    fs::create_directories(dir);
    std::string where = where_ + ": volume " + name;
    if (const kube::Object* s = field(v, "secret")) {
      project_object(true, *s, str(*s, "secretName"), dir, mode_of(*s, "defaultMode", 0644), where);
    } else if (const kube::Object* c = field(v, "configMap")) {
      project_object(false, *c, str(*c, "name"), dir, mode_of(*c, "defaultMode", 0644), where);
    } else if (const kube::Object* p = field(v, "projected")) {
      int mode = mode_of(*p, "defaultMode", 0644);
      for (const auto& src : items(*p, "sources")) {
        if (const kube::Object* ps = field(src, "secret")) {
          project_object(true, *ps, str(*ps, "name"), dir, mode, where);
        } else if (const kube::Object* pc = field(src, "configMap")) {
          project_object(false, *pc, str(*pc, "name"), dir, mode, where);
        } else if (const kube::Object* t = field(src, "serviceAccountToken")) {
          std::vector<std::string> audiences;
          if (!str(*t, "audience").empty()) audiences.push_back(str(*t, "audience"));
          const kube::Object* exp = field(*t, "expirationSeconds");
          write_volume_file(dir, str(*t, "path"),
                            token(audiences, exp && exp->is_integer() ? exp->as_number().to_int64() : 3607), mode);
        } else if (const kube::Object* d = field(src, "downwardAPI")) {
          downward(*d, dir, mode, where);
        } else {
          throw PodError(where + ": this projected source is not supported by the pod runner");
        }
      }
    } else if (const kube::Object* d = field(v, "downwardAPI")) {
      downward(*d, dir, mode_of(*d, "defaultMode", 0644), where);
    } else if (field(v, "emptyDir")) {
      // An empty folder, writable by any user (as a kubelet makes it), also on a read-only root.
      fs::permissions(dir, fs::perms::all);
      plan_.security.writable.push_back(dir);
    } else {
      throw PodError(where + ": this volume type is not supported by the pod runner");
    }
    volume_dirs_[name] = dir;
    return dir;
  }

  void project_object(bool secret, const kube::Object& source, const std::string& name, const std::string& dir,
                      int mode, const std::string& where) {
    std::string what = std::string(secret ? "Secret " : "ConfigMap ") + plan_.ns + "/" + name;
    kube::Object obj;
    try {
      obj = secret ? inputs_.secret(plan_.ns, name) : inputs_.config_map(plan_.ns, name);
    } catch (const kube::ApiError& e) {
      if (e.not_found() && flag(source, "optional", false)) return;
      // A kubelet would leave the pod in ContainerCreating; the test gets the reason.
      throw PodError(where + " needs " + what + ": " + e.message());
    }
    project_keys(keys_of(obj, secret, what), source, dir, mode, where + " (" + what + ")");
  }

  void downward(const kube::Object& d, const std::string& dir, int mode, const std::string& where) {
    for (const auto& item : items(d, "items")) {
      const kube::Object* ref = field(item, "fieldRef");
      if (!ref) throw PodError(where + ": downwardAPI item without fieldRef is not supported by the pod runner");
      write_volume_file(dir, str(item, "path"), field_ref(*ref, facts_, where), mode_of(item, "mode", mode));
    }
  }

  std::string token(const std::vector<std::string>& audiences, int64_t seconds) {
    try {
      return inputs_.token(plan_.ns, facts_.service_account, audiences, seconds);
    } catch (const kube::ApiError& e) {
      throw PodError(where_ + ": no token for ServiceAccount " + plan_.ns + "/" + facts_.service_account + ": " +
                     e.message());
    }
  }

  void mount_volumes() {
    for (const auto& m : items(container_, "volumeMounts")) {
      std::string path = str(m, "mountPath");
      std::string dir = volume_dir(str(m, "name"));
      std::string sub = str(m, "subPath");
      plan_.mounts[path] = sub.empty() ? dir : dir + "/" + sub;
    }
  }

  void mount_service_account() {
    kube::Object sa;
    try {
      sa = inputs_.service_account(plan_.ns, facts_.service_account);
    } catch (const kube::ApiError& e) {
      // The ServiceAccount admission plugin would refuse the pod.
      throw PodError(where_ + ": ServiceAccount " + plan_.ns + "/" + facts_.service_account + ": " + e.message());
    }
    bool automount = flag(pod_spec_, "automountServiceAccountToken", flag(sa, "automountServiceAccountToken", true));
    auto explicit_mount = plan_.mounts.find(kServiceAccountPath);
    if (explicit_mount != plan_.mounts.end()) {
      plan_.sa_dir = explicit_mount->second;
    } else if (automount) {
      // What the kubelet projects: a bound token, the cluster's CA and the namespace.
      std::string dir = dir_ + "/serviceaccount";
      fs::create_directories(dir);
      write_volume_file(dir, "token", token({}, 3607), 0644);
      write_volume_file(dir, "ca.crt", options_.ca_pem, 0644);
      write_volume_file(dir, "namespace", plan_.ns, 0644);
      plan_.mounts[kServiceAccountPath] = dir;
      plan_.sa_dir = dir;
    }
    if (!plan_.sa_dir.empty()) set_env("SWITCHBOARD_SA_DIR", plan_.sa_dir);
  }

  // Replaces a leading mountPath (or one after '=', as in --flag=/path) by its folder.
  std::string map_paths(const std::string& text) const {
    std::vector<std::pair<std::string, std::string>> by_length(plan_.mounts.begin(), plan_.mounts.end());
    std::sort(by_length.begin(), by_length.end(),
              [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
    for (size_t start : {size_t{0}, text.find('=') == std::string::npos ? std::string::npos : text.find('=') + 1}) {
      if (start == std::string::npos) continue;
      for (const auto& [path, dir] : by_length) {
        std::string mount = path;
        while (mount.size() > 1 && mount.back() == '/') mount.pop_back();
        if (text.compare(start, mount.size(), mount) != 0) continue;
        size_t end = start + mount.size();
        if (end != text.size() && text[end] != '/') continue;
        return text.substr(0, start) + dir + text.substr(end);
      }
    }
    return text;
  }

  // Pods have their own network namespace; these processes do not. The metrics address
  // gets a free loopback port of its own, and the probes follow it.
  void map_metrics_port(std::vector<std::string>& args) {
    auto rewrite = [&](std::string& addr) {
      size_t colon = addr.rfind(':');
      int port = colon == std::string::npos ? 0 : std::atoi(addr.c_str() + colon + 1);
      if (port <= 0) throw PodError(where_ + ": cannot read the port of metrics address '" + addr + "'");
      int local = plan_.ports.count(port) ? plan_.ports[port] : (plan_.ports[port] = free_port_());
      addr = "127.0.0.1:" + std::to_string(local);
    };
    for (size_t i = 0; i < args.size(); ++i) {
      if (args[i] == "--metrics-addr" && i + 1 < args.size()) {
        rewrite(args[++i]);
      } else if (args[i].rfind("--metrics-addr=", 0) == 0) {
        std::string addr = args[i].substr(15);
        rewrite(addr);
        args[i] = "--metrics-addr=" + addr;
      }
    }
    if (env_.count("SWITCHBOARD_METRICS_ADDR")) rewrite(env_["SWITCHBOARD_METRICS_ADDR"]);
    if (plan_.ports.empty()) {
      // The router's default, 0.0.0.0:9090, would collide between replicas.
      throw PodError(where_ + ": the router container sets no --metrics-addr; its default port would be shared");
    }
  }

  void probe(const char* which, std::string& path, int& port) {
    const kube::Object* p = field(container_, which);
    if (!p) return;
    const kube::Object* get = field(*p, "httpGet");
    if (!get) throw PodError(where_ + ": " + which + " is not an httpGet probe, which the pod runner needs");
    path = str(*get, "path");
    if (path.empty()) path = "/";
    int container_port = 0;
    const kube::Object& pv = require(*get, "port", where_ + " " + which + ".httpGet");
    if (pv.is_integer()) {
      container_port = pv.as_integer();
    } else {
      for (const auto& cp : items(container_, "ports")) {
        if (str(cp, "name") == pv.as_string()) container_port = field(cp, "containerPort")->as_integer();
      }
      if (!container_port) throw PodError(where_ + ": " + which + " names port '" + pv.as_string() + "', which the container does not declare");
    }
    auto it = plan_.ports.find(container_port);
    if (it == plan_.ports.end()) {
      throw PodError(where_ + ": " + which + " probes port " + std::to_string(container_port) +
                     ", which is not the metrics port");
    }
    port = it->second;
  }

  void plan_probes() {
    probe("readinessProbe", plan_.readiness_path, plan_.readiness_port);
    probe("livenessProbe", plan_.liveness_path, plan_.liveness_port);
  }

  const kube::Object& deployment_;
  PodInputs& inputs_;
  const PodRunnerOptions& options_;
  std::string dir_;
  const std::function<int()>& free_port_;
  std::string where_;
  kube::Object pod_spec_;
  kube::Object container_;
  std::map<std::string, kube::Object> volumes_;
  std::map<std::string, std::string> volume_dirs_;
  PodFacts facts_;
  std::map<std::string, std::string> env_;
  std::vector<std::string> order_;
  PodPlan plan_;
};

}  // namespace

PodPlan plan_pod(const kube::Object& deployment, int index, PodInputs& inputs, const PodRunnerOptions& options,
                 const std::string& pod_dir, const std::function<int()>& free_port) {
  return Planner(deployment, index, inputs, options, pod_dir, free_port).plan();
}

kube::Object ApiPodInputs::secret(const std::string& ns, const std::string& name) {
  return client_.get(kube::resources::kSecrets, ns, name);
}

kube::Object ApiPodInputs::config_map(const std::string& ns, const std::string& name) {
  return client_.get(kube::resources::kConfigMaps, ns, name);
}

kube::Object ApiPodInputs::service_account(const std::string& ns, const std::string& name) {
  return client_.get(kube::resources::kServiceAccounts, ns, name);
}

std::string ApiPodInputs::token(const std::string& ns, const std::string& service_account,
                                const std::vector<std::string>& audiences, int64_t expiration_seconds) {
  kube::Object body = kube::Object::object();
  body["apiVersion"] = kube::Object::string("authentication.k8s.io/v1");
  body["kind"] = kube::Object::string("TokenRequest");
  kube::Object spec = kube::Object::object();
  std::vector<kube::Object> aud;
  for (const auto& a : audiences) aud.push_back(kube::Object::string(a));
  spec["audiences"] = kube::Object::array(aud);
  spec["expirationSeconds"] = kube::Object::number(static_cast<int64_t>(expiration_seconds));
  body["spec"] = spec;
  kube::Object r = client_.create_subresource(kube::resources::kServiceAccounts, ns, service_account, "token", body);
  std::string token;
  if (const kube::Object* status = field(r, "status")) token = str(*status, "token");
  if (token.empty()) throw PodError("TokenRequest for " + ns + "/" + service_account + " returned no token");
  return token;
}

PodRunner::PodRunner(kube::Client& client, PodRunnerOptions options)
    : client_(client), options_(std::move(options)) {
  if (options_.work_dir.empty()) {
    work_dir_ = make_temp_dir("switchboard-pods");
    own_work_dir_ = true;
  } else {
    work_dir_ = options_.work_dir;
    fs::create_directories(work_dir_);
  }
}

PodRunner::~PodRunner() {
  stop(5000);
  if (own_work_dir_ && !options_.keep_work_dir) {
    std::error_code ec;
    fs::remove_all(work_dir_, ec);
  }
}

void PodRunner::start(const std::string& ns, const std::string& deployment) {
  stop();
  pods_.clear();
  kube::Object d = client_.get(kube::resources::kDeployments, ns, deployment);
  int replicas = 1;
  if (const kube::Object* spec = field(d, "spec")) {
    if (const kube::Object* r = field(*spec, "replicas"); r && r->is_integer()) replicas = r->as_integer();
  }
  ApiPodInputs inputs(client_);
  std::set<int> taken;
  auto free_port = [&] {
    // Two replicas planned back to back must not be handed the same port.
    for (int i = 0; i < 100; ++i) {
      int p = testing::free_port();
      if (taken.insert(p).second) return p;
    }
    throw PodError("no free loopback port");
  };
  for (int i = 0; i < replicas; ++i) {
    std::string dir = work_dir_ + "/" + deployment + "-" + std::to_string(i);
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir);
    auto pod = std::make_unique<Pod>();
    pod->plan = plan_pod(d, i, inputs, options_, dir, free_port);
    if (options_.adjust) options_.adjust(pod->plan);
    launch(*pod);
    pods_.push_back(std::move(pod));
  }
}

namespace {

// Run by /bin/sh in the pod's own mount namespace (unshare --mount), as root: keeps the
// emptyDir folders ($SANDBOX_WRITABLE, colon-separated) writable by binding each onto
// itself, remounts every other filesystem but /proc, /sys and /dev read-only, and then
// execs its arguments (setpriv, which drops to the pod's user).
constexpr const char* kReadOnlyRootScript = R"sh(set -eu
mounts=$(cut -d' ' -f2 /proc/self/mounts)
old_ifs=$IFS
IFS=:
for d in $SANDBOX_WRITABLE; do mount --bind "$d" "$d"; done
IFS=$old_ifs
for m in $mounts; do
  case "$m" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac
  case ":$SANDBOX_WRITABLE:" in *":$m:"*) continue ;; esac
  mount -o remount,bind,ro "$m" || { echo "pod runner: cannot make $m read-only" >&2; exit 126; }
done
exec "$@"
)sh";

// Every folder on the way to `path` must be searchable by others for a pod's user to get
// there; the runner changes none it did not make.
void check_reachable(const std::string& pod, const std::string& path, int64_t uid) {
  for (fs::path p = fs::path(path).parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) throw PodError(pod + ": cannot stat " + p.string());
    if ((st.st_mode & S_IXOTH) == 0 && st.st_uid != static_cast<uid_t>(uid)) {
      throw PodError(pod + ": its user " + std::to_string(uid) + " cannot reach " + path + ": " + p.string() +
                     " is not searchable by others (chmod o+x it)");
    }
  }
}

}  // namespace

void PodRunner::launch(Pod& pod) {
  // Only the container's environment, in the pod's folder: nothing of the test's leaks in.
  std::vector<std::string> argv;
  std::vector<std::string> program = pod.plan.argv;
  const PodPlan::Security& sec = pod.plan.security;
  if (sec.applies()) {
    if (::geteuid() != 0) {
      throw PodError(pod.plan.name +
                     ": its securityContext (user, group, read-only root, privileges) can be applied only by a "
                     "pod runner that runs as root");
    }
    if (image_binary_.empty()) {
      // The image's copy: a build folder may not be reachable by the pod's user.
      const std::string dir = work_dir_ + "/image";
      fs::create_directories(dir);
      fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                               fs::perms::others_read | fs::perms::others_exec);
      image_binary_ = dir + "/" + fs::path(options_.binary).filename().string();
      fs::copy_file(options_.binary, image_binary_, fs::copy_options::overwrite_existing);
      fs::permissions(image_binary_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                         fs::perms::others_read | fs::perms::others_exec);
    }
    program[0] = image_binary_;
    if (sec.run_as_user >= 0) {
      check_reachable(pod.plan.name, image_binary_, sec.run_as_user);
      check_reachable(pod.plan.name, pod.plan.dir + "/.", sec.run_as_user);
    }
    if (sec.read_only_root) {
      std::string writable;
      for (const auto& d : sec.writable) writable += (writable.empty() ? "" : ":") + d;
      argv = {"/usr/bin/env", "SANDBOX_WRITABLE=" + writable, "/usr/bin/unshare", "--mount", "--propagation",
              "private", "--", "/bin/sh", "-c", kReadOnlyRootScript, "pod-sandbox"};
    }
    argv.push_back("/usr/bin/setpriv");
    if (sec.run_as_user >= 0) argv.insert(argv.end(), {"--reuid", std::to_string(sec.run_as_user)});
    if (sec.run_as_user >= 0 || sec.run_as_group >= 0) {
      // Without runAsGroup a container gets its image's group; these images have none but 0.
      argv.insert(argv.end(), {"--regid", std::to_string(std::max<int64_t>(sec.run_as_group, 0))});
      if (sec.fs_group >= 0) {
        argv.insert(argv.end(), {"--groups", std::to_string(sec.fs_group)});
      } else {
        argv.push_back("--clear-groups");
      }
    }
    if (sec.no_new_privs) argv.push_back("--no-new-privs");
    if (sec.drop_all_capabilities) argv.insert(argv.end(), {"--inh-caps=-all", "--bounding-set=-all"});
    argv.push_back("--");
  }
  argv.insert(argv.end(), {"/usr/bin/env", "-i", "-C", pod.plan.dir});
  argv.insert(argv.end(), pod.plan.env.begin(), pod.plan.env.end());
  argv.insert(argv.end(), program.begin(), program.end());
  {
    std::ofstream log(pod.plan.log_path, std::ios::app);
    log << "# pod " << pod.plan.ns << "/" << pod.plan.name << ":";
    for (const auto& a : pod.plan.argv) log << " " << a;
    log << "\n";
  }
  pod.process = testing::Process(argv, {}, pod.plan.log_path);
}

int PodRunner::restart(size_t i, int sig, int grace_ms, std::chrono::milliseconds down) {
  Pod& pod = *pods_.at(i);
  pod.process.signal(sig);
  int status = pod.process.wait(grace_ms);
  if (status == -1) status = pod.process.stop(1000);
  if (down.count() > 0) std::this_thread::sleep_for(down);
  launch(pod);
  return status;
}

bool PodRunner::wait_ready(std::chrono::milliseconds timeout, std::string* why) {
  auto deadline = Clock::now() + timeout;
  for (auto& pod : pods_) {
    if (pod->plan.readiness_port == 0) continue;
    std::string last = "no answer";
    bool ready = eventually(
        [&] {
          if (!pod->process.running()) return true;
          HttpReply r = http_get(pod->plan.readiness_port, pod->plan.readiness_path);
          if (r.status) last = std::to_string(r.status) + " " + r.body;
          return r.status == 200;
        },
        std::chrono::duration_cast<std::chrono::milliseconds>(std::max(deadline - Clock::now(), Clock::duration{})));
    if (!pod->process.running()) {
      if (why) *why = pod->plan.name + " exited; its log:\n" + read_file(pod->plan.log_path);
      return false;
    }
    if (!ready) {
      if (why) *why = pod->plan.name + " is not ready: " + last;
      return false;
    }
  }
  return true;
}

std::vector<int> PodRunner::stop(int grace_ms) {
  std::vector<int> statuses;
  for (auto& pod : pods_) pod->process.signal(SIGTERM);
  for (auto& pod : pods_) statuses.push_back(pod->process.stop(grace_ms));
  return statuses;
}

std::string PodRunner::logs() const {
  std::string out;
  for (const auto& pod : pods_) {
    out += "=== pod " + pod->plan.ns + "/" + pod->plan.name + " ===\n" + read_file(pod->plan.log_path);
  }
  return out;
}

}  // namespace switchboard::e2e
