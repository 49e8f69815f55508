// Reading and building Kubernetes objects as web::json::value, field by field, without
// exceptions for a missing field: an object from the API server may lack anything that
// has a default, and a fake client in a test may lack even more.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <cpprest/json.h>

namespace switchboard::controller {

using Json = web::json::value;

// The value at a path of object fields, or nullptr when any step is missing or not an
// object.
const Json* find(const Json& v, std::initializer_list<std::string_view> path);
std::string string_at(const Json& v, std::initializer_list<std::string_view> path,
                      const std::string& fallback = "");
int64_t int_at(const Json& v, std::initializer_list<std::string_view> path, int64_t fallback = 0);
bool bool_at(const Json& v, std::initializer_list<std::string_view> path, bool fallback = false);

// Builders, so that rendered objects read like the YAML they become.
inline Json str(std::string_view s) { return Json::string(std::string(s)); }
inline Json num(int64_t n) { return Json::number(n); }
inline Json boolean(bool b) { return Json::boolean(b); }
Json obj(std::initializer_list<std::pair<std::string, Json>> fields);
Json arr(std::initializer_list<Json> items);
Json arr(std::vector<Json> items);
Json string_array(const std::vector<std::string>& items);

// Equality as JSON values: numbers by value (3 == 3.0), object fields in any order.
bool json_equal(const Json& a, const Json& b);

// Decodes a Secret's base64 data value; nullopt when it is not base64.
std::optional<std::string> base64_decode(const std::string& text);

// At most `max` bytes of `text`, cut at a UTF-8 character boundary and marked with "…":
// the CRDs bound every message and error (32768).
std::string bounded_text(std::string text, size_t max = 32000);

// Compact JSON text.
std::string to_text(const Json& v);

}  // namespace switchboard::controller
