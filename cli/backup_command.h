// `ferryctl backup`: the command-line face of cli/backup.h.
//
//   ferryctl backup create  --config_dir=DIR --pki_dir=DIR --state_dir=DIR --out=FILE.tar
//                           [--live] [--force]
//   ferryctl backup restore --in=FILE.tar --config_dir=DIR --pki_dir=DIR --state_dir=DIR
//                           [--dry-run] [--force]
//
// Every subcommand answers --help; `ferryctl backup help` lists them.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace ferry::cli {

// Runs `ferryctl backup <args...>` (`args` excludes "backup"). Results go to `out`, errors to
// `err`. Exit codes:
//   0  done (for restore --dry-run: the archive verified, the plan was printed, nothing written)
//   1  refused or failed, nothing written: a damaged, truncated or inconsistent archive, a path
//      escaping the target directories, existing files without --force, a running Intermediate
//      (create without --live; restore always), a missing directory, a file system error
//   2  usage error: unknown subcommand or flag, a required flag missing
// Not thread-safe against other writers of the same directories.
int RunBackupCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace ferry::cli
