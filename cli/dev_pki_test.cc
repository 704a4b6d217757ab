#include "cli/dev_pki.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/spiffe_id.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

X509Ptr LoadCert(const std::string& path) {
  FILE* f = fopen(path.c_str(), "r");
  if (f == nullptr) return nullptr;
  X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
  fclose(f);
  return X509Ptr(x);
}

PkeyPtr LoadKey(const std::string& path) {
  FILE* f = fopen(path.c_str(), "r");
  if (f == nullptr) return nullptr;
  EVP_PKEY* k = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  fclose(f);
  return PkeyPtr(k);
}

// Runs OpenSSL's chain verification the way a TLS stack would: strict X.509
// checks and the given purpose. Returns X509_V_OK or the verifier's error.
int VerifyChain(X509* leaf, X509* ca, int purpose = X509_PURPOSE_ANY) {
  X509_STORE* store = X509_STORE_new();
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX_init(ctx, store, leaf, nullptr);
  X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT);
  if (purpose != X509_PURPOSE_ANY) X509_STORE_CTX_set_purpose(ctx, purpose);
  int ok = X509_verify_cert(ctx);
  int err = X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return ok == 1 ? X509_V_OK : (err == X509_V_OK ? -1 : err);
}

struct Sans {
  std::vector<std::string> uris, dns, ips;
  bool has_extension = false;
};

Sans ReadSans(X509* cert) {
  Sans sans;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return sans;
  sans.has_extension = true;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    int type = 0;
    auto* str = static_cast<ASN1_STRING*>(GENERAL_NAME_get0_value(name, &type));
    std::string value(reinterpret_cast<const char*>(ASN1_STRING_get0_data(str)),
                      ASN1_STRING_length(str));
    if (type == GEN_URI) sans.uris.push_back(value);
    if (type == GEN_DNS) sans.dns.push_back(value);
    if (type == GEN_IPADD) {
      std::string text;
      for (unsigned char c : value) {
        absl::StrAppend(&text, text.empty() ? "" : ".", static_cast<int>(c));
      }
      sans.ips.push_back(value.size() == 4 ? text : absl::StrCat("v6:", value.size()));
    }
  }
  GENERAL_NAMES_free(names);
  return sans;
}

std::string SubjectCn(X509* cert) {
  char buf[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof(buf));
  return buf;
}

mode_t FileMode(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

class DevPkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    ASSERT_NE(tmp, nullptr);
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = absl::StrCat(tmp, "/", info->test_suite_name(), ".", info->name());
    dir_ = root_ + "/pki";
  }

  void InitDefaultCa() { ASSERT_TRUE(InitCa(dir_, CaOptions()).ok()); }

  static IssueOptions Options(std::string role, std::string tenant, std::string name) {
    IssueOptions options;
    options.role = std::move(role);
    options.tenant = std::move(tenant);
    options.name = std::move(name);
    return options;
  }

  X509Ptr Ca() { return LoadCert(dir_ + "/ca.crt"); }

  std::string root_;
  std::string dir_;
};

TEST_F(DevPkiTest, InitCaWritesSelfSignedCaWithConstraints) {
  ASSERT_TRUE(InitCa(dir_, CaOptions()).ok());
  X509Ptr ca = Ca();
  ASSERT_NE(ca, nullptr);
  EXPECT_EQ(SubjectCn(ca.get()), "Ferry dev CA (ferry.local)");
  EXPECT_EQ(VerifyChain(ca.get(), ca.get()), X509_V_OK);

  EXPECT_TRUE(X509_get_extension_flags(ca.get()) & EXFLAG_CA);
  int bc = X509_get_ext_by_NID(ca.get(), NID_basic_constraints, -1);
  ASSERT_GE(bc, 0);
  EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(ca.get(), bc)), 1);
  EXPECT_EQ(X509_get_key_usage(ca.get()), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_THAT(ReadSans(ca.get()).uris, ElementsAre("spiffe://ferry.local"));

  int days = 0, seconds = 0;
  ASSERT_EQ(
      ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(ca.get()), X509_get0_notAfter(ca.get())),
      1);
  EXPECT_EQ(days, 3650);  // Ten years plus the hour of clock-skew slack.

  PkeyPtr key = LoadKey(dir_ + "/ca.key");
  ASSERT_NE(key, nullptr);
  EXPECT_TRUE(EVP_PKEY_is_a(key.get(), "EC"));
  char group[64] = {};
  ASSERT_EQ(EVP_PKEY_get_group_name(key.get(), group, sizeof(group), nullptr), 1);
  EXPECT_STREQ(group, "prime256v1");
  EXPECT_EQ(X509_check_private_key(ca.get(), key.get()), 1);

  EXPECT_EQ(FileMode(dir_), 0700u);
  EXPECT_EQ(FileMode(dir_ + "/ca.key"), 0600u);
}

