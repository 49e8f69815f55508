// Names the calling thread (at most 15 characters: the kernel's limit), so that top -H,
// perf and /proc/PID/task/*/comm tell the router's threads apart. cnats' own threads
// (its reader, its flusher) keep the process's name.
#pragma once

#include <pthread.h>

#include <string>

namespace switchboard::router {

inline void name_this_thread(const std::string& name) {
  (void)pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace switchboard::router
