#include "router/file_source.h"

#include <fstream>
#include <sstream>

#include "core/route/spec_yaml.h"

namespace switchboard::router {

FileSource::FileSource(std::string path, int64_t poll_ms, Apply apply, Reject reject)
    : path_(std::move(path)), poll_ms_(poll_ms), apply_(std::move(apply)), reject_(std::move(reject)) {}

FileSource::~FileSource() { stop(); }

bool FileSource::poll() {
  std::lock_guard poll_lock(poll_mu_);
  std::ifstream in(path_, std::ios::binary);
  std::string content;
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    content = ss.str();
  }
  // Content, not modification time: editors and ConfigMap updates replace files in ways
  // that do not always move mtime forward.
  std::string hash = in ? route::sha256_hex(content) : "unreadable";
  if (hash == last_content_hash_) return false;
  last_content_hash_ = hash;
  uint64_t generation = ++generation_;
  if (!in) {
    reject_(generation, "cannot read " + path_);
    return true;
  }
  route::RouteSet set;
  std::vector<route::SpecError> errors;
  std::string message;
  if (route::load_yaml(content, path_, set, errors)) {
    auto compiled = route::RouteTable::compile(std::move(set), generation, {}, last_table_.get());
    if (auto* table = std::get_if<std::shared_ptr<const route::RouteTable>>(&compiled)) {
      last_table_ = *table;
      apply_(*table);
      return true;
    }
    errors = std::get<std::vector<route::SpecError>>(compiled);
  }
  for (size_t i = 0; i < errors.size(); ++i) message += (i ? "; " : "") + errors[i].render();
  reject_(generation, message);
  return true;
}

void FileSource::start() {
  poll();
  thread_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      cv_.wait_for(lock, std::chrono::milliseconds(poll_ms_), [this] { return stopping_; });
      if (stopping_) break;
      lock.unlock();
      poll();
      lock.lock();
    }
  });
}

void FileSource::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace switchboard::router
