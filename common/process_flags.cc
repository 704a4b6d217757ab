#include "common/process_flags.h"

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, log_dir, "",
          "Directory for log files (glog's <program>.INFO etc.); empty: log to stderr.");
ABSL_FLAG(std::string, ready_file, "",
          "When set, write key=value lines (bound addresses) here once ready.");

namespace ferry {

std::string LogDirFlag() { return absl::GetFlag(FLAGS_log_dir); }
std::string ReadyFileFlag() { return absl::GetFlag(FLAGS_ready_file); }

}  // namespace ferry