TEST_F(DevPkiTest, InitCaRefusesExistingCaUnlessForced) {
  InitDefaultCa();
  std::string first = ReadAll(dir_ + "/ca.crt");

  absl::Status again = InitCa(dir_, CaOptions());
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(again.message(), HasSubstr("--force"));
  EXPECT_EQ(ReadAll(dir_ + "/ca.crt"), first);

  CaOptions force;
  force.force = true;
  force.trust_domain = "example.org";
  ASSERT_TRUE(InitCa(dir_, force).ok());
  EXPECT_NE(ReadAll(dir_ + "/ca.crt"), first);
  EXPECT_EQ(SubjectCn(Ca().get()), "Ferry dev CA (example.org)");
}

TEST_F(DevPkiTest, InitCaTightensAnExistingDirectoryTo0700) {
  ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
  ASSERT_EQ(mkdir(dir_.c_str(), 0755), 0);
  InitDefaultCa();
  EXPECT_EQ(FileMode(dir_), 0700u);
}

TEST_F(DevPkiTest, InitCaRejectsBadOptions) {
  CaOptions bad_domain;
  bad_domain.trust_domain = "Ferry Local";
  EXPECT_EQ(InitCa(dir_, bad_domain).code(), absl::StatusCode::kInvalidArgument);
  CaOptions bad_validity;
  bad_validity.validity = absl::ZeroDuration();
  EXPECT_EQ(InitCa(dir_, bad_validity).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FileMode(dir_ + "/ca.key"), 0u);  // Nothing written.
}

TEST_F(DevPkiTest, IssuedCertificateChainsToTheCaForClientAndServer) {
  InitDefaultCa();
  absl::StatusOr<IssuedPaths> paths = Issue(dir_, Options("connector", "acme", "web"));
  ASSERT_TRUE(paths.ok()) << paths.status();
  EXPECT_EQ(paths->cert_path, dir_ + "/connector-acme-web.crt");
  EXPECT_EQ(paths->key_path, dir_ + "/connector-acme-web.key");

  X509Ptr leaf = LoadCert(paths->cert_path);
  X509Ptr ca = Ca();
  ASSERT_NE(leaf, nullptr);
  EXPECT_EQ(VerifyChain(leaf.get(), ca.get()), X509_V_OK);
  EXPECT_EQ(VerifyChain(leaf.get(), ca.get(), X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  EXPECT_EQ(VerifyChain(leaf.get(), ca.get(), X509_PURPOSE_SSL_SERVER), X509_V_OK);

  EXPECT_EQ(SubjectCn(leaf.get()), "web");
  EXPECT_FALSE(X509_get_extension_flags(leaf.get()) & EXFLAG_CA);
  EXPECT_EQ(X509_get_key_usage(leaf.get()), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(X509_get_extended_key_usage(leaf.get()),
            static_cast<uint32_t>(XKU_SSL_SERVER | XKU_SSL_CLIENT));

  PkeyPtr key = LoadKey(paths->key_path);
  ASSERT_NE(key, nullptr);
  EXPECT_TRUE(EVP_PKEY_is_a(key.get(), "EC"));
  EXPECT_EQ(X509_check_private_key(leaf.get(), key.get()), 1);

  // Positive serial of at most 128 bits; two issues never share one.
  BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf.get()), nullptr);
  EXPECT_FALSE(BN_is_negative(serial));
  EXPECT_LE(BN_num_bits(serial), 128);
  EXPECT_GT(BN_num_bits(serial), 64);  // Fails with probability 2^-64.
  BN_free(serial);
  absl::StatusOr<IssuedPaths> other = Issue(dir_, Options("agent", "acme", "laptop"));
  ASSERT_TRUE(other.ok());
  X509Ptr other_leaf = LoadCert(other->cert_path);
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(leaf.get()),
                             X509_get0_serialNumber(other_leaf.get())),
            0);
}

