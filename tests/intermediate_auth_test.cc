// Issue 3's refusal cases, each against the real ferry-intermediate with real
// certificates: handshake refusals (no client certificate, another CA, expired)
// fail the call and are counted by reason; identity refusals (no URI SAN, a
// malformed one, another trust domain) are UNAUTHENTICATED; role and tenant
// refusals are PERMISSION_DENIED; a valid admin succeeds; and
// --insecure_dev_mode refuses non-loopback addresses and serves plaintext on
// loopback with a warning.
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ferry/v1/admin.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/harness/channels.h"
#include "tests/harness/dev_pki_fixture.h"
#include "tests/harness/intermediate_process.h"
#include "tests/harness/metrics_scrape.h"
#include "tests/harness/route_watcher.h"
#include "tests/harness/test_connector.h"

namespace ferry {
namespace {

using harness::DevPki;
using harness::IntermediateProcess;
using ::testing::HasSubstr;

constexpr char kAuthFailures[] = "ferry_auth_failures_total";
constexpr char kOperatorTenant[] = "ops";

// Every refusal reason of issue 3: three at the handshake, five at the RPC.
const char* const kReasons[] = {
    "no_client_certificate", "unknown_ca",         "certificate_expired", "no_uri_san",
    "malformed_uri_san",     "wrong_trust_domain", "wrong_role",          "other_tenant"};

class IntermediateAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<DevPki*> pki = harness::SharedDevPki();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
    harness::IntermediateOptions options;
    options.operator_tenant = kOperatorTenant;
    absl::StatusOr<std::unique_ptr<IntermediateProcess>> started =
        IntermediateProcess::Start(*pki_, options);
    ASSERT_TRUE(started.ok()) << started.status();
    intermediate_ = *std::move(started);
  }

  // An Admin stub on a channel presenting `files`.
  std::unique_ptr<v1::Admin::Stub> AdminAs(const TlsFiles& files) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        harness::MtlsChannel(intermediate_->grpc_address(), files);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return channel.ok() ? v1::Admin::NewStub(*channel) : nullptr;
  }
  std::unique_ptr<v1::Admin::Stub> AdminAs(const std::string& tenant, const std::string& role,
                                           const std::string& name) {
    absl::StatusOr<TlsFiles> files = pki_->Issue(tenant, role, name);
    EXPECT_TRUE(files.ok()) << files.status();
    return files.ok() ? AdminAs(*files) : nullptr;
  }

  std::string Metrics() {
    absl::StatusOr<std::string> text = harness::FetchMetrics(intermediate_->admin_address());
    EXPECT_TRUE(text.ok()) << text.status();
    return text.ok() ? *text : "";
  }
  double AuthFailures(const std::string& reason) {
    return harness::MetricValueOr0(Metrics(), kAuthFailures, {{"reason", reason}});
  }
  // Every auth-failure reason other than `except`, with a non-zero count.
  std::vector<std::string> OtherReasonsCounted(const std::string& except) {
    const std::string text = Metrics();
    std::vector<std::string> counted;
    for (const char* reason : kReasons) {
      if (reason != except &&
          harness::MetricValueOr0(text, kAuthFailures, {{"reason", reason}}) > 0) {
        counted.push_back(reason);
      }
    }
    return counted;
  }

  grpc::Status ListServices(v1::Admin::Stub& stub, const std::string& tenant = "",
                            v1::ListServicesResponse* response = nullptr) {
    v1::ListServicesRequest request;
    request.set_tenant(tenant);
    v1::ListServicesResponse ignored;
    return stub.ListServices(harness::ContextWithDeadline(absl::Seconds(5)).get(), request,
                             response != nullptr ? response : &ignored);
  }
  grpc::Status Register(v1::Admin::Stub& stub, const v1::ServiceSpec& spec,
                        v1::RegisterServiceResponse* response = nullptr) {
    v1::RegisterServiceRequest request;
    *request.mutable_service() = spec;
    v1::RegisterServiceResponse ignored;
    return stub.RegisterService(harness::ContextWithDeadline(absl::Seconds(5)).get(), request,
                                response != nullptr ? response : &ignored);
  }
  grpc::Status Deregister(v1::Admin::Stub& stub, const std::string& tenant,
                          const std::string& name) {
    v1::DeregisterServiceRequest request;
    request.set_tenant(tenant);
    request.set_name(name);
    v1::DeregisterServiceResponse response;
    return stub.DeregisterService(harness::ContextWithDeadline(absl::Seconds(5)).get(), request,
                                  &response);
  }

  static v1::ServiceSpec Spec(const std::string& name, const std::string& tenant,
                              const std::string& connector) {
    v1::ServiceSpec spec = harness::MakeServiceSpec(name, {"127.0.0.1:8080"});
    spec.set_tenant(tenant);
    spec.set_connector(connector);
    return spec;
  }

  DevPki* pki_ = nullptr;
  std::unique_ptr<IntermediateProcess> intermediate_;
};

