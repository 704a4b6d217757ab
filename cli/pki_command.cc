#include "cli/pki_command.h"

#include <algorithm>
#include <iostream>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/args.h"
#include "cli/command_table.h"
#include "cli/dev_pki.h"

namespace ferry::cli {
namespace {

using Kind = FlagSpec::Kind;

FlagSpec DirFlag() {
  return {"dir", Kind::kString, "DIR",
          absl::StrCat("directory of the CA and certificates (default ", kDefaultPkiDir, ")")};
}

int UsageError(std::ostream& err, absl::string_view message) {
  err << "ferryctl pki: " << message << "\n";
  return kExitUsage;
}

// Bad input the library caught is the user's to fix: a usage error. Anything
// else is a failure of the operation.
int Failure(std::ostream& err, const absl::Status& status) {
  err << "ferryctl pki: " << status.message() << "\n";
  return status.code() == absl::StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
}

std::optional<int> RejectPositionals(const ParsedArgs& parsed, std::ostream& err) {
  if (parsed.positional().empty()) return std::nullopt;
  return UsageError(err, absl::StrCat("unexpected argument '", parsed.positional().front(), "'"));
}

// --days N as a duration; nullopt when absent. N must be positive.
absl::StatusOr<std::optional<absl::Duration>> DaysFlag(const ParsedArgs& parsed) {
  absl::StatusOr<std::optional<int64_t>> days = parsed.GetInt("days");
  if (!days.ok()) return days.status();
  if (!days->has_value()) return std::optional<absl::Duration>();
  if (**days <= 0 || **days > 100 * 365) {
    return absl::InvalidArgumentError(
        absl::StrCat("--days must be between 1 and 36500, got ", **days));
  }
  return std::optional<absl::Duration>(absl::Hours(24 * **days));
}

std::string FormatUtc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

int RunInit(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const std::vector<FlagSpec> specs = {
      DirFlag(),
      {"trust_domain", Kind::kString, "DOMAIN",
       absl::StrCat("SPIFFE trust domain of the CA (default ", kDefaultTrustDomain, ")")},
      {"days", Kind::kString, "N", "validity of the CA certificate in days (default 3650)"},
      {"force", Kind::kBool, "", "replace an existing CA (its certificates stop verifying)"},
  };
  ParsedArgs parsed;
  if (std::optional<int> code = ParseCommandArgs(
          "ferryctl pki", args, specs, "Usage: ferryctl pki init [flags]\n", &parsed, out, err)) {
    return *code;
  }
  if (std::optional<int> code = RejectPositionals(parsed, err)) return *code;
  CaOptions options;
  options.trust_domain = parsed.GetOr("trust_domain", kDefaultTrustDomain);
  options.force = parsed.GetBool("force");
  absl::StatusOr<std::optional<absl::Duration>> days = DaysFlag(parsed);
  if (!days.ok()) return UsageError(err, days.status().message());
  if (days->has_value()) options.validity = **days;
  std::string dir = parsed.GetOr("dir", kDefaultPkiDir);

  if (absl::Status status = InitCa(dir, options); !status.ok()) return Failure(err, status);
  out << "Created the dev CA for trust domain " << options.trust_domain << ":\n"
      << "  certificate  " << dir << "/" << kCaCertFile << "\n"
      << "  private key  " << dir << "/" << kCaKeyFile << " (mode 0600; keep it private)\n";
  return kExitOk;
}

int RunIssue(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const std::vector<FlagSpec> specs = {
      {"tenant", Kind::kString, "TENANT", "tenant the party belongs to (required; a DNS label)"},
      {"role", Kind::kString, "ROLE",
       absl::StrCat("one of ", absl::StrJoin(DevPkiRoles(), ", "), " (required)")},
      {"name", Kind::kString, "NAME", "the party's name, also the subject CN (required)"},
      {"dns", Kind::kString, "NAMES",
       "comma-separated DNS SANs (intermediate default: localhost,<name>)"},
      {"ip", Kind::kString, "ADDRS",
       "comma-separated IP SANs (intermediate default: 127.0.0.1,::1)"},
      {"days", Kind::kString, "N", "validity in days from now (default 365)"},
      {"trust_domain", Kind::kString, "DOMAIN", "trust domain (default: the CA's)"},
      {"force", Kind::kBool, "", "overwrite an existing certificate of the same identity"},
      DirFlag(),
  };
  ParsedArgs parsed;
  if (std::optional<int> code = ParseCommandArgs(
          "ferryctl pki", args, specs,
          "Usage: ferryctl pki issue --tenant T --role R --name N [flags]\n", &parsed, out, err)) {
    return *code;
  }
  if (std::optional<int> code = RejectPositionals(parsed, err)) return *code;
  for (const char* required : {"tenant", "role", "name"}) {
    if (!parsed.Has(required)) {
      return UsageError(err, absl::StrCat("missing --", required, " (see --help)"));
    }
  }
  IssueOptions options;
  options.tenant = *parsed.Get("tenant");
  options.role = *parsed.Get("role");
  options.name = *parsed.Get("name");
  options.dns_sans = parsed.GetList("dns");
  options.ip_sans = parsed.GetList("ip");
  options.trust_domain = parsed.GetOr("trust_domain", "");
  options.force = parsed.GetBool("force");
  absl::StatusOr<std::optional<absl::Duration>> days = DaysFlag(parsed);
  if (!days.ok()) return UsageError(err, days.status().message());
  if (days->has_value()) {
    absl::Time now = absl::Now();
    options.not_before = now - absl::Hours(1);
    options.not_after = now + **days;
  }
  std::string dir = parsed.GetOr("dir", kDefaultPkiDir);

  absl::StatusOr<IssuedPaths> paths = Issue(dir, options);
  if (!paths.ok()) return Failure(err, paths.status());
  std::string stem = CertFileStem(options.role, options.tenant, options.name);
  out << "Issued " << stem << ":\n"
      << "  certificate  " << paths->cert_path << "\n"
      << "  private key  " << paths->key_path << " (mode 0600)\n";
  // Read the result back, so what is shown is what the file holds.
  if (absl::StatusOr<std::vector<CertInfo>> certs = List(dir); certs.ok()) {
    for (const CertInfo& info : *certs) {
      if (info.file != absl::StrCat(stem, ".crt")) continue;
      out << "  identity     " << (info.uri_san.empty() ? "(no URI SAN)" : info.uri_san) << "\n"
          << "  valid until  " << FormatUtc(info.not_after) << "\n";
    }
  }
  return kExitOk;
}

std::string JsonQuote(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", static_cast<int>(c));
        } else {
          out += c;  // UTF-8 passes through unchanged.
        }
    }
  }
  out += "\"";
  return out;
}