TEST_F(DevPkiTest, UriSanIsExactlyTheSpiffeId) {
  struct Case {
    std::string ca_domain;
    std::string option_domain;
    std::string role;
    std::string want;
  };
  for (const Case& c : std::vector<Case>{
           {"ferry.local", "", "connector", "spiffe://ferry.local/tenant/acme/connector/web"},
           {"example.org", "", "agent", "spiffe://example.org/tenant/acme/agent/web"},
           {"example.org", "other.test", "relay", "spiffe://other.test/tenant/acme/relay/web"},
           {"ferry.local", "", "admin", "spiffe://ferry.local/tenant/acme/admin/web"},
       }) {
    CaOptions ca;
    ca.trust_domain = c.ca_domain;
    ca.force = true;
    ASSERT_TRUE(InitCa(dir_, ca).ok());
    IssueOptions options = Options(c.role, "acme", "web");
    options.trust_domain = c.option_domain;
    options.force = true;
    absl::StatusOr<IssuedPaths> paths = Issue(dir_, options);
    ASSERT_TRUE(paths.ok()) << paths.status();
    X509Ptr leaf = LoadCert(paths->cert_path);
    Sans sans = ReadSans(leaf.get());
    EXPECT_THAT(sans.uris, ElementsAre(c.want));
    EXPECT_THAT(sans.dns, IsEmpty()) << "only the intermediate gets default DNS SANs";
    // What we write is what the servers' parser accepts, field for field.
    absl::StatusOr<SpiffeId> parsed = ParseSpiffeId(sans.uris.at(0));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->trust_domain, c.option_domain.empty() ? c.ca_domain : c.option_domain);
    EXPECT_EQ(parsed->tenant, "acme");
    EXPECT_EQ(parsed->role, c.role);
    EXPECT_EQ(parsed->name, "web");
  }
}

TEST_F(DevPkiTest, IntermediateGetsLoopbackSansUnlessGivenOthers) {
  InitDefaultCa();
  absl::StatusOr<IssuedPaths> defaults = Issue(dir_, Options("intermediate", "system", "im1"));
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  Sans sans = ReadSans(LoadCert(defaults->cert_path).get());
  EXPECT_THAT(sans.uris, ElementsAre("spiffe://ferry.local/tenant/system/intermediate/im1"));
  EXPECT_THAT(sans.dns, ElementsAre("localhost", "im1"));
  EXPECT_THAT(sans.ips, ElementsAre("127.0.0.1", "v6:16"));

  IssueOptions explicit_sans = Options("intermediate", "system", "im2");
  explicit_sans.dns_sans = {"cp.example.com"};
  explicit_sans.ip_sans = {"10.0.0.5"};
  absl::StatusOr<IssuedPaths> given = Issue(dir_, explicit_sans);
  ASSERT_TRUE(given.ok()) << given.status();
  sans = ReadSans(LoadCert(given->cert_path).get());
  EXPECT_THAT(sans.dns, ElementsAre("cp.example.com"));
  EXPECT_THAT(sans.ips, ElementsAre("10.0.0.5"));
}

TEST_F(DevPkiTest, ExpiredWindowProducesAnExpiredCertificate) {
  InitDefaultCa();
  IssueOptions options = Options("agent", "acme", "old");
  // Whole seconds, as certificates store them, so days_left below is exact.
  absl::Time now = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  options.not_before = now - absl::Hours(48);
  options.not_after = now - absl::Hours(24);
  absl::StatusOr<IssuedPaths> paths = Issue(dir_, options);
  ASSERT_TRUE(paths.ok()) << paths.status();
  X509Ptr leaf = LoadCert(paths->cert_path);
  EXPECT_EQ(VerifyChain(leaf.get(), Ca().get()), X509_V_ERR_CERT_HAS_EXPIRED);

  absl::StatusOr<std::vector<CertInfo>> listed = List(dir_, now);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  const CertInfo& info = (*listed)[0];
  ASSERT_EQ(info.file, "agent-acme-old.crt");
  EXPECT_FALSE(info.verifies);
  EXPECT_THAT(info.verify_error, HasSubstr("expired"));
  EXPECT_EQ(info.days_left, -1);
  EXPECT_EQ(absl::ToUnixSeconds(info.not_after), absl::ToUnixSeconds(*options.not_after));
}

