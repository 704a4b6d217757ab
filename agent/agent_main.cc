// ferry-agent: the client. In this version it validates its exposures, proves
// it can authenticate to the Intermediate (an mTLS connection the Intermediate
// accepts) and stays connected. Opening data-plane sessions and serving the
// exposed services locally come with the data plane; until then the agent
// forwards no traffic and says so at start.
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/intermediate_channel.h"
#include "common/naming.h"
#include "common/process.h"
#include "common/service_spec_validation.h"
#include "glog/logging.h"

ABSL_FLAG(std::string, intermediate, "127.0.0.1:7443", "Intermediate gRPC address.");
ABSL_FLAG(std::string, ca_cert, "", "PEM CA certificate of the fabric.");
ABSL_FLAG(std::string, cert, "", "PEM certificate of this agent (role agent).");
ABSL_FLAG(std::string, key, "", "PEM private key of this agent.");
ABSL_FLAG(std::vector<std::string>, expose, {},
          "Services to expose, as service=host:port (comma-separated or repeated).");

namespace ferry {
namespace {

int Run() {
  std::vector<std::string> exposures = absl::GetFlag(FLAGS_expose);
  for (const std::string& exposure : exposures) {
    std::vector<std::string> parts = absl::StrSplit(exposure, absl::MaxSplits('=', 1));
    std::string host;
    uint16_t port = 0;
    if (parts.size() != 2 || !SplitHostPort(parts[1], &host, &port)) {
      LOG(ERROR) << "--expose \"" << exposure << "\" is not service=host:port";
      return 2;
    }
    if (absl::Status s = ValidateName(NameKind::kService, parts[0]); !s.ok()) {
      LOG(ERROR) << "--expose: " << s.message();
      return 2;
    }
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = DialIntermediate(
      absl::GetFlag(FLAGS_intermediate),
      TlsFiles{absl::GetFlag(FLAGS_ca_cert), absl::GetFlag(FLAGS_cert), absl::GetFlag(FLAGS_key)});
  if (!channel.ok()) {
    LOG(ERROR) << channel.status();
    return 2;
  }
  if (!(*channel)->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    LOG(ERROR) << "Cannot establish mTLS with the Intermediate at "
               << absl::GetFlag(FLAGS_intermediate)
               << " (is it running, and is this certificate signed by its CA?)";
    return 1;
  }
  LOG(INFO) << "Authenticated to the Intermediate at " << absl::GetFlag(FLAGS_intermediate);
  if (!exposures.empty()) {
    LOG(WARNING) << "This version has no data plane: " << absl::StrJoin(exposures, ", ")
                 << " will not be served until data-plane sessions exist";
  }
  if (absl::Status s = WriteReadyFile({{"intermediate", absl::GetFlag(FLAGS_intermediate)}});
      !s.ok()) {
    LOG(ERROR) << s;
  }
  WaitForShutdownSignal();
  LOG(INFO) << "Agent stopped";
  return 0;
}

}  // namespace
}  // namespace ferry

int main(int argc, char** argv) {
  ferry::InitProcess(argc, argv,
                     "ferry-agent: the client side of Ferry.\n"
                     "  ferry-agent --intermediate 127.0.0.1:7443 --ca_cert ca.crt --cert "
                     "agent.crt --key agent.key");
  return ferry::Run();
}
