#include "common/intermediate_channel.h"

#include "grpcpp/create_channel.h"
#include "grpcpp/support/channel_arguments.h"

namespace ferry {

absl::StatusOr<std::shared_ptr<grpc::Channel>> DialIntermediate(const std::string& address,
                                                                const TlsFiles& files) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeChannelCredentials(files);
  if (!credentials.ok()) return credentials.status();
  grpc::ChannelArguments args;
  // Reconnect quickly after an Intermediate restart, but not in a hot loop.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  // Notice a dead peer on an idle stream.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  return grpc::CreateCustomChannel(address, *credentials, args);
}

}  // namespace ferry
