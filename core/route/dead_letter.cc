#include "core/route/dead_letter.h"

#include "core/json/document.h"

namespace switchboard::route {

namespace {

void field(std::string& out, std::string_view key, std::string_view value) {
  out += ',';
  json::append_quoted(out, key);
  out += ':';
  json::append_quoted(out, value);
}

}  // namespace

std::string dead_letter_envelope(std::string_view route_name, const Result& result, const Message& msg,
                                 int64_t attempts, std::string_view time_rfc3339) {
  std::string out = "{\"route\":";
  json::append_quoted(out, route_name);
  field(out, "reason", reason_label(result.reason));
  field(out, "step", result.step);
  field(out, "error", result.error);
  out += ",\"attempts\":" + std::to_string(attempts);
  field(out, "subject", msg.subject);
  out += ",\"headers\":{";
  if (msg.headers != nullptr) {
    bool first = true;
    for (const auto& [k, v] : *msg.headers) {
      if (!first) out += ',';
      first = false;
      json::append_quoted(out, k);
      out += ':';
      json::append_quoted(out, v);
    }
  }
  out += '}';
  json::Document doc;
  if (doc.parse(msg.payload)) {
    out += ",\"data\":";
    out += msg.payload;
  } else if (json::valid_utf8(msg.payload)) {
    field(out, "raw", msg.payload);
  } else {
    out += ",\"base64\":\"";
    append_base64(out, msg.payload);
    out += '"';
  }
  field(out, "time", time_rfc3339);
  out += '}';
  return out;
}

}  // namespace switchboard::route
