// The process-wide flags of common/process, read through functions: their
// definitions live in a file that does not include glog, whose gflags use the
// same global names (FLAGS_log_dir).
#pragma once

#include <string>

namespace ferry {

// --log_dir: directory for glog files; empty means stderr.
std::string LogDirFlag();
// --ready_file: where WriteReadyFile() writes; empty means nowhere.
std::string ReadyFileFlag();

}  // namespace ferry
