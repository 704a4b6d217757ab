// Start-up and shutdown plumbing shared by Ferry's binaries.
//
// Every binary's main() calls InitProcess() first (flags, logging, signal
// mask), starts its servers, reports readiness with WriteReadyFile() and then
// parks in WaitForShutdownSignal(); when that returns it shuts down in the
// order it chose and exits 0.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ferry {

// Parses absl flags (exits on --help or a bad flag, like absl does),
// initializes glog (to files under --log_dir when set, else stderr) and blocks
// SIGINT, SIGTERM and SIGHUP in the calling thread so that every thread
// created afterwards inherits the mask and only WaitForShutdownSignal() sees
// them. Returns the positional arguments (argv[0] first). Call once, before
// creating any thread.
std::vector<char*> InitProcess(int argc, char** argv, absl::string_view usage);

// Blocks until SIGINT or SIGTERM arrives and returns its number. Each SIGHUP
// calls on_reload (when set) on the calling thread and keeps waiting.
int WaitForShutdownSignal(const std::function<void()>& on_reload = nullptr);

// Writes `key=value` lines to the file named by --ready_file (no-op when the
// flag is empty), atomically (temp file + rename), so a supervisor or test that
// sees the file sees all of it. Used to publish bound addresses after port-0
// binds, once the process is ready to serve.
absl::Status WriteReadyFile(const std::map<std::string, std::string>& entries);

// The software version shown by --version-like displays and status APIs.
absl::string_view FerryVersion();

}  // namespace ferry