TEST_F(DevPkiTest, UriSanOverride) {
  InitDefaultCa();
  IssueOptions none = Options("connector", "acme", "nouri");
  none.uri_san_override = "";
  absl::StatusOr<IssuedPaths> no_uri = Issue(dir_, none);
  ASSERT_TRUE(no_uri.ok()) << no_uri.status();
  X509Ptr leaf = LoadCert(no_uri->cert_path);
  Sans sans = ReadSans(leaf.get());
  EXPECT_THAT(sans.uris, IsEmpty());
  EXPECT_FALSE(sans.has_extension) << "no SAN of any kind was asked for";
  EXPECT_EQ(VerifyChain(leaf.get(), Ca().get()), X509_V_OK) << "still CA-valid";

  IssueOptions other = Options("connector", "acme", "otherdomain");
  other.uri_san_override = "spiffe://evil.example/tenant/acme/admin/root";
  absl::StatusOr<IssuedPaths> paths = Issue(dir_, other);
  ASSERT_TRUE(paths.ok()) << paths.status();
  EXPECT_THAT(ReadSans(LoadCert(paths->cert_path).get()).uris,
              ElementsAre("spiffe://evil.example/tenant/acme/admin/root"));
}

TEST_F(DevPkiTest, CertificateFromAnotherCaDoesNotVerify) {
  InitDefaultCa();
  std::string other_dir = root_ + "/other";
  ASSERT_TRUE(InitCa(other_dir, CaOptions()).ok());
  absl::StatusOr<IssuedPaths> foreign = Issue(other_dir, Options("agent", "acme", "mallory"));
  ASSERT_TRUE(foreign.ok()) << foreign.status();
  X509Ptr leaf = LoadCert(foreign->cert_path);
  EXPECT_EQ(VerifyChain(leaf.get(), Ca().get()), X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  EXPECT_EQ(VerifyChain(leaf.get(), LoadCert(other_dir + "/ca.crt").get()), X509_V_OK);

  // List in the first directory flags the stranger.
  std::ofstream(dir_ + "/agent-acme-mallory.crt") << ReadAll(foreign->cert_path);
  absl::StatusOr<std::vector<CertInfo>> listed = List(dir_);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].file, "agent-acme-mallory.crt");
  EXPECT_FALSE((*listed)[0].verifies);
  EXPECT_THAT((*listed)[0].verify_error, HasSubstr("issuer"));
}

TEST_F(DevPkiTest, BadInputIsRefusedWithTheReason) {
  InitDefaultCa();
  struct Case {
    std::string label;
    IssueOptions options;
    std::string message;
  };
  auto with = [](auto mutate) {
    IssueOptions o = Options("connector", "acme", "web");
    mutate(o);
    return o;
  };
  const std::string long_label(64, 'a');
  std::vector<Case> cases = {
      {"uppercase tenant", with([](IssueOptions& o) { o.tenant = "Acme"; }),
       "tenant name \"Acme\""},
      {"empty tenant", with([](IssueOptions& o) { o.tenant = ""; }), "tenant name is empty"},
      {"dotted tenant", with([](IssueOptions& o) { o.tenant = "a.b"; }), "tenant name \"a.b\""},
      {"leading dash", with([](IssueOptions& o) { o.name = "-web"; }), "name \"-web\""},
      {"trailing dash", with([](IssueOptions& o) { o.name = "web-"; }), "name \"web-\""},
      {"underscore", with([](IssueOptions& o) { o.name = "my_web"; }), "name \"my_web\""},
      {"slash", with([](IssueOptions& o) { o.name = "../x"; }), "name \"../x\""},
      {"64 chars", with([&](IssueOptions& o) { o.name = long_label; }), "at most 63"},
      {"role", with([](IssueOptions& o) { o.role = "root"; }), "role 'root' is not one of"},
      {"dns", with([](IssueOptions& o) { o.dns_sans = {"bad name"}; }), "DNS SAN 'bad name'"},
      {"ip", with([](IssueOptions& o) { o.ip_sans = {"1.2.3"}; }), "IP SAN '1.2.3'"},
      {"trust domain", with([](IssueOptions& o) { o.trust_domain = "a/b"; }), "trust domain"},
      {"window", with([](IssueOptions& o) {
         o.not_before = absl::Now();
         o.not_after = absl::Now() - absl::Hours(1);
       }),
       "must be before not_after"},
      {"uri with space", with([](IssueOptions& o) { o.uri_san_override = "a b"; }),
       "uri_san_override"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<IssuedPaths> paths = Issue(dir_, c.options);
    EXPECT_EQ(paths.status().code(), absl::StatusCode::kInvalidArgument) << c.label;
    EXPECT_THAT(paths.status().message(), HasSubstr(c.message)) << c.label;
  }
  absl::StatusOr<std::vector<CertInfo>> listed = List(dir_);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 1u) << "only ca.crt: nothing was written";

  // The boundaries of a valid label are accepted.
  EXPECT_TRUE(Issue(dir_, Options("agent", "a", std::string(63, 'z'))).ok());
  EXPECT_TRUE(Issue(dir_, Options("agent", "0-9", "a1")).ok());
}

