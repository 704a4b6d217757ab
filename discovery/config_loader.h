// Loading Ferry's YAML config files into their proto messages, the way Envoy's
// MessageUtil::loadFromYamlAndValidate does: YAML -> JSON -> JsonStringToMessage (strict:
// unknown fields are errors) -> ValidateConfig. A config is accepted whole or refused whole.
//
// Before the conversion, the YAML tree is checked against the message's schema
// (yaml_schema_check.h), so that unknown fields, wrong types and bad enum names are reported
// with their field path and line. Every error is INVALID_ARGUMENT (a missing file NOT_FOUND,
// an unreadable one PERMISSION_DENIED) and reads
//   "<source>:<line>:<column>: <field path>: <reason>"
// e.g. `connector.yaml:14:18: services[2].backends[0].address: "x" is not host:port ...`
// (config_error.h). Only the first problem is reported.
//
// ConfigProto is one of v1::IntermediateConfig, v1::RelayConfig, v1::ConnectorConfig,
// v1::AgentConfig (anything with a ValidateConfig overload in config_validation.h).
// All functions are thread-safe (they share no state).
#pragma once

#include <cstddef>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "discovery/config_error.h"
#include "discovery/config_validation.h"
#include "google/protobuf/message.h"

namespace ferry::discovery {

// Larger files are refused; a config is a few kilobytes.
inline constexpr size_t kMaxConfigBytes = 1 << 20;

// Parses YAML text into `*config` (cleared first) with the schema pre-check and strict JSON
// conversion, without validation. `source_name` names the text in errors (a file name).
// `locations`, when not null, receives where each field is written (for placing later errors).
// Empty text (or only comments) is an empty message. On error `*config` is unspecified.
absl::Status ParseConfigText(absl::string_view yaml_text, absl::string_view source_name,
                             google::protobuf::Message* config,
                             ConfigLocations* locations = nullptr);

// The contents of a config file: NOT_FOUND when it does not exist, PERMISSION_DENIED when it
// may not be read, INVALID_ARGUMENT for a directory or a file over kMaxConfigBytes, the errno's
// code otherwise; each message starts with `path`.
absl::StatusOr<std::string> ReadConfigFile(const std::string& path);

namespace config_loader_internal {
// ParseConfigText, then `validate`; a validation error "<path>: <reason>" comes back placed at
// the line of that path in the text.
absl::Status LoadConfigTextInto(
    absl::string_view yaml_text, absl::string_view source_name, google::protobuf::Message* config,
    absl::FunctionRef<absl::Status(const google::protobuf::Message&)> validate);
}  // namespace config_loader_internal

// The config in `yaml_text`, parsed and validated; errors name `source_name`.
template <typename ConfigProto>
absl::StatusOr<ConfigProto> LoadConfigText(absl::string_view yaml_text,
                                           absl::string_view source_name) {
  ConfigProto config;
  absl::Status status = config_loader_internal::LoadConfigTextInto(
      yaml_text, source_name, &config, [](const google::protobuf::Message& message) {
        return ValidateConfig(static_cast<const ConfigProto&>(message));
      });
  if (!status.ok()) return status;
  return config;
}

// The config in the file at `path`, parsed and validated; errors name `path` as given.
template <typename ConfigProto>
absl::StatusOr<ConfigProto> LoadConfigFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadConfigFile(path);
  if (!text.ok()) return text.status();
  return LoadConfigText<ConfigProto>(*text, path);
}

}  // namespace ferry::discovery
