#include "controller/json_util.h"

#include <cpprest/asyncrt_utils.h>

namespace switchboard::controller {

const Json* find(const Json& v, std::initializer_list<std::string_view> path) {
  const Json* cur = &v;
  for (std::string_view key : path) {
    if (!cur->is_object()) return nullptr;
    const auto& o = cur->as_object();
    auto it = o.find(std::string(key));
    if (it == o.end()) return nullptr;
    cur = &it->second;
  }
  return cur;
}

std::string string_at(const Json& v, std::initializer_list<std::string_view> path,
                      const std::string& fallback) {
  const Json* f = find(v, path);
  return f != nullptr && f->is_string() ? f->as_string() : fallback;
}

int64_t int_at(const Json& v, std::initializer_list<std::string_view> path, int64_t fallback) {
  const Json* f = find(v, path);
  if (f == nullptr || !f->is_number()) return fallback;
  const auto& n = f->as_number();
  if (n.is_int64()) return n.to_int64();
  if (n.is_uint64()) return static_cast<int64_t>(n.to_uint64());
  return static_cast<int64_t>(n.to_double());
}

bool bool_at(const Json& v, std::initializer_list<std::string_view> path, bool fallback) {
  const Json* f = find(v, path);
  return f != nullptr && f->is_boolean() ? f->as_bool() : fallback;
}

Json obj(std::initializer_list<std::pair<std::string, Json>> fields) {
  Json o = Json::object();
  for (const auto& [k, v] : fields) o[k] = v;
  return o;
}

Json arr(std::initializer_list<Json> items) { return Json::array(std::vector<Json>(items)); }

Json arr(std::vector<Json> items) { return Json::array(std::move(items)); }

Json string_array(const std::vector<std::string>& items) {
  std::vector<Json> out;
  out.reserve(items.size());
  for (const auto& s : items) out.push_back(str(s));
  return Json::array(std::move(out));
}

bool json_equal(const Json& a, const Json& b) {
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Json::Null:
      return true;
    case Json::Boolean:
      return a.as_bool() == b.as_bool();
    case Json::String:
      return a.as_string() == b.as_string();
    case Json::Number: {
      const auto& x = a.as_number();
      const auto& y = b.as_number();
      if (x.is_int64() && y.is_int64()) return x.to_int64() == y.to_int64();
      if (x.is_uint64() && y.is_uint64()) return x.to_uint64() == y.to_uint64();
      return x.to_double() == y.to_double();
    }
    case Json::Array: {
      const auto& x = a.as_array();
      const auto& y = b.as_array();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!json_equal(x.at(i), y.at(i))) return false;
      }
      return true;
    }
    case Json::Object: {
      const auto& x = a.as_object();
      const auto& y = b.as_object();
      if (x.size() != y.size()) return false;
      for (const auto& [k, v] : x) {
        auto it = y.find(k);
        if (it == y.end() || !json_equal(v, it->second)) return false;
      }
      return true;
    }
  }
  return false;
}

std::optional<std::string> base64_decode(const std::string& text) {
  try {
    std::vector<unsigned char> bytes = utility::conversions::from_base64(text);
    return std::string(bytes.begin(), bytes.end());
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string bounded_text(std::string text, size_t max) {
  if (text.size() <= max) return text;
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  text.resize(end);
  return text + "…";
}

std::string to_text(const Json& v) { return v.serialize(); }

}  // namespace switchboard::controller