std::string JsonStringList(const std::vector<std::string>& items) {
  std::vector<std::string> quoted;
  for (const std::string& item : items) quoted.push_back(JsonQuote(item));
  return absl::StrCat("[", absl::StrJoin(quoted, ", "), "]");
}

// A quoted UTC time, or null for a certificate that did not parse.
std::string JsonTime(absl::Time t) {
  return t == absl::InfinitePast() ? "null" : JsonQuote(FormatUtc(t));
}

// {"dir": ..., "certificates": [{...}, ...]}, one certificate a line, keys in
// a fixed order so the output diffs well.
void PrintJson(const std::string& dir, const std::vector<CertInfo>& certs, std::ostream& out) {
  out << "{\"dir\": " << JsonQuote(dir) << ", \"certificates\": [";
  for (size_t i = 0; i < certs.size(); ++i) {
    const CertInfo& c = certs[i];
    out << (i == 0 ? "\n  " : ",\n  ") << "{\"file\": " << JsonQuote(c.file)
        << ", \"is_ca\": " << (c.is_ca ? "true" : "false")
        << ", \"subject_cn\": " << JsonQuote(c.subject_cn)
        << ", \"uri_san\": " << JsonQuote(c.uri_san)
        << ", \"dns_sans\": " << JsonStringList(c.dns_sans)
        << ", \"ip_sans\": " << JsonStringList(c.ip_sans)
        << ", \"serial\": " << JsonQuote(c.serial_hex)
        << ", \"not_before\": " << JsonTime(c.not_before)
        << ", \"not_after\": " << JsonTime(c.not_after) << ", \"days_left\": " << c.days_left
        << ", \"verifies\": " << (c.verifies ? "true" : "false")
        << ", \"verify_error\": " << JsonQuote(c.verify_error) << "}";
  }
  out << (certs.empty() ? "]}\n" : "\n]}\n");
}

