// `ferryctl status`: a dashboard of the fabric as the Intermediate sees it,
// from Admin.GetStatus, ListServices and ListSessions (cli/admin_format.h
// lays it out).
//
//   ferryctl status [--tenant=T] [--output=table|json] [--watch[=2s]] [--watch_count=N]
//                   [connection flags: cli/admin_client.h]
//
// --watch redraws every interval (ANSI clear screen) until interrupted, or
// until N frames were drawn when --watch_count is given.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ferry::cli {

inline constexpr absl::Duration kDefaultWatchInterval = absl::Seconds(2);

// The status-specific flags, after parsing.
struct StatusOptions {
  bool watch = false;
  absl::Duration interval = kDefaultWatchInterval;
  int64_t watch_count = 0;  // 0: until interrupted
};

// `args` with a bare "--watch" (no value, next argument not a duration)
// turned into "--watch=2s", so that the string flag parser accepts it.
std::vector<std::string> NormalizeWatchFlag(const std::vector<std::string>& args);

// Runs `ferryctl status <args...>`. Exit codes: 0 shown; 2 usage error;
// 3 Intermediate unreachable; 1 any other RPC error. In watch mode an RPC
// error is shown in the frame and the watch goes on; the exit code is that
// of the last frame. Blocks for the whole watch; not for concurrent use with
// other writers of `out`.
int RunStatusCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace ferry::cli
