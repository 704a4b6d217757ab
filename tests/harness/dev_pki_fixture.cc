#include "tests/harness/dev_pki_fixture.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/dev_pki.h"
#include "tests/harness/ferry_process.h"

namespace ferry::harness {
namespace {

absl::StatusOr<TlsFiles> IssueInto(const std::string& dir, const std::string& ca_cert,
                                   const cli::IssueOptions& options) {
  absl::StatusOr<cli::IssuedPaths> paths = cli::Issue(dir, options);
  if (absl::IsAlreadyExists(paths.status())) {
    const std::string stem = cli::CertFileStem(options.role, options.tenant, options.name);
    paths = cli::IssuedPaths{absl::StrCat(dir, "/", stem, ".crt"),
                             absl::StrCat(dir, "/", stem, ".key")};
  }
  if (!paths.ok()) return paths.status();
  return TlsFiles{ca_cert, paths->cert_path, paths->key_path};
}

absl::Status CopyFile(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  std::ofstream out(to, std::ios::binary | std::ios::trunc);
  out << in.rdbuf();
  out.close();
  if (!in || !out) return absl::InternalError(absl::StrCat("cannot copy ", from, " to ", to));
  chmod(to.c_str(), 0600);
  return absl::OkStatus();
}

cli::IssueOptions Options(const std::string& tenant, const std::string& role,
                          const std::string& name) {
  cli::IssueOptions options;
  options.tenant = tenant;
  options.role = role;
  options.name = name;
  return options;
}

}  // namespace

absl::StatusOr<DevPki> DevPki::Create(const std::string& trust_domain) {
  absl::StatusOr<std::string> dir = MakeTempDir("pki");
  if (!dir.ok()) return dir.status();
  cli::CaOptions options;
  options.trust_domain = trust_domain;
  if (absl::Status s = cli::InitCa(*dir, options); !s.ok()) return s;
  return DevPki(*dir, trust_domain);
}

std::string DevPki::ca_cert() const { return absl::StrCat(dir_, "/", cli::kCaCertFile); }

absl::StatusOr<TlsFiles> DevPki::Issue(const std::string& tenant, const std::string& role,
                                       const std::string& name) {
  return IssueInto(dir_, ca_cert(), Options(tenant, role, name));
}

absl::StatusOr<TlsFiles> DevPki::IssueIntermediate() {
  return IssueInto(dir_, ca_cert(), Options("ops", "intermediate", "intermediate"));
}

absl::StatusOr<std::string> DevPki::VariantDir(const std::string& kind) {
  const std::string dir = absl::StrCat(dir_, "/", kind);
  if (mkdir(dir.c_str(), 0700) != 0) {
    if (errno == EEXIST) return dir;
    return absl::InternalError(absl::StrCat("mkdir ", dir, ": ", std::strerror(errno)));
  }
  for (const char* file : {cli::kCaCertFile, cli::kCaKeyFile}) {
    if (absl::Status s = CopyFile(absl::StrCat(dir_, "/", file), absl::StrCat(dir, "/", file));
        !s.ok()) {
      return s;
    }
  }
  return dir;
}

absl::StatusOr<TlsFiles> DevPki::IssueExpired(const std::string& tenant, const std::string& role,
                                              const std::string& name) {
  absl::StatusOr<std::string> dir = VariantDir("expired");
  if (!dir.ok()) return dir.status();
  cli::IssueOptions options = Options(tenant, role, name);
  options.not_before = absl::Now() - absl::Hours(48);
  options.not_after = absl::Now() - absl::Hours(24);
  return IssueInto(*dir, ca_cert(), options);
}

absl::StatusOr<TlsFiles> DevPki::IssueFromOtherCa(const std::string& tenant,
                                                  const std::string& role,
                                                  const std::string& name) {
  const std::string dir = absl::StrCat(dir_, "/other-ca");
  cli::CaOptions ca;
  ca.trust_domain = trust_domain_;
  if (absl::Status s = cli::InitCa(dir, ca); !s.ok() && !absl::IsAlreadyExists(s)) return s;
  return IssueInto(dir, ca_cert(), Options(tenant, role, name));
}

absl::StatusOr<TlsFiles> DevPki::IssueWithoutUriSan(const std::string& name) {
  absl::StatusOr<std::string> dir = VariantDir("no-uri-san");
  if (!dir.ok()) return dir.status();
  cli::IssueOptions options = Options("acme", "agent", name);
  options.uri_san_override = "";
  return IssueInto(*dir, ca_cert(), options);
}

absl::StatusOr<TlsFiles> DevPki::IssueWithUriSan(const std::string& name, const std::string& uri) {
  absl::StatusOr<std::string> dir = VariantDir("uri-san-override");
  if (!dir.ok()) return dir.status();
  cli::IssueOptions options = Options("acme", "agent", name);
  options.uri_san_override = uri;
  options.force = true;  // The name, not the URI, names the file.
  return IssueInto(*dir, ca_cert(), options);
}

absl::StatusOr<TlsFiles> DevPki::IssueForTrustDomain(const std::string& trust_domain,
                                                     const std::string& tenant,
                                                     const std::string& role,
                                                     const std::string& name) {
  absl::StatusOr<std::string> dir = VariantDir("other-trust-domain");
  if (!dir.ok()) return dir.status();
  cli::IssueOptions options = Options(tenant, role, name);
  options.trust_domain = trust_domain;
  options.force = true;  // The same identity may be asked for with another domain.
  return IssueInto(*dir, ca_cert(), options);
}

absl::StatusOr<DevPki*> SharedDevPki() {
  static const absl::StatusOr<DevPki*>* const shared = [] {
    absl::StatusOr<DevPki> pki = DevPki::Create();
    if (!pki.ok()) return new absl::StatusOr<DevPki*>(pki.status());
    return new absl::StatusOr<DevPki*>(new DevPki(*std::move(pki)));
  }();
  return *shared;
}

}  // namespace ferry::harness