// --- Refused at the TLS handshake: the call fails, no RPC ever runs, and the
// server counts the refusal by reason. -------------------------------------------

struct HandshakeCase {
  std::string test_name;
  std::string reason;
  std::function<absl::StatusOr<TlsFiles>(DevPki&)> client_files;
};
void PrintTo(const HandshakeCase& c, std::ostream* os) { *os << c.test_name; }

class HandshakeRefusalTest : public IntermediateAuthTest,
                             public ::testing::WithParamInterface<HandshakeCase> {};

TEST_P(HandshakeRefusalTest, CallFailsAndTheReasonIsCounted) {
  absl::StatusOr<TlsFiles> files = GetParam().client_files(*pki_);
  ASSERT_TRUE(files.ok()) << files.status();
  std::unique_ptr<v1::Admin::Stub> stub = AdminAs(*files);
  ASSERT_NE(stub, nullptr);

  const grpc::Status status = ListServices(*stub);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();

  absl::StatusOr<double> counted = harness::WaitForMetricAtLeast(
      intermediate_->admin_address(), kAuthFailures, {{"reason", GetParam().reason}}, 1);
  EXPECT_TRUE(counted.ok()) << counted.status();
  EXPECT_THAT(OtherReasonsCounted(GetParam().reason), ::testing::IsEmpty());
  // The handshake never completed, so no RPC was ever handled.
  EXPECT_THAT(Metrics(), ::testing::Not(HasSubstr("ferry.v1.Admin/ListServices")));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, HandshakeRefusalTest,
    ::testing::Values(
        HandshakeCase{"NoClientCertificate", "no_client_certificate",
                      [](DevPki& pki) -> absl::StatusOr<TlsFiles> {
                        return TlsFiles{pki.ca_cert(), "", ""};
                      }},
        HandshakeCase{"CertificateFromAnotherCa", "unknown_ca",
                      [](DevPki& pki) { return pki.IssueFromOtherCa("acme", "admin", "mallory"); }},
        HandshakeCase{"ExpiredCertificate", "certificate_expired",
                      [](DevPki& pki) { return pki.IssueExpired("acme", "admin", "alice"); }}),
    [](const ::testing::TestParamInfo<HandshakeCase>& info) { return info.param.test_name; });

// --- CA-valid certificates without a usable identity: UNAUTHENTICATED with
// the reason in the message, counted by reason. -------------------------------------

struct IdentityCase {
  std::string test_name;
  std::string reason;
  std::string message_part;
  std::function<absl::StatusOr<TlsFiles>(DevPki&)> client_files;
};
void PrintTo(const IdentityCase& c, std::ostream* os) { *os << c.test_name; }

class IdentityRefusalTest : public IntermediateAuthTest,
                            public ::testing::WithParamInterface<IdentityCase> {};