TEST(DevPkiRolesTest, EveryRoleIsOneTheServersKnow) {
  EXPECT_THAT(DevPkiRoles(), ElementsAre("connector", "agent", "relay", "admin", "intermediate"));
  for (const std::string& role : DevPkiRoles()) EXPECT_TRUE(IsKnownRole(role)) << role;
}

TEST_F(DevPkiTest, IssueNeedsACa) {
  absl::StatusOr<IssuedPaths> paths = Issue(dir_, Options("agent", "acme", "laptop"));
  EXPECT_EQ(paths.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(paths.status().message(), HasSubstr("pki init"));
}

TEST_F(DevPkiTest, IssueRefusesToOverwriteUnlessForced) {
  InitDefaultCa();
  IssueOptions options = Options("agent", "acme", "laptop");
  ASSERT_TRUE(Issue(dir_, options).ok());
  std::string first = ReadAll(dir_ + "/agent-acme-laptop.crt");
  absl::StatusOr<IssuedPaths> again = Issue(dir_, options);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(again.status().message(), HasSubstr("rotate agent-acme-laptop"));
  EXPECT_EQ(ReadAll(dir_ + "/agent-acme-laptop.crt"), first);
  options.force = true;
  ASSERT_TRUE(Issue(dir_, options).ok());
  EXPECT_NE(ReadAll(dir_ + "/agent-acme-laptop.crt"), first);
}

TEST_F(DevPkiTest, KeyFilesAre0600WhateverTheUmask) {
  mode_t old_umask = umask(0);  // The most permissive umask must not leak into key modes.
  InitDefaultCa();
  absl::StatusOr<IssuedPaths> paths = Issue(dir_, Options("relay", "acme", "r1"));
  ASSERT_TRUE(paths.ok());
  absl::StatusOr<IssuedPaths> rotated = Rotate(dir_, "relay-acme-r1");
  umask(old_umask);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(FileMode(dir_ + "/ca.key"), 0600u);
  EXPECT_EQ(FileMode(paths->key_path), 0600u);
  EXPECT_EQ(FileMode(paths->key_path + ".prev"), 0600u);
  EXPECT_EQ(FileMode(paths->cert_path), 0644u);
  EXPECT_EQ(FileMode(dir_), 0700u);
}

TEST_F(DevPkiTest, RotateChangesTheKeyButKeepsNamesAndSans) {
  InitDefaultCa();
  IssueOptions options = Options("intermediate", "system", "im1");
  options.dns_sans = {"localhost", "cp.example.com"};
  options.ip_sans = {"127.0.0.1"};
  absl::StatusOr<IssuedPaths> issued = Issue(dir_, options);
  ASSERT_TRUE(issued.ok());
  std::string old_cert_pem = ReadAll(issued->cert_path);
  std::string old_key_pem = ReadAll(issued->key_path);
  X509Ptr old_cert = LoadCert(issued->cert_path);
  PkeyPtr old_key = LoadKey(issued->key_path);

  absl::StatusOr<IssuedPaths> rotated = Rotate(dir_, "intermediate-system-im1");
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(rotated->cert_path, issued->cert_path);
  EXPECT_EQ(rotated->key_path, issued->key_path);

  X509Ptr new_cert = LoadCert(rotated->cert_path);
  PkeyPtr new_key = LoadKey(rotated->key_path);
  ASSERT_NE(new_cert, nullptr);
  ASSERT_NE(new_key, nullptr);
  EXPECT_NE(EVP_PKEY_eq(old_key.get(), new_key.get()), 1) << "rotation must change the key";
  EXPECT_EQ(X509_check_private_key(new_cert.get(), new_key.get()), 1);
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(old_cert.get()),
                             X509_get0_serialNumber(new_cert.get())),
            0);
  EXPECT_EQ(VerifyChain(new_cert.get(), Ca().get(), X509_PURPOSE_SSL_SERVER), X509_V_OK);

  Sans before = ReadSans(old_cert.get());
  Sans after = ReadSans(new_cert.get());
  EXPECT_EQ(after.uris, before.uris);
  EXPECT_EQ(after.dns, before.dns);
  EXPECT_EQ(after.ips, before.ips);
  EXPECT_THAT(after.uris, ElementsAre("spiffe://ferry.local/tenant/system/intermediate/im1"));
  EXPECT_EQ(SubjectCn(new_cert.get()), "im1");

  EXPECT_EQ(ReadAll(issued->cert_path + ".prev"), old_cert_pem);
  EXPECT_EQ(ReadAll(issued->key_path + ".prev"), old_key_pem);

  // ".crt" on the stem is accepted too, and .prev files never show up in List.
  ASSERT_TRUE(Rotate(dir_, "intermediate-system-im1.crt").ok());
  absl::StatusOr<std::vector<CertInfo>> listed = List(dir_);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[1].file, "intermediate-system-im1.crt");
}