void PrintTable(const std::vector<CertInfo>& certs, std::ostream& out) {
  std::vector<std::vector<std::string>> rows = {
      {"FILE", "SUBJECT", "IDENTITY", "DNS/IP SANS", "NOT AFTER", "DAYS", "STATUS"}};
  for (const CertInfo& c : certs) {
    std::vector<std::string> sans = c.dns_sans;
    sans.insert(sans.end(), c.ip_sans.begin(), c.ip_sans.end());
    std::string status = c.verifies ? (c.is_ca ? "ok (CA)" : "ok") : c.verify_error;
    bool parsed = c.not_after != absl::InfinitePast();
    rows.push_back(
        {c.file, c.subject_cn.empty() ? "-" : c.subject_cn, c.uri_san.empty() ? "-" : c.uri_san,
         sans.empty() ? "-" : absl::StrJoin(sans, ","), parsed ? FormatUtc(c.not_after) : "-",
         parsed ? absl::StrCat(c.days_left) : "-", status});
  }
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i + 1 == row.size()) {
        absl::StrAppend(&line, row[i]);  // No padding after the last column.
      } else {
        absl::StrAppendFormat(&line, "%-*s  ", static_cast<int>(widths[i]), row[i]);
      }
    }
    out << line << "\n";
  }
}

int RunList(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const std::vector<FlagSpec> specs = {
      DirFlag(),
      {"output", Kind::kString, "FORMAT", "table or json (default table)"},
  };
  ParsedArgs parsed;
  if (std::optional<int> code = ParseCommandArgs(
          "ferryctl pki", args, specs, "Usage: ferryctl pki list [flags]\n", &parsed, out, err)) {
    return *code;
  }
  if (std::optional<int> code = RejectPositionals(parsed, err)) return *code;
  std::string output = parsed.GetOr("output", "table");
  if (output != "table" && output != "json") {
    return UsageError(err, absl::StrCat("--output must be table or json, got '", output, "'"));
  }
  std::string dir = parsed.GetOr("dir", kDefaultPkiDir);
  absl::StatusOr<std::vector<CertInfo>> certs = List(dir);
  if (!certs.ok()) return Failure(err, certs.status());
  if (output == "json") {
    PrintJson(dir, *certs, out);
  } else if (certs->empty()) {
    out << "No certificates in " << dir << "; create a CA with `ferryctl pki init --dir " << dir
        << "`\n";
  } else {
    PrintTable(*certs, out);
  }
  return kExitOk;
}

int RunRotate(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const std::vector<FlagSpec> specs = {DirFlag()};
  ParsedArgs parsed;
  if (std::optional<int> code = ParseCommandArgs(
          "ferryctl pki", args, specs,
          "Usage: ferryctl pki rotate FILE_STEM [flags]\n"
          "\n"
          "FILE_STEM names the certificate as `pki list` shows it, without .crt\n"
          "(e.g. connector-acme-web). The old pair is kept as *.crt.prev / *.key.prev.\n",
          &parsed, out, err)) {
    return *code;
  }
  if (parsed.positional().size() != 1) {
    return UsageError(err, absl::StrCat("rotate takes exactly one FILE_STEM, got ",
                                        parsed.positional().size(), " (see --help)"));
  }
  std::string dir = parsed.GetOr("dir", kDefaultPkiDir);
  absl::StatusOr<IssuedPaths> paths = Rotate(dir, parsed.positional().front());
  if (!paths.ok()) return Failure(err, paths.status());
  out << "Rotated " << parsed.positional().front() << " (fresh key, same names):\n"
      << "  certificate  " << paths->cert_path << " (previous: " << paths->cert_path << ".prev)\n"
      << "  private key  " << paths->key_path << " (previous: " << paths->key_path << ".prev)\n";
  return kExitOk;
}

constexpr Command kSubcommands[] = {
    {"init", "create the dev CA (ca.crt, ca.key)", &RunInit},
    {"issue", "issue a key and a certificate for spiffe://<td>/tenant/<t>/<role>/<name>",
     &RunIssue},
    {"list", "show every certificate, its identity, expiry and whether it verifies", &RunList},
    {"rotate", "re-issue a certificate with a fresh key and the same names", &RunRotate},
};

}  // namespace

int RunPkiCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  return RunCommandLine("ferryctl pki", kSubcommands, args, out, err);
}

int RunPkiCommand(const std::vector<std::string>& args) {
  return RunPkiCommand(args, std::cout, std::cerr);
}

}  // namespace ferry::cli