TEST_P(IdentityRefusalTest, IsUnauthenticatedWithTheReason) {
  absl::StatusOr<TlsFiles> files = GetParam().client_files(*pki_);
  ASSERT_TRUE(files.ok()) << files.status();
  std::unique_ptr<v1::Admin::Stub> stub = AdminAs(*files);
  ASSERT_NE(stub, nullptr);

  const grpc::Status status = ListServices(*stub);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr(GetParam().message_part));
  EXPECT_EQ(AuthFailures(GetParam().reason), 1);
  EXPECT_THAT(OtherReasonsCounted(GetParam().reason), ::testing::IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, IdentityRefusalTest,
    ::testing::Values(
        IdentityCase{"NoUriSan", "no_uri_san", "no URI SAN",
                     [](DevPki& pki) { return pki.IssueWithoutUriSan("nobody"); }},
        IdentityCase{"UriSanWithoutName", "malformed_uri_san", "not a Ferry SPIFFE ID",
                     [](DevPki& pki) {
                       return pki.IssueWithUriSan("short",
                                                  "spiffe://ferry.local/tenant/acme/admin");
                     }},
        IdentityCase{"UriSanNotSpiffe", "malformed_uri_san", "must start with spiffe://",
                     [](DevPki& pki) {
                       return pki.IssueWithUriSan("web", "https://acme.example/admin/alice");
                     }},
        IdentityCase{"OtherTrustDomain", "wrong_trust_domain", "trust domain",
                     [](DevPki& pki) {
                       return pki.IssueForTrustDomain("evil.example", "acme", "admin", "alice");
                     }}),
    [](const ::testing::TestParamInfo<IdentityCase>& info) { return info.param.test_name; });

// --- A role calling another role's method: PERMISSION_DENIED (wrong_role). ---------

TEST_F(IntermediateAuthTest, AgentCallingAdminListServicesIsDenied) {
  std::unique_ptr<v1::Admin::Stub> agent = AdminAs("acme", "agent", "laptop");
  ASSERT_NE(agent, nullptr);
  const grpc::Status status = ListServices(*agent);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("admin role"));
  EXPECT_EQ(AuthFailures("wrong_role"), 1);
}

TEST_F(IntermediateAuthTest, ConnectorCallingAdminRegisterServiceIsDenied) {
  std::unique_ptr<v1::Admin::Stub> connector = AdminAs("acme", "connector", "web-1");
  ASSERT_NE(connector, nullptr);
  const grpc::Status status = Register(*connector, Spec("grafana-web", "", "web-1"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  EXPECT_EQ(AuthFailures("wrong_role"), 1);

  // Nothing was registered.
  std::unique_ptr<v1::Admin::Stub> admin = AdminAs("acme", "admin", "alice");
  v1::ListServicesResponse listed;
  ASSERT_TRUE(ListServices(*admin, "", &listed).ok());
  EXPECT_EQ(listed.services_size(), 0);
}

TEST_F(IntermediateAuthTest, RelayOpeningConnectorSessionIsDenied) {
  absl::StatusOr<TlsFiles> files = pki_->Issue("acme", "relay", "relay-1");
  ASSERT_TRUE(files.ok()) << files.status();
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      harness::MtlsChannel(intermediate_->grpc_address(), *files);
  ASSERT_TRUE(channel.ok()) << channel.status();
  harness::TestConnector relay(*channel);
  v1::Hello hello;
  *hello.add_services() = harness::MakeServiceSpec("grafana-web", {"127.0.0.1:3000"});
  (void)relay.Open(hello);  // The server may end the call before the Hello is written.
  absl::StatusOr<grpc::Status> status = relay.WaitFinished(absl::Seconds(10));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->error_code(), grpc::StatusCode::PERMISSION_DENIED) << status->error_message();
  EXPECT_THAT(status->error_message(), HasSubstr("connector role"));
  EXPECT_EQ(AuthFailures("wrong_role"), 1);
  for (const v1::ConnectorCommand& command : relay.commands()) {
    EXPECT_FALSE(command.has_welcome()) << "a relay was welcomed as a connector";
  }
}

TEST_F(IntermediateAuthTest, AgentWatchingRoutesIsDenied) {
  absl::StatusOr<TlsFiles> files = pki_->Issue("acme", "agent", "laptop");
  ASSERT_TRUE(files.ok()) << files.status();
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      harness::MtlsChannel(intermediate_->grpc_address(), *files);
  ASSERT_TRUE(channel.ok()) << channel.status();
  harness::RouteWatcher agent(*channel, "laptop");
  (void)agent.Start();
  absl::StatusOr<grpc::Status> status = agent.WaitFinished(absl::Seconds(10));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->error_code(), grpc::StatusCode::PERMISSION_DENIED) << status->error_message();
  EXPECT_TRUE(agent.received().empty()) << "an agent was sent routes";
  EXPECT_EQ(AuthFailures("wrong_role"), 1);
}

