// `ferryctl pki`: the command-line face of the dev PKI (cli/dev_pki.h).
//
//   ferryctl pki init   [--dir D] [--trust_domain T] [--days N] [--force]
//   ferryctl pki issue  --tenant T --role R --name N [--dns a,b] [--ip 127.0.0.1,...]
//                       [--days N] [--trust_domain T] [--force] [--dir D]
//   ferryctl pki list   [--dir D] [--output=table|json]
//   ferryctl pki rotate FILE_STEM [--dir D]
//
// The directory defaults to .ferry/pki (relative to the working directory).
// Every subcommand answers --help; `ferryctl pki help` lists them.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace ferry::cli {

inline constexpr char kDefaultPkiDir[] = ".ferry/pki";

// Runs `ferryctl pki <args...>` (`args` excludes "pki"). Results go to `out`,
// errors to `err`. Returns the process exit code: 0 done; 2 usage error
// (unknown subcommand or flag, missing or malformed value, a name the PKI
// refuses; nothing was written); 1 the operation failed (CA exists, no CA,
// file system or OpenSSL error). `pki list` exits 0 even when some
// certificates do not verify: it reports them, it does not judge.
// Not thread-safe against other writers of the same directory.
int RunPkiCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// The same, writing to std::cout and std::cerr.
int RunPkiCommand(const std::vector<std::string>& args);

}  // namespace ferry::cli
