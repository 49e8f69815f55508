#include "router/dry_run.h"

#include <algorithm>
#include <fstream>
#include <iostream>
#include <memory>

#include "core/json/document.h"
#include "core/route/processor.h"
#include "core/route/spec_yaml.h"
#include "core/route/subject.h"
#include "core/route/table.h"
#include "core/route/transform_tests.h"

namespace switchboard::router {

namespace {

std::shared_ptr<const route::RouteTable> load(const std::string& path, std::ostream& err) {
  route::RouteSet set;
  std::vector<route::SpecError> errors;
  if (path.empty()) {
    err << "error: --routes FILE is required\n";
    return nullptr;
  }
  if (route::load_yaml_file(path, set, errors)) {
    auto compiled = route::RouteTable::compile(std::move(set), 1);
    if (auto* t = std::get_if<std::shared_ptr<const route::RouteTable>>(&compiled)) return *t;
    errors = std::get<std::vector<route::SpecError>>(compiled);
  } else {
    // Still compile what loaded cleanly, so that one run lists every error: a typo in a
    // field name and a typo in an expression show together.
    auto clean = [&](const std::string& object) {
      return std::none_of(errors.begin(), errors.end(), [&](const route::SpecError& e) {
        return e.object == object && e.object_incomplete;
      });
    };
    route::RouteSet partial;
    for (auto& r : set.routes) {
      if (clean("route '" + r.name + "'")) partial.routes.push_back(r);
    }
    for (auto& t : set.transforms) partial.transforms.push_back(t);
    auto compiled = route::RouteTable::compile(std::move(partial), 1);
    if (auto* more = std::get_if<std::vector<route::SpecError>>(&compiled)) {
      for (auto& e : *more) {
        if (e.field.find(".use") == std::string::npos || clean(e.object)) errors.push_back(std::move(e));
      }
    }
  }
  for (const auto& e : errors) err << "error: " << e.render() << "\n";
  err << errors.size() << " error" << (errors.size() == 1 ? "" : "s") << " in " << path << "\n";
  return nullptr;
}

void write_headers(std::string& out, const route::Headers& headers) {
  out += '{';
  for (size_t i = 0; i < headers.size(); ++i) {
    if (i) out += ',';
    json::append_quoted(out, headers[i].first);
    out += ':';
    json::append_quoted(out, headers[i].second);
  }
  out += '}';
}

void write_payload(std::string& out, std::string_view payload) {
  json::Document d;
  if (d.parse(payload)) {
    out += ",\"data\":";
    out += payload;
  } else {
    out += ",\"raw\":";
    json::append_quoted(out, payload);
  }
}

// One input line: {"subject": "...", "headers": {...}, "data": <json>} or "raw" instead of
// "data". Returns false with a message when the line is not of that shape.
bool read_event(const std::string& line, std::string& subject, route::Headers& headers,
                std::string& payload, std::string& error) {
  json::Document d;
  if (!d.parse(line)) {
    error = "not JSON: " + d.error();
    return false;
  }
  if (d.node(0).type != json::Type::Object) {
    error = "expected an object with subject, headers and data";
    return false;
  }
  uint32_t k = json::Document::first_child(0);
  bool has_data = false, has_raw = false;
  subject.clear();
  headers.clear();
  payload = "null";
  for (uint32_t i = 0; i < d.node(0).count; ++i) {
    std::string_view key = d.string_value(k);
    uint32_t v = d.node(k).next;
    const json::Node& n = d.node(v);
    if (key == "subject") {
      if (n.type != json::Type::String) {
        error = "subject must be a string";
        return false;
      }
      subject = d.string_value(v);
    } else if (key == "headers") {
      if (n.type != json::Type::Object) {
        error = "headers must be an object of strings";
        return false;
      }
      uint32_t hk = json::Document::first_child(v);
      for (uint32_t h = 0; h < n.count; ++h) {
        uint32_t hv = d.node(hk).next;
        if (d.node(hv).type != json::Type::String) {
          error = "header '" + std::string(d.string_value(hk)) + "' must be a string";
          return false;
        }
        headers.emplace_back(d.string_value(hk), d.string_value(hv));
        hk = d.node(hv).next;
      }
    } else if (key == "data") {
      has_data = true;
      payload = d.raw(v);
    } else if (key == "raw") {
      if (n.type != json::Type::String) {
        error = "raw must be a string";
        return false;
      }
      has_raw = true;
      payload = d.string_value(v);
    } else {
      error = "unknown field '" + std::string(key) + "' (expected subject, headers, data or raw)";
      return false;
    }
    k = d.node(v).next;
  }
  if (has_data && has_raw) {
    error = "give either data or raw, not both";
    return false;
  }
  std::string why;
  if (!route::validate_subject(subject, false, &why)) {
    error = "invalid subject: " + why;
    return false;
  }
  return true;
}

}  // namespace

int run_check(const DryRunOptions& opts, std::ostream& out, std::ostream& err) {
  auto table = load(opts.routes_path, err);
  if (!table) return 1;
  route::Processor processor;
  auto results = route::run_transform_tests(*table, processor);
  int failed = 0;
  for (const auto& r : results) {
    if (r.passed) continue;
    ++failed;
    err << "error: transform '" << r.transform << "', test '" << r.test << "': " << r.difference << "\n";
  }
  out << opts.routes_path << ": " << table->routes().size() << " routes, " << table->transforms().size()
      << (table->transforms().size() == 1 ? " transform, " : " transforms, ") << (results.size() - static_cast<size_t>(failed)) << "/" << results.size()
      << " transform tests passed; table " << table->hash() << "\n";
  return failed == 0 ? 0 : 1;
}

int run_test(const DryRunOptions& opts, std::istream& in, std::ostream& out, std::ostream& err) {
  auto table = load(opts.routes_path, err);
  if (!table) return 1;
  std::unique_ptr<std::ifstream> file;
  std::istream* events = &in;
  if (!opts.events_path.empty()) {
    file = std::make_unique<std::ifstream>(opts.events_path);
    if (!*file) {
      err << "error: cannot read " << opts.events_path << "\n";
      return 1;
    }
    events = file.get();
  }
  route::Processor processor;
  std::vector<route::Result> results;
  std::vector<uint32_t> matched;
  std::string line, subject, payload, error, record;
  route::Headers headers;
  int lineno = 0, bad = 0;
  while (std::getline(*events, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (!read_event(line, subject, headers, payload, error)) {
      ++bad;
      record = "{\"line\":" + std::to_string(lineno) + ",\"error\":";
      json::append_quoted(record, error);
      out << record << "}\n";
      continue;
    }
    route::Message msg{subject, &headers, payload};
    results.clear();
    processor.process(*table, msg, results);
    if (opts.explain) {
      matched.clear();
      table->match(subject, matched);
      for (uint32_t i = 0; i < table->routes().size(); ++i) {
        if (std::find(matched.begin(), matched.end(), i) != matched.end()) continue;
        const auto& spec = table->routes()[i].spec;
        record = "{\"route\":";
        json::append_quoted(record, spec.name);
        record += ",\"explain\":";
        json::append_quoted(record, "source subject '" + spec.source.subject.text + "' does not match '" +
                                        subject + "'");
        out << record << "}\n";
      }
    }
    for (const auto& r : results) {
      const auto& spec = table->routes()[r.route].spec;
      std::string name;
      json::append_quoted(name, spec.name);
      std::string explain;
      if (opts.explain) {
        std::string why = "source subject '" + spec.source.subject.text + "' matches";
        if (spec.filter) {
          why += "; filter '" + spec.filter->text + "' ";
          // A payload refused as too large or not JSON never reaches the filter.
          const bool refused = r.outcome == route::Result::Outcome::Failed &&
                               (r.reason == route::FailureReason::NotJson ||
                                r.reason == route::FailureReason::TooLarge);
          why += r.outcome == route::Result::Outcome::Filtered ? "returned false"
                 : refused                                      ? "was not run"
                 : r.step == "filter"                           ? "failed"
                                                                : "returned true";
        }
        explain = ",\"explain\":";
        json::append_quoted(explain, why);
      }
      switch (r.outcome) {
        case route::Result::Outcome::Published:
          for (const auto& p : r.outputs) {
            record = "{\"route\":" + name + ",\"subject\":";
            json::append_quoted(record, p.subject);
            record += ",\"headers\":";
            write_headers(record, p.headers);
            write_payload(record, p.payload);
            out << record << explain << "}\n";
          }
          break;
        case route::Result::Outcome::Filtered:
          out << "{\"route\":" << name << ",\"dropped\":\"filter\"" << explain << "}\n";
          break;
        case route::Result::Outcome::Failed: {
          record = "{\"route\":" + name + ",\"error\":";
          json::append_quoted(record, r.error);
          record += ",\"reason\":\"" + std::string(route::reason_label(r.reason)) + "\",\"step\":";
          json::append_quoted(record, r.step);
          if (spec.dead_letter) {
            record += ",\"deadLetter\":";
            json::append_quoted(record, *spec.dead_letter);
          }
          out << record << explain << "}\n";
          break;
        }
      }
    }
  }
  if (bad > 0) {
    err << bad << " input line" << (bad == 1 ? " was" : "s were") << " not events\n";
    return 1;
  }
  return 0;
}

}  // namespace switchboard::router