// --- An admin of tenant acme acting on tenant globex: PERMISSION_DENIED
// (other_tenant), and globex's state is untouched. ----------------------------------

TEST_F(IntermediateAuthTest, AdminRegisteringInAnotherTenantIsDenied) {
  std::unique_ptr<v1::Admin::Stub> acme = AdminAs("acme", "admin", "alice");
  const grpc::Status status = Register(*acme, Spec("grafana-web", "globex", "web-1"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("globex"));
  EXPECT_EQ(AuthFailures("other_tenant"), 1);

  std::unique_ptr<v1::Admin::Stub> globex = AdminAs("globex", "admin", "bob");
  v1::ListServicesResponse listed;
  ASSERT_TRUE(ListServices(*globex, "", &listed).ok());
  EXPECT_EQ(listed.services_size(), 0);
}

TEST_F(IntermediateAuthTest, AdminListingAnotherTenantIsDenied) {
  std::unique_ptr<v1::Admin::Stub> globex = AdminAs("globex", "admin", "bob");
  ASSERT_TRUE(Register(*globex, Spec("grafana-web", "", "web-1")).ok());

  std::unique_ptr<v1::Admin::Stub> acme = AdminAs("acme", "admin", "alice");
  v1::ListServicesResponse listed;
  const grpc::Status status = ListServices(*acme, "globex", &listed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  EXPECT_EQ(listed.services_size(), 0);
  EXPECT_EQ(AuthFailures("other_tenant"), 1);
  // Its own (default) scope does not show globex's service either.
  ASSERT_TRUE(ListServices(*acme, "", &listed).ok());
  EXPECT_EQ(listed.services_size(), 0);
}

TEST_F(IntermediateAuthTest, AdminDeregisteringInAnotherTenantIsDenied) {
  std::unique_ptr<v1::Admin::Stub> globex = AdminAs("globex", "admin", "bob");
  ASSERT_TRUE(Register(*globex, Spec("grafana-web", "", "web-1")).ok());

  std::unique_ptr<v1::Admin::Stub> acme = AdminAs("acme", "admin", "alice");
  const grpc::Status status = Deregister(*acme, "globex", "grafana-web");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  EXPECT_EQ(AuthFailures("other_tenant"), 1);

  v1::ListServicesResponse listed;
  ASSERT_TRUE(ListServices(*globex, "", &listed).ok());
  ASSERT_EQ(listed.services_size(), 1);
  EXPECT_EQ(listed.services(0).spec().name(), "grafana-web");
}

TEST_F(IntermediateAuthTest, OperatorTenantAdminMayActOnAnyTenant) {
  std::unique_ptr<v1::Admin::Stub> globex = AdminAs("globex", "admin", "bob");
  ASSERT_TRUE(Register(*globex, Spec("grafana-web", "", "web-1")).ok());

  std::unique_ptr<v1::Admin::Stub> operator_admin = AdminAs(kOperatorTenant, "admin", "root");
  v1::ListServicesResponse listed;
  ASSERT_TRUE(ListServices(*operator_admin, "globex", &listed).ok());
  ASSERT_EQ(listed.services_size(), 1);
  EXPECT_TRUE(Deregister(*operator_admin, "globex", "grafana-web").ok());
  EXPECT_EQ(AuthFailures("other_tenant"), 0);
}

// --- The happy path: a valid admin registers, lists and deregisters. --------------

TEST_F(IntermediateAuthTest, ValidAdminSucceeds) {
  std::unique_ptr<v1::Admin::Stub> admin = AdminAs("acme", "admin", "alice");
  v1::RegisterServiceResponse registered;
  grpc::Status status = Register(*admin, Spec("grafana-web", "", "web-1"), &registered);
  ASSERT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  EXPECT_EQ(registered.service().spec().tenant(), "acme");  // defaulted to the caller's
  EXPECT_NE(registered.service().id(), 0u);
  EXPECT_EQ(registered.service().origin(), "api");

  v1::ListServicesResponse listed;
  ASSERT_TRUE(ListServices(*admin, "", &listed).ok());
  ASSERT_EQ(listed.services_size(), 1);
  EXPECT_EQ(listed.services(0).id(), registered.service().id());

  status = Deregister(*admin, "", "grafana-web");
  EXPECT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(ListServices(*admin, "", &listed).ok());
  EXPECT_EQ(listed.services_size(), 0);

  const std::string metrics = Metrics();
  EXPECT_EQ(harness::MetricValueOr0(metrics, "ferry_rpcs_total",
                                    {{"method", "ferry.v1.Admin/RegisterService"}, {"code", "OK"}}),
            1);
  EXPECT_THAT(OtherReasonsCounted(""), ::testing::IsEmpty());
}

// --- --insecure_dev_mode -------------------------------------------------------

TEST(InsecureDevModeTest, RefusesANonLoopbackListenAddress) {
  absl::StatusOr<DevPki> pki = DevPki::Create();
  ASSERT_TRUE(pki.ok()) << pki.status();
  harness::IntermediateOptions options;
  options.insecure_dev_mode = true;
  options.listen = "0.0.0.0:0";
  std::string state_dir;
  absl::StatusOr<std::unique_ptr<harness::FerryProcess>> process =
      IntermediateProcess::Prepare(*pki, options, &state_dir);
  ASSERT_TRUE(process.ok()) << process.status();
  ASSERT_TRUE((*process)->Start().ok());
  absl::StatusOr<harness::ExitStatus> exit = (*process)->WaitExit(absl::Seconds(20));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->exited) << exit->ToString();
  EXPECT_NE(exit->code, 0);
  EXPECT_THAT((*process)->Logs(), HasSubstr("loopback"));
}

TEST(InsecureDevModeTest, ServesPlaintextOnLoopbackAndWarns) {
  absl::StatusOr<DevPki> pki = DevPki::Create();
  ASSERT_TRUE(pki.ok()) << pki.status();
  harness::IntermediateOptions options;
  options.insecure_dev_mode = true;
  absl::StatusOr<std::unique_ptr<IntermediateProcess>> intermediate =
      IntermediateProcess::Start(*pki, options);
  ASSERT_TRUE(intermediate.ok()) << intermediate.status();
  EXPECT_THAT((*intermediate)->process().Logs(), HasSubstr("INSECURE DEV MODE"));

  auto admin = v1::Admin::NewStub(harness::PlaintextChannel((*intermediate)->grpc_address()));
  v1::ListServicesResponse listed;
  std::unique_ptr<grpc::ClientContext> context = harness::ContextWithDeadline();
  context->AddMetadata("x-ferry-dev-identity", "spiffe://ferry.local/tenant/acme/admin/dev");
  grpc::Status status = admin->ListServices(context.get(), v1::ListServicesRequest(), &listed);
  EXPECT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();

  // Plaintext still needs a stated identity.
  context = harness::ContextWithDeadline();
  status = admin->ListServices(context.get(), v1::ListServicesRequest(), &listed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << status.error_message();
  EXPECT_TRUE((*intermediate)->Stop()->ok());
}

}  // namespace
}  // namespace ferry