TEST_F(DevPkiTest, RotateRenewsAnExpiredCertificateForTheSameLifetime) {
  InitDefaultCa();
  IssueOptions options = Options("agent", "acme", "old");
  absl::Time now = absl::Now();
  options.not_before = now - absl::Hours(24 * 10);
  options.not_after = now - absl::Hours(24 * 3);  // Valid for 7 days, long ago.
  ASSERT_TRUE(Issue(dir_, options).ok());
  ASSERT_TRUE(Rotate(dir_, "agent-acme-old").ok());
  X509Ptr cert = LoadCert(dir_ + "/agent-acme-old.crt");
  EXPECT_EQ(VerifyChain(cert.get(), Ca().get()), X509_V_OK);
  int days = 0, seconds = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(cert.get()),
                           X509_get0_notAfter(cert.get())),
            1);
  EXPECT_EQ(days, 7);
  EXPECT_EQ(seconds, 0);
}

TEST_F(DevPkiTest, RotateRefusesWhatItCannotRotate) {
  InitDefaultCa();
  EXPECT_EQ(Rotate(dir_, "agent-acme-nobody").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Rotate(dir_, "ca").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Rotate(dir_, "../pki/ca").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Rotate(dir_, "").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DevPkiTest, ListReportsEveryCertificateSorted) {
  InitDefaultCa();
  IssueOptions connector = Options("connector", "acme", "web");
  connector.dns_sans = {"web.acme.internal"};
  connector.ip_sans = {"10.1.2.3"};
  ASSERT_TRUE(Issue(dir_, connector).ok());
  ASSERT_TRUE(Issue(dir_, Options("agent", "acme", "laptop")).ok());
  std::ofstream(dir_ + "/zz-garbage.crt") << "not a certificate";

  absl::Time now = absl::Now();
  absl::StatusOr<std::vector<CertInfo>> listed = List(dir_, now);
  ASSERT_TRUE(listed.ok()) << listed.status();
  std::vector<std::string> files;
  for (const CertInfo& info : *listed) files.push_back(info.file);
  EXPECT_THAT(files, ElementsAre("agent-acme-laptop.crt", "ca.crt", "connector-acme-web.crt",
                                 "zz-garbage.crt"));

  const CertInfo& ca = (*listed)[1];
  EXPECT_TRUE(ca.is_ca);
  EXPECT_TRUE(ca.verifies) << ca.verify_error;
  EXPECT_EQ(ca.subject_cn, "Ferry dev CA (ferry.local)");
  EXPECT_EQ(ca.days_left, 3649);

  const CertInfo& web = (*listed)[2];
  EXPECT_FALSE(web.is_ca);
  EXPECT_TRUE(web.verifies) << web.verify_error;
  EXPECT_EQ(web.verify_error, "");
  EXPECT_EQ(web.subject_cn, "web");
  EXPECT_EQ(web.uri_san, "spiffe://ferry.local/tenant/acme/connector/web");
  EXPECT_THAT(web.dns_sans, ElementsAre("web.acme.internal"));
  EXPECT_THAT(web.ip_sans, ElementsAre("10.1.2.3"));
  EXPECT_EQ(web.days_left, 364);
  EXPECT_EQ(web.serial_hex.size() % 2, 0u);
  EXPECT_FALSE(web.serial_hex.empty());

  const CertInfo& garbage = (*listed)[3];
  EXPECT_FALSE(garbage.verifies);
  EXPECT_THAT(garbage.verify_error, HasSubstr("not a PEM certificate"));

  // Asking from a later clock: days_left counts down and expiry is seen.
  absl::StatusOr<std::vector<CertInfo>> later = List(dir_, now + absl::Hours(24 * 366));
  ASSERT_TRUE(later.ok());
  EXPECT_EQ((*later)[2].days_left, -2);
  EXPECT_FALSE((*later)[2].verifies);
  EXPECT_THAT((*later)[2].verify_error, HasSubstr("expired"));
}

TEST_F(DevPkiTest, ListOfAMissingDirectoryIsNotFound) {
  EXPECT_EQ(List(root_ + "/nope").status().code(), absl::StatusCode::kNotFound);
}

// The certificates must work for what they are for: an mTLS handshake in
// which each side verifies the other against the dev CA.
class HandshakeTest : public DevPkiTest {
 protected:
  struct CtxFree {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
  };
  using CtxPtr = std::unique_ptr<SSL_CTX, CtxFree>;

  static CtxPtr MakeCtx(bool server, const IssuedPaths& paths, const std::string& ca_file) {
    CtxPtr ctx(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
    EXPECT_EQ(SSL_CTX_use_certificate_file(ctx.get(), paths.cert_path.c_str(), SSL_FILETYPE_PEM),
              1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx.get(), paths.key_path.c_str(), SSL_FILETYPE_PEM), 1);
    EXPECT_EQ(SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr), 1);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    return ctx;
  }

  // Runs both ends of a handshake over an in-memory BIO pair; returns true
  // when both sides complete it.
  static bool Handshake(SSL_CTX* server_ctx, SSL_CTX* client_ctx, const char* host) {
    SSL* server = SSL_new(server_ctx);
    SSL* client = SSL_new(client_ctx);
    BIO* server_bio = nullptr;
    BIO* client_bio = nullptr;
    BIO_new_bio_pair(&server_bio, 0, &client_bio, 0);
    SSL_set_bio(server, server_bio, server_bio);
    SSL_set_bio(client, client_bio, client_bio);
    SSL_set_accept_state(server);
    SSL_set_connect_state(client);
    SSL_set1_host(client, host);
    bool server_done = false, client_done = false, failed = false;
    for (int i = 0; i < 20 && !(server_done && client_done) && !failed; ++i) {
      for (auto [ssl, done] : {std::pair<SSL*, bool*>{client, &client_done},
                               std::pair<SSL*, bool*>{server, &server_done}}) {
        if (*done) continue;
        int r = SSL_do_handshake(ssl);
        if (r == 1) {
          *done = true;
        } else {
          int err = SSL_get_error(ssl, r);
          if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) failed = true;
        }
      }
    }
    SSL_free(server);
    SSL_free(client);
    ERR_clear_error();
    return server_done && client_done && !failed;
  }
};

