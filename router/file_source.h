// Route tables from a file: loaded at start and again whenever the file changes (it is
// polled, which also works for Kubernetes' symlink-swapped ConfigMap volumes). Every new
// content is compiled whole; the router applies it or keeps the running table.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/route/table.h"
#include "router/table_source.h"

namespace switchboard::router {

class FileSource : public TableSource {
 public:
  FileSource(std::string path, int64_t poll_ms, Apply apply, Reject reject);
  ~FileSource() override;

  // Loads the file once now; then polls in the background until stop().
  void start() override;
  void stop() override;
  // Checks the file now (tests and SIGHUP); true when it changed.
  bool poll() override;
  std::string describe() const override { return "file " + path_; }

 private:
  std::string path_;
  int64_t poll_ms_;
  Apply apply_;
  Reject reject_;
  std::mutex poll_mu_;  // poll() runs on the poll thread and on SIGHUP from the main thread
  std::string last_content_hash_;
  // The last table this source compiled: the next one reuses its unchanged routes.
  std::shared_ptr<const route::RouteTable> last_table_;
  uint64_t generation_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace switchboard::router
