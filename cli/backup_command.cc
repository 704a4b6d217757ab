#include "cli/backup_command.h"

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "cli/args.h"
#include "cli/backup.h"
#include "cli/command_table.h"
#include "cli/version.h"

namespace ferry::cli {
namespace {

using Kind = FlagSpec::Kind;
constexpr char kProgram[] = "ferryctl backup";

std::vector<FlagSpec> DirFlags(absl::string_view verb) {
  return {
      {"config_dir", Kind::kString, "DIR", absl::StrCat("config files to ", verb, " (required)")},
      {"pki_dir", Kind::kString, "DIR",
       absl::StrCat("certificates and keys to ", verb, " (required)")},
      {"state_dir", Kind::kString, "DIR",
       absl::StrCat("the Intermediate's state store to ", verb, " (required)")},
  };
}

// Checks that every flag in `required` was given and no positional argument was.
std::optional<int> RequireFlags(const ParsedArgs& parsed, const std::vector<const char*>& required,
                                std::ostream& err) {
  if (!parsed.positional().empty()) {
    err << kProgram << ": unexpected argument '" << parsed.positional().front() << "'\n";
    return kExitUsage;
  }
  for (const char* name : required) {
    if (!parsed.Get(name).has_value()) {
      err << kProgram << ": missing --" << name << " (see --help)\n";
      return kExitUsage;
    }
  }
  return std::nullopt;
}

BackupDirs Dirs(const ParsedArgs& parsed) {
  return {*parsed.Get("config_dir"), *parsed.Get("pki_dir"), *parsed.Get("state_dir")};
}

int Failure(std::ostream& err, const absl::Status& status) {
  err << kProgram << ": " << status.message() << "\n";
  return kExitFailure;
}

int RunCreate(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::vector<FlagSpec> specs = DirFlags("back up");
  specs.push_back({"out", Kind::kString, "FILE", "the archive to write, mode 0600 (required)"});
  specs.push_back({"live", Kind::kBool, "",
                   "copy the state of a running Intermediate as it is (crash-consistent); "
                   "without it a running Intermediate is refused"});
  specs.push_back({"force", Kind::kBool, "", "replace an existing --out file"});
  ParsedArgs parsed;
  if (std::optional<int> code = ParseCommandArgs(
          kProgram, args, specs,
          "Usage: ferryctl backup create --config_dir=DIR --pki_dir=DIR --state_dir=DIR "
          "--out=FILE.tar [flags]\n"
          "\n"
          "Writes one tar: MANIFEST.json (version, time, every file's size, mode and SHA-256),\n"
          "then config/, pki/ and state/. With the Intermediate stopped, the state store is\n"
          "opened (which checks it) and snapshotted first. Keys (*.key) are archived 0600.\n"
          "Exit codes: 0 written, 1 failed (nothing written), 2 usage error.\n",
          &parsed, out, err)) {
    return *code;
  }
  if (std::optional<int> code =
          RequireFlags(parsed, {"config_dir", "pki_dir", "state_dir", "out"}, err)) {
    return *code;
  }
  BackupCreateOptions options;
  options.dirs = Dirs(parsed);
  options.ferry_version = kFerryVersion;
  options.created = absl::Now();
  options.live_state = parsed.GetBool("live");
  options.overwrite = parsed.GetBool("force");
  std::string path = *parsed.Get("out");
  absl::StatusOr<BackupSummary> summary = CreateBackup(options, path);
  if (!summary.ok()) return Failure(err, summary.status());
  uint64_t bytes = 0;
  for (const BackupFile& file : summary->files) bytes += file.size;
  out << "Wrote " << path << ": " << summary->files.size() << " files, " << bytes << " bytes"
      << (summary->state_live ? " (state copied live from a running Intermediate)" : "") << "\n";
  for (const BackupFile& file : summary->files) {
    out << absl::StrFormat("  %04o %10d  %s\n", file.mode, file.size, file.path);
  }
  return kExitOk;
}

const char* ActionName(RestoreAction::Kind kind) {
  switch (kind) {
    case RestoreAction::Kind::kCreate:
      return "create";
    case RestoreAction::Kind::kOverwrite:
      return "overwrite";
    case RestoreAction::Kind::kRemove:
      return "remove";
  }
  return "?";
}

void PrintPlan(const RestorePlan& plan, std::ostream& out) {
  for (const RestoreAction& action : plan.actions) {
    if (action.kind == RestoreAction::Kind::kRemove) {
      out << absl::StrFormat("  %-9s %s (state file the backup does not have)\n",
                             ActionName(action.kind), action.target);
    } else {
      out << absl::StrFormat("  %-9s %s (%d bytes, mode %04o)\n", ActionName(action.kind),
                             action.target, action.data.size(), action.mode);
    }
  }
}

int RunRestore(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::vector<FlagSpec> specs = {
      {"in", Kind::kString, "FILE", "the archive to restore (required)"}};
  for (FlagSpec& spec : DirFlags("restore into")) specs.push_back(std::move(spec));
  specs.push_back({"dry-run", Kind::kBool, "",
                   "verify the archive and list what would be written; change nothing"});
  specs.push_back({"force", Kind::kBool, "", "overwrite existing files"});
  ParsedArgs parsed;
  if (std::optional<int> code = ParseCommandArgs(
          kProgram, args, specs,
          "Usage: ferryctl backup restore --in=FILE.tar --config_dir=DIR --pki_dir=DIR "
          "--state_dir=DIR [flags]\n"
          "\n"
          "Verifies the whole archive first (every checksum, the manifest against the files, no\n"
          "path outside the three directories) and refuses it, writing nothing, on any mismatch.\n"
          "Refuses to replace existing files without --force and to restore state under a\n"
          "running Intermediate. Files are written beside their targets and renamed into place.\n"
          "Exit codes: 0 restored (or planned, with --dry-run), 1 refused or failed, 2 usage.\n",
          &parsed, out, err)) {
    return *code;
  }
  if (std::optional<int> code =
          RequireFlags(parsed, {"in", "config_dir", "pki_dir", "state_dir"}, err)) {
    return *code;
  }
  std::string path = *parsed.Get("in");
  absl::StatusOr<RestorePlan> plan = PlanRestore(path, Dirs(parsed));
  if (!plan.ok()) return Failure(err, plan.status());
  bool force = parsed.GetBool("force");
  out << path << ": verified, " << plan->actions.size() << " actions; written " << plan->created
      << " by ferry " << plan->ferry_version << " (state copy: " << plan->state_copy << ")\n";
  if (parsed.GetBool("dry-run")) {
    out << "Dry run; would:\n";
    PrintPlan(*plan, out);
    if (plan->touches_existing() && !force) {
      out << "Existing files would be refused without --force.\n";
    }
    return kExitOk;
  }
  if (absl::Status status = ApplyRestore(*plan, force); !status.ok()) {
    return Failure(err, status);
  }
  out << "Restored:\n";
  PrintPlan(*plan, out);
  return kExitOk;
}

constexpr Command kSubcommands[] = {
    {"create", "write config, certificates and state into one verified tar", &RunCreate},
    {"restore", "verify a backup and write it back (--dry-run to see the plan)", &RunRestore},
};

}  // namespace

int RunBackupCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  return RunCommandLine(kProgram, kSubcommands, args, out, err);
}

}  // namespace ferry::cli