TEST_F(HandshakeTest, IssuedPairsCompleteMutualTlsAndAStrangerDoesNot) {
  InitDefaultCa();
  std::string ca_file = dir_ + "/ca.crt";
  absl::StatusOr<IssuedPaths> server = Issue(dir_, Options("intermediate", "system", "im1"));
  absl::StatusOr<IssuedPaths> client = Issue(dir_, Options("agent", "acme", "laptop"));
  ASSERT_TRUE(server.ok() && client.ok());
  CtxPtr server_ctx = MakeCtx(true, *server, ca_file);
  CtxPtr client_ctx = MakeCtx(false, *client, ca_file);
  EXPECT_TRUE(Handshake(server_ctx.get(), client_ctx.get(), "localhost"));
  EXPECT_FALSE(Handshake(server_ctx.get(), client_ctx.get(), "not-in-the-sans.example"));

  std::string other_dir = root_ + "/other";
  ASSERT_TRUE(InitCa(other_dir, CaOptions()).ok());
  absl::StatusOr<IssuedPaths> stranger = Issue(other_dir, Options("agent", "acme", "laptop"));
  ASSERT_TRUE(stranger.ok());
  // The stranger trusts our CA, so only the server's check of its certificate can fail.
  CtxPtr stranger_ctx = MakeCtx(false, *stranger, ca_file);
  EXPECT_FALSE(Handshake(server_ctx.get(), stranger_ctx.get(), "localhost"));
}

}  // namespace
}  // namespace ferry::cli
